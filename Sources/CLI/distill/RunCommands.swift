import ArgumentParser
import Cluster
import Diagnostics
import Foundation
import Plan
import Runtime
import Spec
import StageConfig
import Storage
import Tensor

/// Options shared by the commands that execute or read a store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The run store.")
    var store: String = "runs"

    @OptionGroup var threading: ThreadsOption
    var threads: Int { threading.threads }

    @Option(name: .long, help: "Stages run at once (independent stages only); the threads are split between them.")
    var jobs: Int = 1

    func validate() throws {
        guard jobs >= 1, jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
    }
}

/// Checks and plans a spec for the run commands; prints diagnostics and exits on errors.
enum SpecPlanning {
    /// `firstVariant` plans only the first variant when none is named (what `run` executes).
    /// The spec checked (with its data), or the diagnostics printed and exit 1 (2 when unreadable).
    /// `auto` values are computed with the fingerprints kept in `fingerprints` (a run store).
    static func checked(_ spec: String, fingerprints: String?) throws -> CheckedSpec {
        guard let checked = SpecChecker.checkWithData(path: spec, store: fingerprints, planning: true, progress: progress) else {
            FileHandle.standardError.write(Data("error: cannot read '\(spec)'\n".utf8))
            throw ExitStatus.usage
        }
        if checked.diagnostics.hasErrors {
            print(DiagnosticRenderer.text(checked.diagnostics), terminator: "")
            print(DiagnosticRenderer.summary(checked.diagnostics, files: 1))
            throw ExitStatus.failure
        }
        try refuseUncomputedRecipe(checked)
        return checked
    }

    /// A spec whose `auto` values could not be computed was checked with stand-ins: it is not planned.
    /// `shown`: the diagnostics were printed already.
    static func refuseUncomputedRecipe(_ checked: CheckedSpec, shown: Bool = false) throws {
        let uncomputed = checked.diagnostics.filter { $0.id == AutoRecipe.notComputed }
        guard !uncomputed.isEmpty else { return }
        let text = shown ? "" : DiagnosticRenderer.text(uncomputed)
        FileHandle.standardError.write(Data((text + "error: the spec's `auto` values are needed to plan it\n").utf8))
        throw ExitStatus.failure
    }

    /// What the planner says while it measures a dataset (stderr: standard output may be a plan in JSON).
    static let progress: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    /// `store`: where prepared data gives exact slice counts (nil: the headers' counts).
    /// `measure`: time the plan's work not yet measured on this machine first (`plan` and `submit`, whose times are read).
    /// `fingerprints`: the run store whose kept fingerprints give `auto` values (default: `store`).
    static func plan(_ spec: String, variant: String?, firstVariant: Bool = false, store: String? = nil, fingerprints: String? = nil,
                     measure: Bool = false) throws -> (ExecutionPlan, String) {
        try plan(try checked(spec, fingerprints: fingerprints ?? store), spec: spec, variant: variant, firstVariant: firstVariant, store: store, measure: measure)
    }

    /// The plan of a spec already checked (its headers read once).
    static func plan(_ checked: CheckedSpec, spec: String, variant: String?, firstVariant: Bool = false, store: String? = nil,
                     measure: Bool = false) throws -> (ExecutionPlan, String) {
        if let variant, !checked.variants.contains(where: { $0.name == variant }) {
            FileHandle.standardError.write(Data("error: no variant '\(variant)'; variants: \(checked.variants.map(\.name).joined(separator: ", "))\n".utf8))
            throw ExitStatus.usage
        }
        let directory = (spec as NSString).deletingLastPathComponent
        let base = FilePath.absolute(directory)
        let chosen = variant ?? (firstVariant ? checked.variants.first?.name : nil)
        var plan = MachineRate.plan(measure: measure) { Planner(throughput: $0, specDirectory: base, store: store).plan(checked, variant: chosen) }
        plan.baseDirectory = base
        return (plan, base)
    }

    static func execute(_ plan: ExecutionPlan, base: String, options: StoreOptions, only: Set<String>? = nil, failFast: Bool = false) throws {
        try execute(plan, base: base, store: options.store, threads: options.threads, jobs: options.jobs, only: only, failFast: failFast)
    }

