import Foundation
import Plan
import StageConfig
import Statistics

/// What a report says, computed from the plan and the store: every trained stage
/// with each of its training runs, and every distilled student compared with its
/// baseline over both sources of variation, training runs and test cases.
///
/// Variants that differ only in the replication axes (`sweep.seeds`: student and
/// teacher seeds) form one group. Within a group a stage has one run per seed (per
/// teacher seed and student seed for a distilled student); a stage no seed changes
/// (a teacher without teacher seeds) is one run. A distilled student is compared
/// with its baseline run by run: runs with the same stage `seed` pair (they start
/// from the same draws), and under several teacher runs each seed pairs once per
/// teacher. The differences per test case form a balanced teacher run x seed x case
/// array whose factors are all random (PairedRunComparison); the teacher's lead over
/// the baseline does not pair and is compared arm against arm (UnpairedRunComparison).
public struct ReportData {
    /// One training run of a spec stage: a train (or pretrained) stage and its evaluation.
    public struct Run {
        public var train: String
        public var evaluate: String
        /// The stage's `seed` (nil for a pretrained stage).
        public var seed: Int?
        /// The teacher run it was distilled from (its stage hash).
        public var teacher: String?
        public var metrics: JSON
        /// Dice of each test case (its slices pooled).
        public var caseDice: [String: Double]
        /// The mean of `caseDice`: the run's outcome in every comparison.
        public var caseMeanDice: Double
        /// Validation Dice of the kept checkpoint (nil without validation).
        public var validationDice: Double?
    }

    /// A spec stage in one group, over its runs.
    public struct StageSummary {
        public var group: String
        public var stage: String
        public var role: Role
        public var runs: [Run]
        /// Pooled test metrics (dice, iou, recall, precision), mean and sd over runs.
        public var pooled: [String: (mean: Double, sd: Double)]
        /// Each class's metrics (the data's class order), each the mean and sd over runs.
        public var classMetrics: [ClassMetrics]
        /// Mean over runs of each run's mean over cases.
        public var caseMeanDice: Double
        public var parameters: Int
        /// For a distilled student: its baseline and its teacher (spec stage names).
        public var baseline: String?
        public var teacher: String?
        /// Distinct teacher runs a distilled student's runs were distilled from.
        public var teacherRuns: Int { Set(runs.compactMap(\.teacher)).count }
    }

    public enum Role: String, Sendable { case teacher, baseline, distilled, trained }

    /// One class of one stage over its runs: the pooled Dice (TP, FP and FN summed over the
    /// test cases), and the means over cases of Dice, HD95 (mm) and NSD; each a mean and sd
    /// over runs, with the most cases any run left undefined.
    public struct ClassMetrics {
        public var name: String
        public var pooledDice: (mean: Double, sd: Double)
        public var caseDice: (mean: Double, sd: Double)
        public var hd95: (mean: Double, sd: Double)
        public var nsd: (mean: Double, sd: Double)
        /// Test cases (of the most in any run) where Dice, HD95 and NSD are undefined.
        public var undefined: (dice: Int, hd95: Int, nsd: Int)
        /// The NSD's tolerance in mm.
        public var tolerance: Double?
    }

    /// A distilled student against its baseline (and the teacher against the same baseline).
    public struct Comparison {
        public var group: String
        public var stage: String
        public var baseline: String
        public var teacher: String?
        /// Runs of the distilled student and of the baseline that entered.
        public var runs: (distilled: Int, baseline: Int)
        public var teacherRuns: Int
        /// Seeds that pair the two arms (0 when they do not pair).
        public var seeds: Int
        /// Test cases compared.
        public var cases: Int
        /// Whether each arm has two or more runs: only then is there a claim about training.
        public var replicated: Bool
        public var effect: Effect?
        /// The p-value after Holm's correction over the replicated comparisons of the report.
        public var holm: Double?
        /// The teacher's lead over the baseline, arm against arm.
        public var gap: Effect?
        /// Each paired run's difference, mean over cases: (teacher run index, seed, difference).
        public var runDifferences: [(teacherRun: Int, seed: Int, difference: Double)]
        /// Seeds per arm that would detect the observed effect, and `min_effect`.
        public var runsNeeded: RunsNeeded?
        public var runsNeededForMinimum: RunsNeeded?
        /// Runs left out because their partner is missing (a failed or pending stage).
        public var leftOut: [String]
        public var alpha: Double

