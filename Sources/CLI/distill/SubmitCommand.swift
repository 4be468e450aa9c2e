import ArgumentParser
import Diagnostics
import Foundation
import Plan
import Runtime
import Spec
import StageConfig
import Storage

/// `distill submit SPEC --to slurm`: the sweep as cluster jobs with dependencies.
struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit the stages of a sweep that are not done as Slurm jobs, with dependencies that follow the plan.",
        discussion: """
            Each job runs `distill run --stage HASH --plan PLAN` against the store, which must be on a file system \
            the cluster's nodes share. Resources come from the cost model unless given here or in the spec's \
            `execution: slurm:`. Resubmitting after a failure submits only what is not done.
            """)

    @Argument(help: "The spec file.")
    var spec: String

    @Option(name: .long, help: "The scheduler (only slurm).")
    var to: String = "slurm"

    @Option(name: .long, help: "The run store, on a shared file system.")
    var store: String = "runs"

    @Option(name: .long) var partition: String?
    @Option(name: .long) var account: String?
    @Option(name: .long, help: "Quality of service.") var qos: String?
    @Option(name: .long, help: "Time limit per job, e.g. 12:00:00.") var time: String?
    @Option(name: .long, help: "CPUs per job.") var cpusPerTask: Int?
    @Option(name: .long, help: "Memory per job, e.g. 16G.") var mem: String?

    @Option(name: .long, help: "The distill binary the jobs run (default: this one).")
    var distill: String?

    @Flag(name: .long, help: "Print the sbatch scripts and the dependency graph; submit nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Do not read every voxel of the local datasets before submitting (they were scanned already, or only the cluster has them whole).")
    var skipVoxelScan = false

    func validate() throws {
        guard to == "slurm" else { throw ValidationError("unknown scheduler '\(to)'; only 'slurm' is supported") }
        if let c = cpusPerTask, c < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
        // Every value here reaches a job script: no line break may smuggle a command into it.
        for (flag, value) in [("--store", store), ("--partition", partition), ("--account", account), ("--qos", qos), ("--time", time), ("--mem", mem), ("--distill", distill)] {
            guard let value else { continue }
            if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw ValidationError("\(flag) holds a control character (a line break?): it would be written into a job script")
            }
        }
        if let time, SlurmSettings.seconds(time) == nil { throw ValidationError("--time '\(time)' is not a time like 2-00:00:00, 12:00:00 or 90 (minutes)") }
        for (flag, value, list) in [("--partition", partition, true), ("--account", account, false), ("--qos", qos, true)] {
            if let value, !SlurmSettings.isName(value, list: list) {
                throw ValidationError("\(flag) '\(value)' is not a Slurm name: letters, digits and _ . - +\(list ? ", names separated by commas" : "")")
            }
        }
        if let mem, !SlurmSettings.isMemory(mem) { throw ValidationError("--mem '\(mem)' is not a memory size like 16G, 16000M or 16000 (megabytes)") }
        if let problem = SlurmSubmitter.unscriptablePath(FilePath.absolute(store)) { throw ValidationError("--store: \(problem)") }
    }

    func run() throws {
        let checked = try SpecPlanning.checked(spec, fingerprints: store)
        let (plan, base) = try SpecPlanning.plan(checked, spec: spec, variant: nil, measure: true)
        // No job should fail on data a local scan could have refused: every voxel is read first.
        if !skipVoxelScan {
            let found = VoxelScanning.diagnostics(checked, specDirectory: base)
            if !found.isEmpty { print(DiagnosticRenderer.text(found), terminator: "") }
            if found.hasErrors {
                print(DiagnosticRenderer.summary(found, files: 1))
                FileHandle.standardError.write(Data("error: nothing submitted: the data has the problems above (check them with `distill check --data \(spec)`)\n".utf8))
                throw ExitStatus.failure
            }
        }
        let storeRoot = FilePath.absolute(store)
        let runStore = RunStore(root: storeRoot)
        // `distill check` has applied every rule of `execution.slurm` (ClusterChecks): what is left is to use it.
        guard let settings = checked.base?.slurm else {
            FileHandle.standardError.write(Data("error: \(spec) has no readable execution.slurm\n".utf8))
            throw ExitStatus.failure
        }
        var options = settings
        options.partition = partition ?? options.partition
        options.account = account ?? options.account
        options.qos = qos ?? options.qos
        options.cpusPerTask = cpusPerTask ?? options.cpusPerTask
        options.mem = mem ?? options.mem
        options.time = time ?? options.time
        let binary = distill ?? FilePath.absolute(CommandLine.arguments[0])
        let planPath: String
        if dryRun {
            planPath = storeRoot + "/plans/<written on submission>.json"
        } else {
            planPath = try SlurmSubmitter.storePlan(plan, in: runStore)
        }
        let submitter = SlurmSubmitter(plan: plan, store: runStore, planPath: planPath, distill: binary, options: options)
        if dryRun {
            print(submitter.dryRun(), terminator: "")
            return
        }
        for n in submitter.notices { FileHandle.standardError.write(Data("warning: \(n)\n".utf8)) }
        do {
            let jobs = try submitter.submit()
            for j in jobs {
                let s = plan.stage(j.hash)
                print("\(j.job)\t\(j.hash.prefix(12))\t\(s?.kind.rawValue ?? "")\t\(s?.label ?? "")\(j.reused ? "\t(already queued)" : "")")
            }
            print("\(jobs.count) job\(jobs.count == 1 ? "" : "s") for \(plan.stages.count - submitter.pending.count + jobs.count) stages; follow with `distill status \(spec) --store \(store)`")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitStatus.failure
        }
    }
}