    static func execute(_ plan: ExecutionPlan, base: String, store: String, threads: Int, jobs: Int = 1,
                        only: Set<String>? = nil, failFast: Bool = false) throws {
        Parallel.setThreads(threads)
        Interrupts.install()
        // Started by mpirun or srun with several ranks: training stages run data-parallel, rank 0 writes.
        let world = World.current
        defer { world.finish() }
        if world.isParallel, jobs > 1 {
            if world.isRoot { FileHandle.standardError.write(Data("error: under mpirun every rank runs one stage at a time; drop --jobs \(jobs)\n".utf8)) }
            throw ExitStatus.usage
        }
        // A store that cannot be made (a folder of another user's) is one line, before anything runs.
        if world.isRoot {
            do {
                try RunStore.createFolder(RunStore(root: store).root + "/stages")
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitStatus.usage
            }
        }
        var executor = Executor(plan: plan, store: RunStore(root: store), baseDirectory: base)
        executor.failFast = failFast
        executor.jobs = jobs
        executor.echo = world.isRoot
        if world.isRoot {
            do {
                executor.index = try RunIndex(store: RunStore(root: store))
                executor.index?.record(plan: plan, spec: plan.specName ?? "")
            } catch {
                print("warning: the store's index is unavailable (\(error)); running without it")
            }
        }
        let start = Date()
        let s = executor.run(only: only)
        guard world.isRoot else {
            if !s.ok { throw ExitStatus.failure }
            return
        }
        if world.isParallel { print("\n\(world.size) ranks") }
        print("\n\(s.done.count) done, \(s.reused.count) reused, \(s.failed.count) failed, \(s.skipped.count) skipped in \(Int(Date().timeIntervalSince(start)))s")
        for f in s.failed {
            print("failed \(f.hash.prefix(12)): \(f.error.split(separator: "\n").first ?? "")\n  log: \(f.log)")
        }
        if s.interrupted { print("interrupted: rerun the same command to resume") }
        if !s.ok { throw ExitStatus.failure }
    }
}

/// `distill run`: one variant's plan, or exactly one stage of a lowered plan.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Execute one variant of a spec, or one stage of a plan file (the unit a cluster job runs).")

    @Argument(help: "The spec file (omit with --plan).")
    var spec: String?

    @Option(name: .long, help: "The variant to run (default: the first).")
    var variant: String?

    @Option(name: .long, help: "A stage hash to run from --plan.")
    var stage: String?

    @Option(name: .long, help: "A plan written by `distill plan --format json`.")
    var plan: String?

    @OptionGroup var options: StoreOptions

    func validate() throws {
        if (stage == nil) != (plan == nil) { throw ValidationError("--stage and --plan go together") }
        if stage == nil, spec == nil { throw ValidationError("give a spec, or --stage HASH --plan PLAN") }
    }

    func run() throws {
        if let stage, let planPath = plan {
            guard let data = FileManager.default.contents(atPath: planPath), let json = JSON.parse(data) else {
                FileHandle.standardError.write(Data("error: cannot read a JSON plan from '\(planPath)'\n".utf8))
                throw ExitStatus.usage
            }
            let p: ExecutionPlan
            do {
                p = try ExecutionPlan(json: json)
            } catch let error as PlanFormatError {
                FileHandle.standardError.write(Data("error: \(planPath): \(error)\n".utf8))
                // A stage whose content is wrong would run another experiment: the run fails (1);
                // a file that is not a plan of this format is a usage error (2).
                if case .stage = error { throw ExitStatus.failure }
                throw ExitStatus.usage
            }
            let matches = p.stages.filter { $0.hash.hasPrefix(stage) }
            guard matches.count == 1, let target = matches.first else {
                FileHandle.standardError.write(Data("error: \(matches.isEmpty ? "no" : "more than one") stage matches '\(stage)' in \(planPath)\n".utf8))
                throw ExitStatus.usage
            }
            let base = p.baseDirectory ?? (planPath as NSString).deletingLastPathComponent
            try SpecPlanning.execute(p, base: base, options: options, only: [target.hash])
            return
        }
        guard let spec else { throw ExitStatus.usage }
        let (p, base) = try SpecPlanning.plan(spec, variant: variant, firstVariant: true, store: options.store)
        try SpecPlanning.execute(p, base: base, options: options)
        if World.current.isRoot { print(Report.text(p, store: RunStore(root: options.store))) }
    }
}

