@testable import Runtime
import StageConfig
import Statistics
import Testing

/// What a comparison reads, from its Holm-adjusted claims: a difference, equivalence within
/// the margin, both, or neither; never a verdict with one run per arm.
@Suite struct ReadingTests {
    static func comparison(estimate: Double, se: Double, holm: Double?, margin: Double?, equivalenceHolm: Double?, replicated: Bool = true) -> ReportData.Comparison {
        var c = ReportData.Comparison(group: "*", stage: "kd", baseline: "base", teacher: nil, runs: (15, 5), teacherRuns: 3, seeds: 5, cases: 12,
                                      replicated: replicated, effect: Effect(estimate: estimate, variance: se * se, df: 20), holm: holm, gap: nil,
                                      runDifferences: [], runsNeeded: nil, runsNeededForMinimum: nil, leftOut: [], alpha: 0.05)
        c.margin = margin
        c.equivalenceHolm = equivalenceHolm
        return c
    }

    @Test func eachCombinationOfClaimsReadsAsItShould() {
        #expect(Self.comparison(estimate: 0.05, se: 0.01, holm: 0.001, margin: nil, equivalenceHolm: nil).reading == "distillation helped")
        #expect(Self.comparison(estimate: -0.05, se: 0.01, holm: 0.001, margin: 0.1, equivalenceHolm: 0.5).reading == "distillation hurt")
        #expect(Self.comparison(estimate: 0.01, se: 0.002, holm: 0.001, margin: 0.03, equivalenceHolm: 0.001).reading == "distillation helped, by less than 0.03")
        #expect(Self.comparison(estimate: 0.001, se: 0.005, holm: 0.9, margin: 0.03, equivalenceHolm: 0.01).reading == "equivalent within +-0.03")
        #expect(Self.comparison(estimate: 0.01, se: 0.02, holm: 0.9, margin: 0.03, equivalenceHolm: 0.4).reading == "inconclusive")
        #expect(Self.comparison(estimate: 0.01, se: 0.02, holm: 0.9, margin: nil, equivalenceHolm: nil).reading
                == "inconclusive: no difference shown, and no margin to show equivalence")
        // A small Holm p whose interval still holds zero is no difference.
        #expect(Self.comparison(estimate: 0.01, se: 0.02, holm: 0.01, margin: nil, equivalenceHolm: nil).reading.hasPrefix("inconclusive"))
        #expect(Self.comparison(estimate: 0.05, se: 0.01, holm: 0.001, margin: nil, equivalenceHolm: nil, replicated: false).reading == "no verdict: one run per arm")
    }
}

/// The comparison again without the runs flagged as collapsed: their seeds leave both arms.
@Suite struct SensitivityTests {
    static func run(_ train: String, seed: Int, teacher: String, dice: [Double]) -> ReportData.Run {
        let cases = Dictionary(uniqueKeysWithValues: dice.enumerated().map { ("case_\($0.offset)", $0.element) })
        return ReportData.Run(train: train, evaluate: "e" + train, seed: seed, teacher: teacher == "" ? nil : teacher, metrics: .null, caseDice: cases,
                              caseMeanDice: dice.reduce(0, +) / Double(dice.count), validationDice: nil)
    }

    static func summary(_ name: String, _ runs: [ReportData.Run]) -> ReportData.StageSummary {
        ReportData.StageSummary(group: "*", stage: name, role: .trained, runs: runs, pooled: [:], classMetrics: [], caseMeanDice: 0, parameters: 0)
    }

    @Test func collapsedRunsLeaveTheComparisonAndOnlyThen() throws {
        let base = (1...4).map { s in Self.run("b\(s)", seed: s, teacher: "", dice: [0.70, 0.72, 0.74, 0.71].map { $0 - 0.001 * Double(s) }) }
        var kd = (1...4).map { s in Self.run("k\(s)", seed: s, teacher: "t", dice: [0.72, 0.73, 0.75, 0.72].map { $0 + 0.002 * Double(s) }) }
        kd[3] = Self.run("k4", seed: 4, teacher: "t", dice: [0.30, 0.28, 0.35, 0.31])  // collapsed
        let settings = ComparisonSettings(alpha: 0.05, power: 0.8, minEffect: nil)
        let s = Self.summary("kd", kd), b = Self.summary("base", base)
        #expect(ReportData.withoutCollapsed(s, b, flagged: [], settings: settings) == nil)
        let all = try #require(ReportData.compare(s, b, teacher: nil, settings: settings).effect)
        let kept = try #require(ReportData.withoutCollapsed(s, b, flagged: ["k4"], settings: settings))
        #expect(all.estimate < -0.05 && kept.estimate > 0, "all runs \(all.estimate), without the collapsed one \(kept.estimate)")
        // Seed 4 leaves both arms (its baseline run has no partner): three paired seeds remain.
        let three = ReportData.compare(Self.summary("kd", Array(kd.prefix(3))), Self.summary("base", Array(base.prefix(3))), teacher: nil, settings: settings).effect
        #expect(kept == three)
    }
}
