import Foundation
import Plan
import StageConfig
import Statistics

/// What a report says, computed from the plan and the store: every trained stage
/// summarised over its seeds, and every distilled student compared with its
/// baseline on the unit that is independent, the test case.
///
/// Variants that differ only in the `seed` axis form one group. Within a group a
/// stage has one result per seed; the test cases are the same in every seed (the
/// split does not depend on the stage seed), so a case's Dice is averaged over the
/// seeds first, and the comparison is a paired one over cases (n = cases), not over
/// (seed, case) pairs, which would count each case several times.
public struct ReportData {
    public static let seedAxis = "seed"

    /// A spec stage in one group, over its seeds.
    public struct StageSummary {
        public var group: String
        public var stage: String
        public var role: Role
        public var seeds: Int
        /// Pooled test metrics (dice, iou, recall, precision), mean and sd over seeds.
        public var pooled: [String: (mean: Double, sd: Double)]
        /// Pooled test Dice of each class (the data's class order), mean and sd over seeds,
        /// and the class's mean over test cases of the per-case Dice (averaged over seeds).
        public var classDice: [(name: String, mean: Double, sd: Double, caseMean: Double)]
        /// Mean over cases of the per-case Dice, averaged over seeds.
        public var caseMeanDice: Double
        public var parameters: Int
        /// Per test case, the Dice averaged over seeds.
        public var caseDice: [String: Double]
        /// The train and evaluate stage hashes of each seed, in seed order.
        public var runs: [(train: String, evaluate: String)]
        /// For a distilled student: its baseline and its teacher (spec stage names).
        public var baseline: String?
        public var teacher: String?
    }

    public enum Role: String, Sendable { case teacher, baseline, distilled, trained }

    /// A distilled student against its baseline (and the teacher against the same baseline).
    public struct Comparison {
        public var group: String
        public var stage: String
        public var baseline: String
        public var teacher: String?
        public var seeds: Int
        /// Test cases compared (n).
        public var cases: Int
        /// Per-case Dice differences (distilled minus baseline), each averaged over seeds.
        public var differences: [Double]
        public var interval: BootstrapInterval?
        public var test: WilcoxonSignedRank?
        /// The p-value after Holm's correction over every comparison of the report.
        public var holm: Double?
        /// The teacher's lead over the baseline, per case, measured the same way.
        public var gap: BootstrapInterval?

        /// What a reader may conclude at the 5% level after Holm's correction.
        public var reading: String {
            guard let i = interval else { return "no data" }
            if let p = holm, p < 0.05, i.excludesZero { return i.mean > 0 ? "distillation helped" : "distillation hurt" }
            return "no evidence of a difference"
        }
    }

    public var summaries: [StageSummary] = []
    public var comparisons: [Comparison] = []
    /// The data's classes, in channel order (one, `foreground`, for binary segmentation).
    public var classes: [String] = []
    /// Seeds per group (1 without a seed axis) and test cases.
    public var seeds: Int = 1
    public var testCases: Int = 0
    /// What a reader must know before believing the numbers (see ReportWarnings).
    public var warnings: [String] = []
    public static let bootstrapResamples = 10_000
    public static let bootstrapSeed: UInt64 = 0