/// `distill sweep`: every variant; shared stages run once.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Execute every variant of a spec's sweep and print the report table.")

    @Argument(help: "The spec file.")
    var spec: String

    @Flag(name: .long, help: "Stop starting stages after the first failure.")
    var failFast = false

    @OptionGroup var options: StoreOptions

    func run() throws {
        let (p, base) = try SpecPlanning.plan(spec, variant: nil, store: options.store)
        var failure: Error?
        do { try SpecPlanning.execute(p, base: base, options: options, failFast: failFast) } catch { failure = error }
        let rows = World.current.isRoot ? Report.rows(p, store: RunStore(root: options.store)) : []
        if !rows.isEmpty { print("\n" + Report.text(p, store: RunStore(root: options.store))) }
        if let failure { throw failure }
    }
}

/// `distill report`: the table of whatever of the sweep is done.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print (and write) the sweep's table from the store: Markdown, CSV and JSON.")

    @Argument(help: "The spec file.")
    var spec: String

    @Option(name: .long, help: "Write report.md, report.csv and report.json into this folder.")
    var output: String?

    @OptionGroup var options: StoreOptions

    func run() throws {
        let (p, _) = try SpecPlanning.plan(spec, variant: nil, fingerprints: options.store)
        do {
            try Report.verifyInputs(p, store: RunStore(root: options.store))
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitStatus.failure
        }
        let rows = Report.rows(p, store: RunStore(root: options.store))
        guard !rows.isEmpty else {
            print("nothing evaluated yet in \(options.store): run `distill sweep \(spec)`")
            throw ExitStatus.failure
        }
        print(Report.text(p, store: RunStore(root: options.store)))
        if let output { try Report.write(plan: p, store: RunStore(root: options.store), to: output) }
    }
}

/// `distill status`: every stage of the sweep and where it stands.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show every stage of a spec's sweep: done, running, failed or pending.")

    @Argument(help: "The spec file.")
    var spec: String

    @OptionGroup var options: StoreOptions

    func run() throws {
        let (p, _) = try SpecPlanning.plan(spec, variant: nil, fingerprints: options.store)
        let store = RunStore(root: options.store)
        var counts: [String: Int] = [:]
        for s in p.stages {
            // A done stage's outputs are checked against their digests: a damaged one says so and names its files.
            let status = store.status(s.hash, verifying: true)
            counts[status.name, default: 0] += 1
            // The plan's time beside what the stage took (or will take).
            let planned = s.kind == .report ? "" : " (planned \(Format.duration(s.cost.seconds)))"
            print("\(s.shortHash)  \(status.name.padding(toLength: 8, withPad: " ", startingAt: 0))  \(s.kind.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0))  \(s.label)  \(status.detail)\(planned)")
        }
        print(counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        if counts["damaged", default: 0] > 0 {
            print("a damaged stage is never reused: `distill sweep \(spec)` runs it again")
        }
    }
}

/// `distill verify`: every finished stage's outputs against their recorded digests.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every finished stage's outputs against the sizes and SHA-256 digests recorded when they were written.",
        discussion: "Reads every byte. Exit status 1 when any stage is damaged; a damaged stage is set aside (and run again) by the next run that would reuse it.")

    @Argument(help: "A spec: check the stages of its plan (default: every stage in the store).")
    var spec: String?

    @Option(name: .long, help: "The run store.")
    var store: String = "runs"

    func run() throws {
        let runs = RunStore(root: store)
        let hashes: [String]
        if let spec {
            hashes = try SpecPlanning.plan(spec, variant: nil, fingerprints: store).0.stages.map(\.hash)
        } else {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: runs.root + "/stages") else {
                FileHandle.standardError.write(Data("error: \(store) is not a run store (no stages/ folder)\n".utf8))
                throw ExitStatus.usage
            }
            hashes = names.filter { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.sorted()
        }
        let start = Date()
        var intact = 0, bytes = 0, files = 0, damaged = 0, notDone = 0
        for h in hashes {
            switch runs.verify(h) {
            case .intact(let f, let b): intact += 1; files += f; bytes += b
            case .notDone:
                if let problems = runs.damage(h) {
                    damaged += 1
                    print("\(h.prefix(12))  damaged (set aside, not yet run again): \(problems.joined(separator: "; "))")
                } else {
                    notDone += 1
                }
            case .damaged(let problems):
                damaged += 1
                print("\(h.prefix(12))  damaged: " + problems.map(\.description).joined(separator: "; "))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        var line = "\(intact) intact (\(files) files, \(Format.bytes(bytes)) in \(String(format: "%.1f", seconds)) s), \(damaged) damaged"
        if notDone > 0 { line += ", \(notDone) not finished" }
        print(line)
        if damaged > 0 { throw ExitStatus.failure }
    }
}
