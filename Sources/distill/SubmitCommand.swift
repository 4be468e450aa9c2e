import ArgumentParser
import Diagnostics
import Foundation
import Plan
import Runtime
import Spec

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
    @Option(name: .long, help: "Time limit per job, e.g. 12:00:00.") var time: String?
    @Option(name: .long, help: "CPUs per job.") var cpusPerTask: Int?
    @Option(name: .long, help: "Memory per job, e.g. 16G.") var mem: String?

    @Option(name: .long, help: "The distill binary the jobs run (default: this one).")
    var distill: String?

    @Flag(name: .long, help: "Print the sbatch scripts and the dependency graph; submit nothing.")
    var dryRun = false

    func validate() throws {
        guard to == "slurm" else { throw ValidationError("unknown scheduler '\(to)'; only 'slurm' is supported") }
        if let c = cpusPerTask, c < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
    }

    func run() throws {
        let (plan, _) = try SpecPlanning.plan(spec, variant: nil)
        let cwd = FileManager.default.currentDirectoryPath
        let storeRoot = store.hasPrefix("/") ? store : cwd + "/" + store
        let runStore = RunStore(root: storeRoot)
        var options = SlurmOptions()
        if let checked = SpecChecker.check(path: spec), let s = checked.base?.document["execution"]?["slurm"] {
            options.partition = s.text("partition")
            options.account = s.text("account")
            options.cpusPerTask = s["cpus_per_task"]?.int
            options.mem = s.text("mem")
            options.time = s.text("time")
            options.extra = s["extra"]?.list.compactMap(\.string) ?? []
            options.nodes = s["nodes"]?.int ?? options.nodes
            options.ranksPerNode = s["ranks_per_node"]?.int ?? options.ranksPerNode
            options.maxNodes = s["max_nodes"]?.int ?? options.maxNodes
            for m in s["stage_nodes"]?.members ?? [] { options.stageNodes[m.key] = m.value.int }
            if let t = s.text("max_time") {
                guard let seconds = SlurmOptions.seconds(t) else {
                    FileHandle.standardError.write(Data("error: execution.slurm.max_time '\(t)' is not a time like 2-00:00:00 or 12:00:00\n".utf8))
                    throw ExitStatus.usage
                }
                options.maxTime = seconds
            }
            let names = Set(plan.variants.flatMap { $0.stages.map(\.name) })
            for name in options.stageNodes.keys.sorted() {
                guard names.contains(name) else {
                    var message = "error: execution.slurm.stage_nodes names '\(name)', which is not a stage"
                    if let guess = Suggestions.closest(to: name, in: names.sorted()) { message += "; did you mean '\(guess)'?" }
                    FileHandle.standardError.write(Data((message + "\n").utf8))
                    throw ExitStatus.usage
                }
                let hashes = Set(plan.variants.flatMap { $0.stages.filter { $0.name == name }.map(\.train) })
                for h in hashes {
                    guard let stage = plan.stage(h), case .train(let c) = stage.config else {
                        FileHandle.standardError.write(Data("error: execution.slurm.stage_nodes names '\(name)', which is not trained here: only training stages run on several nodes\n".utf8))
                        throw ExitStatus.usage
                    }
                    guard (options.stageNodes[name] ?? 1) * options.ranksPerNode > 1 else { continue }
                    if let terms = c.distill?.batchContrastive, !terms.isEmpty {
                        FileHandle.standardError.write(Data("error: execution.slurm.stage_nodes gives '\(name)' several ranks, but \(terms.joined(separator: " and ")) contrast images across the whole batch, which a split does not see\n".utf8))
                        throw ExitStatus.usage
                    }
                }
            }
        }
        options.partition = partition ?? options.partition
        options.account = account ?? options.account
        options.cpusPerTask = cpusPerTask ?? options.cpusPerTask
        options.mem = mem ?? options.mem
        options.time = time ?? options.time
        let binary = distill ?? (CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : cwd + "/" + CommandLine.arguments[0])
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
