import ArgumentParser
import Diagnostics
import Foundation
import Plan
import Runtime
import Spec
import Statistics
import Storage
import Tensor

/// `distill plan SPEC`: the sweep lowered to content-hashed stages, with its bill.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the execution plan of a spec (a dry run with cost); nothing is computed.",
        discussion: """
            Stages are named by the SHA-256 of everything that determines their result, so a \
            stage shared by several variants (a teacher, the prepared data) appears once. \
            A spec with errors is not planned: its diagnostics are printed and the exit status is 1.
            """)

    @Argument(help: "The spec file.")
    var spec: String

    @Option(name: .long, help: "Plan only this variant.")
    var variant: String?

    @Option(name: .long, help: "Output format: text, json (the plan the runtime executes) or dot (Graphviz).")
    var format: Format = .text

    @Option(name: .long, help: "Write one fully resolved spec per variant into this directory.")
    var lock: String?

    @Option(name: .long, help: "Also show the critical path and the wall time on this many machines: stages side by side, training stages data-parallel over several (text format).")
    var nodes: Int?

    @Option(name: .long, help: "Cores of one node, against the cores `distill calibrate` measured with (default: the same).")
    var coresPerNode: Int?

    @Option(name: .long, help: "The run store: its prepared data, when there, gives exact slice counts (and so steps).")
    var store: String = "runs"

    @Flag(name: .long, help: "Learn from the store: plan the report's power with the variance components its finished comparisons of this spec estimated (instead of the spec's report.variance), and the step times as its finished stages took them.")
    var fromStore = false

    @Option(name: .long, help: "Largest teacher-output cache to choose, in GiB.")
    var cacheBudget: Double = Double(Planner.defaultCacheBudget >> 30)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, dot
    }

    func validate() throws {
        if let nodes, !(1...100_000).contains(nodes) { throw ValidationError("--nodes must be between 1 and 100000") }
        if nodes != nil, format == .dot { throw ValidationError("--nodes goes with the text and json formats") }
        if let coresPerNode, !(1...100_000).contains(coresPerNode) { throw ValidationError("--cores-per-node must be between 1 and 100000") }
        if coresPerNode != nil, nodes == nil { throw ValidationError("--cores-per-node goes with --nodes") }
        guard cacheBudget >= 0, cacheBudget.isFinite else {
            throw ValidationError("--cache-budget must be a number of GiB, 0 or more")
        }
    }

    func run() throws {
        guard let checked = SpecChecker.checkWithData(path: spec, store: store, planning: true, progress: SpecPlanning.progress) else {
            FileHandle.standardError.write(Data("error: cannot read '\(spec)'\n".utf8))
            throw ExitStatus.usage
        }
        if checked.diagnostics.hasErrors {
            print(DiagnosticRenderer.text(checked.diagnostics), terminator: "")
            print(DiagnosticRenderer.summary(checked.diagnostics, files: 1))
            throw ExitStatus.failure
        }
        if !checked.diagnostics.isEmpty {
            FileHandle.standardError.write(Data(DiagnosticRenderer.text(checked.diagnostics).utf8))
        }
        try SpecPlanning.refuseUncomputedRecipe(checked, shown: true)
        if format == .text, !checked.recipe.isEmpty { print(checked.recipe.joined(separator: "\n") + "\n") }
        if let variant, !checked.variants.contains(where: { $0.name == variant }) {
            let names = checked.variants.map(\.name)
            var message = "error: no variant '\(variant)' in \(spec)"
            if let guess = Suggestions.closest(to: variant, in: names) { message += "; did you mean '\(guess)'?" }
            FileHandle.standardError.write(Data((message + "\nvariants: \(names.joined(separator: ", "))\n").utf8))
            throw ExitStatus.usage
        }
        let directory = (spec as NSString).deletingLastPathComponent
        let make = { (rate: Throughput) in
            Planner(throughput: rate, cacheBudgetBytes: Int(cacheBudget * Double(1 << 30)),
                    specDirectory: directory.isEmpty ? "." : directory, store: store).plan(checked, variant: variant)
        }
        var plan = MachineRate.plan(measure: true, make)
        // Stages the store ran: their recorded time and peak memory beside the prediction.
        var recorded: [String: RecordedCost] = [:]
        if FileManager.default.fileExists(atPath: store + "/stages") {
            let runs = RunStore(root: store)
            for s in plan.stages { if let r = runs.recordedCost(s.hash) { recorded[s.hash] = r } }
        }
        // --from-store: the step times as the store's finished stages measured them.
        if fromStore {
            let (rate, stages) = plan.throughput.corrected(by: plan, recorded: recorded)
            if stages > 0 { plan = make(rate) }
        }
        if format == .json {
            plan.baseDirectory = FilePath.absolute(directory)
        }
        if let lock {
            do {
                try LockFiles.write(checked, variant: variant, to: lock)
            } catch {
                FileHandle.standardError.write(Data("error: cannot write lock files to '\(lock)': \(error.localizedDescription)\n".utf8))
                throw ExitStatus.usage
            }
        }
        let schedule = nodes.map { ClusterSchedule(plan, nodes: $0, coresPerNode: coresPerNode, calibratedCores: Throughput.calibratedThreads(machine: Machine.current.key),
                                                   interconnect: Interconnect.load()) }
        switch format {
        case .text:
            print(plan.text(title: spec, recorded: recorded), terminator: "")
            if let schedule { print(schedule.text, terminator: "") }
            try printPower(plan, checked, directory: directory)
        case .json:
            var json = plan.json
            if let schedule, case .object(var fields) = json {
                fields["cluster"] = schedule.json
                json = .object(fields)
            }
            print(json.pretty, terminator: "")
        case .dot: print(plan.dot(), terminator: "")
        }
    }

    /// What the report's comparisons can show, from the spec's variance components or the store's.
    func printPower(_ plan: ExecutionPlan, _ checked: CheckedSpec, directory: String) throws {
        var components: (VarianceComponents, String)?
        if fromStore {
            var folder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: store + "/stages", isDirectory: &folder), folder.boolValue else {
                FileHandle.standardError.write(Data("error: --from-store: no run store at '\(store)'\n".utf8))
                throw ExitStatus.usage
            }
            components = StudyPower.components(plan: plan, store: RunStore(root: store))
            if components == nil {
                // --from-store also corrects step times: a store without comparisons still teaches the plan.
                print("\npower: '\(store)' holds no finished comparison of this spec with two or more seeds per arm to take variance components from"
                      + (checked.base?.report.variance != nil ? "; from the spec's report.variance instead" : ""))
            }
        }
        if components == nil, let v = checked.base?.report.variance {
            // PlannedVariance declares its sources in VarianceComponents' order.
            components = (VarianceComponents(variances: v.sd.map { $0 * $0 }), "the spec's report.variance")
        }
        let cases = checked.base.map { DatasetSummary.summarize($0.data, relativeTo: directory.isEmpty ? "." : directory).cases }
        guard let (c, source) = components else {
            if !fromStore, StudyPower(plan: plan, components: VarianceComponents(variances: Array(repeating: 0, count: 7)), source: "", datasetCases: cases) != nil {
                print("\npower: set report.variance, or plan with --from-store after a study, to see what this design can detect")
            }
            return
        }
        if let power = StudyPower(plan: plan, components: c, source: source, datasetCases: cases) { print(power.text, terminator: "") }
    }
}
