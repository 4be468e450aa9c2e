@testable import Runtime
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