        /// The equivalence margin (the spec's `report.margin`), the two one-sided tests'
        /// p-value and its Holm adjustment (with every other claim of the report).
        public var margin: Double?
        public var equivalence: Double?
        public var equivalenceHolm: Double?
        /// The same comparison without the runs flagged as collapsed (nil when none was).
        public var withoutCollapsed: Effect?
        /// The variance components it estimated (runs paired by seed only).
        public var components: VarianceComponents?

        /// What a reader may conclude at the report's level after Holm's correction:
        /// helped, hurt, equivalent within the margin, or inconclusive.
        public var reading: String {
            guard let effect else { return "no data" }
            guard replicated else { return "no verdict: one run per arm" }
            let differs = (holm ?? 1) < alpha && effect.excludesZero
            let within = margin.flatMap { m in (equivalenceHolm ?? 1) < alpha ? m : nil }
            switch (differs, within) {
            case (true, let m?): return (effect.estimate > 0 ? "distillation helped" : "distillation hurt") + String(format: ", by less than %g", m)
            case (true, nil): return effect.estimate > 0 ? "distillation helped" : "distillation hurt"
            case (false, let m?): return String(format: "equivalent within +-%g", m)
            case (false, nil): return margin == nil ? "inconclusive: no difference shown, and no margin to show equivalence" : "inconclusive"
            }
        }
    }

    /// A run flagged as collapsed, with the rule's figures.
    public struct CollapsedRun {
        public var stage: String
        public var group: String
        public var seed: Int?
        public var teacherRun: Int?
        public var train: String
        /// Which score flagged it ("validation" or "test"), its value and the stage's median.
        public var measure: String
        public var value: Double
        public var median: Double
    }

    public var summaries: [StageSummary] = []
    public var comparisons: [Comparison] = []
    public var collapsed: [CollapsedRun] = []
    /// The data's classes, in channel order (one, `foreground`, for binary segmentation).
    public var classes: [String] = []
    /// Most runs of any stage, and test cases.
    public var runs: Int = 1
    public var testCases: Int = 0
    /// How test volumes were predicted: `slices` placed back, or 3D `sliding_window`s resampled back.
    public var prediction = "slices"
    public var settings: ComparisonSettings
    /// What a reader must know before believing the numbers (see ReportWarnings).
    public var warnings: [String] = []
    /// The machines that made the report's stages (as their done records name them), each with
    /// the labels of its stages; stages whose records name no machine are left out.
    public var machines: [(machine: Provenance, stages: [String])] = []
    /// The HD95 conventions the evaluations used (metrics.json names each), sorted.
    public var hd95Definitions: [String] = []

    /// The rule that names a collapsed run: more than this far below its stage's median...
    public static let collapseMargin = 0.1
    /// ...and more than this many robust standard deviations (1.4826 x MAD) below it.
    public static let collapseDeviations = 3.5