    public init(plan: ExecutionPlan, store: RunStore) {
        func groupName(_ v: PlanVariant) -> String {
            let rest = v.choices.filter { $0.axis != Self.seedAxis }.map { "\($0.axis)=\($0.value)" }
            return rest.isEmpty ? "*" : rest.joined(separator: ",")
        }
        var groups: [(String, [PlanVariant])] = []
        for v in plan.variants {
            let g = groupName(v)
            if let i = groups.firstIndex(where: { $0.0 == g }) { groups[i].1.append(v) } else { groups.append((g, [v])) }
        }
        let teachers = Set(plan.stages.compactMap { $0.inputs["teacher"] })
        var shared = Set<String>()
        for (group, variants) in groups {
            guard let names = variants.first?.stages.map(\.name) else { continue }
            for name in names {
                var runs: [(train: String, evaluate: String)] = [], metrics: [JSON] = []
                var baseline: String?, teacher: String?
                for v in variants {
                    guard let s = v.stages.first(where: { $0.name == name }), let m = Report.readMetrics(store, s.evaluate) else { continue }
                    // A stage no seed changes (a teacher trained once) is one run, not one per seed.
                    if runs.contains(where: { $0.train == s.train }) { continue }
                    runs.append((s.train, s.evaluate))
                    metrics.append(m)
                    if let train = plan.stage(s.train) {
                        baseline = Report.baseline(of: train, in: v, plan)?.name
                        teacher = train.inputs["teacher"].flatMap { t in v.stages.first { $0.train == t }?.name }
                    }
                }
                guard let first = runs.first, let train = plan.stage(first.train) else { continue }
                // A stage that every group shares (a teacher trained once) is reported once.
                let everywhere = groups.count > 1 && groups.allSatisfy { $0.1.allSatisfy { $0.stages.contains { $0.train == first.train } } }
                if everywhere, !shared.insert(first.train).inserted { continue }
                let role: Role = teachers.contains(first.train) ? .teacher : (train.kind == .distill ? .distilled : (variantsHaveDistilled(plan, variants) ? .baseline : .trained))
                var pooled: [String: (Double, Double)] = [:]
                for key in ["dice", "iou", "recall", "precision"] {
                    pooled[key] = Self.meanSD(metrics.compactMap { $0["pooled"]?[key]?.number })
                }
                let caseDice = Self.averagedCases(metrics)
                let names = metrics.first?["classes"]?.array?.compactMap(\.string) ?? []
                if classes.isEmpty { classes = names }
                let classDice = names.map { n in
                    let (mean, sd) = Self.meanSD(metrics.compactMap { $0["pooled"]?["classes"]?[n]?["dice"]?.number })
                    let (caseMean, _) = Self.meanSD(metrics.compactMap { $0["per_case"]?["classes"]?[n]?["dice"]?["mean"]?.number })
                    return (name: n, mean: mean, sd: sd, caseMean: caseMean)
                }
                summaries.append(StageSummary(
                    group: everywhere ? "*" : group, stage: name, role: role, seeds: runs.count, pooled: pooled, classDice: classDice,
                    caseMeanDice: caseDice.isEmpty ? .nan : caseDice.values.reduce(0, +) / Double(caseDice.count),
                    parameters: metrics.first?["parameters"]?.int ?? 0, caseDice: caseDice, runs: runs,
                    baseline: train.kind == .distill ? baseline : nil, teacher: teacher))
            }
        }
        seeds = summaries.map(\.seeds).max() ?? 1
        testCases = summaries.map(\.caseDice.count).max() ?? 0
        for s in summaries where s.role == .distilled {
            guard let b = s.baseline, let base = summary(b, in: s.group) else { continue }
            let cases = s.caseDice.keys.filter { base.caseDice[$0] != nil }.sorted()
            let differences = cases.compactMap { c in s.caseDice[c].flatMap { x in base.caseDice[c].map { x - $0 } } }
            var gap: BootstrapInterval?
            if let t = s.teacher, let teacher = summary(t, in: s.group) {
                let g = cases.compactMap { c in teacher.caseDice[c].flatMap { x in base.caseDice[c].map { x - $0 } } }
                gap = BootstrapInterval(g, resamples: Self.bootstrapResamples, seed: Self.bootstrapSeed)
            }
            comparisons.append(Comparison(group: s.group, stage: s.stage, baseline: b, teacher: s.teacher, seeds: min(s.seeds, base.seeds),
                                          cases: differences.count, differences: differences,
                                          interval: BootstrapInterval(differences, resamples: Self.bootstrapResamples, seed: Self.bootstrapSeed),
                                          test: WilcoxonSignedRank(differences), holm: nil, gap: gap))
        }
        // Holm over the comparisons that have a test (an all-zero difference has none: p = 1).
        let adjusted = holmAdjusted(comparisons.map { $0.test?.pValue ?? 1 })
        for i in comparisons.indices { comparisons[i].holm = adjusted[i] }
        warnings = ReportWarnings.collect(plan, store, summaries)
    }

    /// The stage `name` in `group`, or the shared one.
    public func summary(_ name: String, in group: String) -> StageSummary? {
        summaries.first { $0.stage == name && $0.group == group } ?? summaries.first { $0.stage == name && $0.group == "*" }
    }

    private func variantsHaveDistilled(_ plan: ExecutionPlan, _ variants: [PlanVariant]) -> Bool {
        variants.contains { v in v.stages.contains { plan.stage($0.train)?.kind == .distill } }
    }

    static func meanSD(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (.nan, .nan) }
        let m = v.reduce(0, +) / Double(v.count)
        return (m, v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0)
    }

    /// Per test case, the Dice of its slices, averaged over the seeds that have it in every run.
    static func averagedCases(_ metrics: [JSON]) -> [String: Double] {
        var sums: [String: (Double, Int)] = [:]
        for m in metrics {
            for c in m["cases"]?.array ?? [] {
                guard let name = c["case"]?.string, let d = c["dice"]?.number else { continue }
                sums[name, default: (0, 0)].0 += d
                sums[name, default: (0, 0)].1 += 1
            }
        }
        return sums.filter { $0.value.1 == metrics.count }.mapValues { $0.0 / Double($0.1) }
    }
}