    public init(plan: ExecutionPlan, store: RunStore) {
        settings = plan.stages.lazy.compactMap { s -> ComparisonSettings? in
            if case .report(let c) = s.config { return c.comparison }
            return nil
        }.first ?? ComparisonSettings(alpha: 0.05, power: 0.8, minEffect: nil)
        var groups: [(String, [PlanVariant])] = []
        for v in plan.variants {
            let g = Self.group(of: v)
            if let i = groups.firstIndex(where: { $0.0 == g }) { groups[i].1.append(v) } else { groups.append((g, [v])) }
        }
        let teachers = Set(plan.stages.compactMap { $0.inputs["teacher"] })
        /// The train stages of spec stage `name` over a group's variants, in order.
        func trains(_ name: String, _ variants: [PlanVariant]) -> [String] {
            var out: [String] = []
            for v in variants { if let s = v.stages.first(where: { $0.name == name }), !out.contains(s.train) { out.append(s.train) } }
            return out
        }
        var shared = Set<[String]>()
        for (group, variants) in groups {
            guard let names = variants.first?.stages.map(\.name) else { continue }
            for name in names {
                let mine = trains(name, variants)
                // A stage whose runs are the same in every group (a teacher no axis changes) is reported once.
                let everywhere = groups.count > 1 && groups.allSatisfy { trains(name, $0.1) == mine }
                if everywhere, !shared.insert(mine).inserted { continue }
                var runs: [Run] = []
                var baseline: String?, teacher: String?
                for v in variants {
                    guard let s = v.stages.first(where: { $0.name == name }), !runs.contains(where: { $0.train == s.train }),
                          let m = Report.readMetrics(store, s.evaluate), let train = plan.stage(s.train) else { continue }
                    runs.append(Self.run(train, evaluate: s.evaluate, metrics: m, store: store))
                    baseline = Report.baseline(of: train, in: v, plan)?.name
                    teacher = train.inputs["teacher"].flatMap { t in v.stages.first { $0.train == t }?.name }
                }
                guard let first = runs.first, let train = plan.stage(first.train) else { continue }
                let role: Role = teachers.contains(first.train) ? .teacher
                    : (train.kind == .distill ? .distilled : (variants.contains { v in v.stages.contains { plan.stage($0.train)?.kind == .distill } } ? .baseline : .trained))
                let metrics = runs.map(\.metrics)
                var pooled: [String: (Double, Double)] = [:]
                for key in ["dice", "iou", "recall", "precision"] {
                    pooled[key] = Self.meanSD(metrics.compactMap { $0["pooled"]?[key]?.number })
                }
                let names = metrics.first?["classes"]?.array?.compactMap(\.string) ?? []
                if classes.isEmpty { classes = names }
                if let p = metrics.first?["prediction"]?.string { prediction = p }
                let classMetrics = names.map { n -> ClassMetrics in
                    func perCase(_ key: String) -> (Double, Double) { Self.meanSD(metrics.compactMap { $0["per_case"]?["classes"]?[n]?[key]?["mean"]?.number }) }
                    func undefined(_ key: String) -> Int { metrics.compactMap { $0["per_case"]?["classes"]?[n]?[key]?["undefined"]?.int }.max() ?? 0 }
                    return ClassMetrics(name: n, pooledDice: Self.meanSD(metrics.compactMap { $0["pooled"]?["classes"]?[n]?["dice"]?.number }),
                                        caseDice: perCase("dice"), hd95: perCase("hd95"), nsd: perCase("nsd"),
                                        undefined: (undefined("dice"), undefined("hd95"), undefined("nsd")),
                                        tolerance: metrics.first?["nsd_tolerance_mm"]?[n]?.number)
                }
                summaries.append(StageSummary(
                    group: everywhere ? "*" : group, stage: name, role: role, runs: runs, pooled: pooled, classMetrics: classMetrics,
                    caseMeanDice: Self.meanSD(runs.map(\.caseMeanDice).filter(\.isFinite)).0,
                    parameters: metrics.first?["parameters"]?.int ?? 0,
                    baseline: train.kind == .distill ? baseline : nil, teacher: teacher))
            }
        }
        runs = summaries.map(\.runs.count).max() ?? 1
        testCases = summaries.map { $0.runs.first?.caseDice.count ?? 0 }.max() ?? 0
        for s in summaries where s.role == .distilled {
            guard let b = s.baseline, let base = summary(b, in: s.group) else { continue }
            comparisons.append(Self.compare(s, base, teacher: s.teacher.flatMap { summary($0, in: s.group) }, settings: settings))
        }
        // Holm over every claim the comparisons that can make one about training may make:
        // a difference, and with a margin, equivalence.
        let tested = comparisons.indices.filter { comparisons[$0].replicated && comparisons[$0].effect != nil }
        var claims = tested.map { comparisons[$0].effect?.pValue ?? 1 }
        let equivalent = settings.margin == nil ? [] : tested
        for i in equivalent {
            comparisons[i].margin = settings.margin
            comparisons[i].equivalence = settings.margin.flatMap { m in comparisons[i].effect?.equivalenceP(margin: m) }
            claims.append(comparisons[i].equivalence ?? 1)
        }
        let adjusted = holmAdjusted(claims)
        for (i, p) in zip(tested, adjusted) { comparisons[i].holm = p }
        for (i, p) in zip(equivalent, adjusted.dropFirst(tested.count)) { comparisons[i].equivalenceHolm = p }
        collapsed = summaries.flatMap(Self.collapsedRuns)
        for i in comparisons.indices {
            guard let s = summary(comparisons[i].stage, in: comparisons[i].group), let b = summary(comparisons[i].baseline, in: comparisons[i].group) else { continue }
            comparisons[i].withoutCollapsed = Self.withoutCollapsed(s, b, flagged: Set(collapsed.filter { $0.group == comparisons[i].group }.map(\.train)), settings: settings)
        }
        // A model that segments nothing has no precision and a Dice of 0: say so rather than let a mean hide it.
        let empty = summaries.flatMap { s in
            s.runs.filter { $0.metrics["predicted_nothing"] == .bool(true) }.map { r in
                "\(s.stage)\(s.group == "*" ? "" : " (\(s.group))")" + (r.seed.map { " seed \($0)" } ?? "") + " (\(r.train.prefix(12)))"
            }
        }
        let nothing = empty.isEmpty ? [] : ["predicts no foreground voxel in any test case, so its precision is undefined and its Dice 0: " + empty.joined(separator: ", ")]
        // One warning per distinct set of empty test labels (every stage of a split sees the same ones).
        var emptyLabels: [String] = []
        for s in summaries { for r in s.runs { if let w = Evaluation.emptyLabelWarning(r.metrics), !emptyLabels.contains(w) { emptyLabels.append(w) } } }
        warnings = ReportWarnings.collect(plan, store, summaries) + collapsed.map(Self.describe) + nothing + emptyLabels
        machines = Self.machines(plan, store, summaries)
        hd95Definitions = Set(summaries.flatMap { $0.runs.compactMap { $0.metrics["hd95_definition"]?.string } }).sorted()
        warnings += Self.mixedMachines(plan, store)
    }

    /// Which machine made each trained and evaluated stage of the report.
    static func machines(_ plan: ExecutionPlan, _ store: RunStore, _ summaries: [StageSummary]) -> [(machine: Provenance, stages: [String])] {
        var found: [Provenance: [String]] = [:], order: [Provenance] = []
        for h in summaries.flatMap({ $0.runs.flatMap { [$0.train, $0.evaluate] } }) {
            guard case .valid(let record) = store.record(h), let machine = Provenance(record: .object(record.fields)) else { continue }
            if found[machine] == nil { order.append(machine) }
            found[machine, default: []].append(plan.stage(h)?.label ?? String(h.prefix(12)))
        }
        return order.map { ($0, found[$0] ?? []) }
    }

    /// Comparisons whose arms were trained on different kinds of CPU: their runs differ by the
    /// machine too (each kind sums in its own order), not only by the teacher.
    static func mixedMachines(_ plan: ExecutionPlan, _ store: RunStore) -> [String] {
        func kinds(_ hash: String) -> String? {
            guard case .valid(let record) = store.record(hash) else { return nil }
            return Provenance(record: .object(record.fields))?.cpuKind
        }
        var out: [String] = []
        for v in plan.variants {
            for s in v.stages {
                guard let train = plan.stage(s.train), let base = Report.baseline(of: train, in: v, plan),
                      let a = kinds(s.train), let b = kinds(base.train), a != b else { continue }
                out.append("\(s.name) and its baseline \(base.name)\(v.name.isEmpty ? "" : " (\(v.name))") were trained on different kinds of CPU (\(a) against \(b)): "
                           + "their difference includes the machines'")
            }
        }
        return Array(Set(out)).sorted()
    }

    /// Sensitivity: a student against its baseline again without the `flagged` (collapsed)
    /// runs of either; nil when neither has one.
    static func withoutCollapsed(_ s: StageSummary, _ base: StageSummary, flagged: Set<String>, settings: ComparisonSettings) -> Effect? {
        guard s.runs.contains(where: { flagged.contains($0.train) }) || base.runs.contains(where: { flagged.contains($0.train) }) else { return nil }
        var kept = s, keptBase = base
        kept.runs.removeAll { flagged.contains($0.train) }
        keptBase.runs.removeAll { flagged.contains($0.train) }
        return compare(kept, keptBase, teacher: nil, settings: settings).effect
    }

    /// The group of a variant: its choices other than the replication axes ("*" for none).
    public static func group(of v: PlanVariant) -> String {
        let rest = v.choices.filter { !Replication.axes.contains($0.axis) }.map { "\($0.axis)=\($0.value)" }
        return rest.isEmpty ? "*" : rest.joined(separator: ",")
    }

    /// The stage `name` in `group`, or the shared one.
    public func summary(_ name: String, in group: String) -> StageSummary? {
        summaries.first { $0.stage == name && $0.group == group } ?? summaries.first { $0.stage == name && $0.group == "*" }
    }

    static func run(_ train: PlanStage, evaluate: String, metrics: JSON, store: RunStore) -> Run {
        var caseDice: [String: Double] = [:]
        for c in metrics["cases"]?.array ?? [] {
            if let name = c["case"]?.string, let d = c["dice"]?.number { caseDice[name] = d }
        }
        var seed: Int?
        if case .train(let c) = train.config { seed = c.seed }
        return Run(train: train.hash, evaluate: evaluate, seed: seed, teacher: train.inputs["teacher"], metrics: metrics, caseDice: caseDice,
                   caseMeanDice: caseDice.isEmpty ? .nan : caseDice.values.reduce(0, +) / Double(caseDice.count),
                   validationDice: validationDice(store, train.hash))
    }

    /// The epoch a training stage kept: in its `done` record, or for a stage done before
    /// Distillery recorded it there, in the state.json it left.
    static func keptEpoch(_ store: RunStore, _ hash: String) -> Int? {
        if let epoch = FileManager.default.contents(atPath: store.file(hash, "done")).flatMap(JSON.parse)?["best_epoch"]?.int { return epoch }
        return FileManager.default.contents(atPath: store.file(hash, "state.json")).flatMap(JSON.parse)?["best_epoch"]?.int
    }

    /// The validation Dice of the epoch a training stage kept (nil without validation).
    static func validationDice(_ store: RunStore, _ hash: String) -> Double? {
        guard let best = keptEpoch(store, hash),
              let text = try? String(contentsOfFile: store.file(hash, "metrics.jsonl"), encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            guard let record = JSON.parse(Data(line.utf8)), record["epoch"]?.int == best else { continue }
            return record["val_dice"]?.number
        }
        return nil
    }

    /// A distilled student against its baseline, run by run.
    static func compare(_ s: StageSummary, _ base: StageSummary, teacher: StageSummary?, settings: ComparisonSettings) -> Comparison {
        let teacherRuns = Array(Set(s.runs.compactMap(\.teacher))).sorted { a, b in
            (s.runs.firstIndex { $0.teacher == a } ?? 0) < (s.runs.firstIndex { $0.teacher == b } ?? 0)
        }
        let baseBySeed = Dictionary(base.runs.compactMap { r in r.seed.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
        func run(_ t: String?, _ seed: Int) -> Run? { s.runs.first { $0.seed == seed && $0.teacher == t } }
        // Seeds present in the baseline and under every teacher run: the balanced part of the design.
        let seeds = Array(Set(s.runs.compactMap(\.seed))).sorted().filter { seed in
            baseBySeed[seed] != nil && (teacherRuns.isEmpty ? run(nil, seed) != nil : teacherRuns.allSatisfy { run($0, seed) != nil })
        }
        var allRuns = s.runs + base.runs + (teacher?.runs ?? [])
        let cases = Array(allRuns.reduce(Set(allRuns.first?.caseDice.keys.map { $0 } ?? [])) { $0.intersection($1.caseDice.keys) }).sorted()
        var c = Comparison(group: s.group, stage: s.stage, baseline: base.stage, teacher: s.teacher, runs: (s.runs.count, base.runs.count),
                           teacherRuns: max(1, teacherRuns.count), seeds: seeds.count, cases: cases.count, replicated: false, effect: nil, holm: nil,
                           gap: nil, runDifferences: [], runsNeeded: nil, runsNeededForMinimum: nil, leftOut: [], alpha: settings.alpha)
        if let teacher, !cases.isEmpty {
            c.gap = UnpairedRunComparison(teacher.runs.map { r in cases.map { r.caseDice[$0] ?? .nan } },
                                          base.runs.map { r in cases.map { r.caseDice[$0] ?? .nan } })?.effect
        }
        if !seeds.isEmpty, !cases.isEmpty {
            let ts: [String?] = teacherRuns.isEmpty ? [nil] : teacherRuns
            let d = ts.map { t in
                seeds.map { seed in cases.map { (run(t, seed)?.caseDice[$0] ?? .nan) - (baseBySeed[seed]?.caseDice[$0] ?? .nan) } }
            }
            let used = Set(ts.flatMap { t in seeds.compactMap { run(t, $0)?.train } } + seeds.compactMap { baseBySeed[$0]?.train })
            allRuns = s.runs + base.runs
            c.leftOut = allRuns.filter { !used.contains($0.train) }.map { r in
                "\(base.runs.contains { $0.train == r.train } ? base.stage : s.stage) seed \(r.seed.map(String.init) ?? "-")"
            }
            if let paired = PairedRunComparison(differences: d) {
                c.effect = paired.effect
                c.components = VarianceComponents(paired)
                c.replicated = paired.replicated
                c.runs = (ts.count * seeds.count, seeds.count)
                c.runDifferences = paired.runDifferences.enumerated().flatMap { t, row in row.enumerated().map { (t, seeds[$0.offset], $0.element) } }
                c.runsNeeded = paired.runsNeeded(effect: paired.effect.estimate, alpha: settings.alpha, power: settings.power)
                c.runsNeededForMinimum = settings.minEffect.map { paired.runsNeeded(effect: $0, alpha: settings.alpha, power: settings.power) }
            }
        } else if !cases.isEmpty, let unpaired = UnpairedRunComparison(s.runs.map { r in cases.map { r.caseDice[$0] ?? .nan } },
                                                                         base.runs.map { r in cases.map { r.caseDice[$0] ?? .nan } }) {
            // Runs that do not pair by seed: arm against arm.
            c.effect = unpaired.effect
            c.replicated = s.runs.count > 1 && base.runs.count > 1
        }
        return c
    }

    /// Runs of a stage (three or more) far below the others: on the kept checkpoint's
    /// validation Dice, or on the test Dice (mean over cases).
    static func collapsedRuns(_ s: StageSummary) -> [CollapsedRun] {
        guard s.runs.count >= 3 else { return [] }
        let teacherRuns = Array(Set(s.runs.compactMap(\.teacher))).sorted { a, b in
            (s.runs.firstIndex { $0.teacher == a } ?? 0) < (s.runs.firstIndex { $0.teacher == b } ?? 0)
        }
        var out: [CollapsedRun] = []
        for (measure, value) in [("validation", { (r: Run) in r.validationDice }), ("test", { (r: Run) -> Double? in r.caseMeanDice.isFinite ? r.caseMeanDice : nil })] {
            let values = s.runs.compactMap(value)
            guard values.count == s.runs.count else { continue }
            let m = median(values), spread = 1.4826 * median(values.map { abs($0 - m) })
            for r in s.runs {
                guard let v = value(r), m - v > collapseMargin, m - v > collapseDeviations * spread,
                      !out.contains(where: { $0.train == r.train }) else { continue }
                out.append(CollapsedRun(stage: s.stage, group: s.group, seed: r.seed, teacherRun: r.teacher.flatMap { teacherRuns.firstIndex(of: $0) },
                                        train: r.train, measure: measure, value: v, median: m))
            }
        }
        return out
    }

    static func describe(_ c: CollapsedRun) -> String {
        let group = c.group == "*" ? "" : " (\(c.group))"
        let who = "\(c.stage)\(group)" + (c.seed.map { " seed \($0)" } ?? "") + (c.teacherRun.map { " under teacher run \($0 + 1)" } ?? "")
        return String(format: "run %@ (stage %@) collapsed: %@ Dice %.3f against its stage's median %.3f (more than %.2f and %.1f robust sd below it); it stays in every number above",
                      who, String(c.train.prefix(12)), c.measure, c.value, c.median, collapseMargin, collapseDeviations)
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func meanSD(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (.nan, .nan) }
        let m = v.reduce(0, +) / Double(v.count)
        return (m, v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0)
    }
}
