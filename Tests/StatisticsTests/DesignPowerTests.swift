import Foundation
@testable import Statistics
import Testing

/// The planner's power against what the report's own test does on simulated data: a
/// design's smallest detectable difference, simulated as a true effect, is found about
/// as often as the power asked for.
@Suite struct DesignPowerTests {
    static func components(_ sd: ValidityTests.Components) -> VarianceComponents {
        VarianceComponents(teacher: sd.t * sd.t, seed: sd.s * sd.s, testCase: sd.c * sd.c, teacherSeed: sd.ts * sd.ts,
                           teacherCase: sd.tc * sd.tc, seedCase: sd.sc * sd.sc, residual: sd.tsc * sd.tsc)
    }

    @Test(.timeLimit(.minutes(5))) func theDetectableDifferenceIsFoundAsOftenAsPlanned() throws {
        let sd = ValidityTests.Components()
        let scenario = ValidityTests.Scenario(name: "study", sd: sd)
        let count = 200
        for design in [Design(teachers: 3, seeds: 5, cases: 12), Design(teachers: 1, seeds: 5, cases: 40)] {
            let effect = try #require(DesignPower.smallestDetectable(Self.components(sd), design, alpha: 0.05, power: 0.8))
            var random = SplitMix(seed: UInt64(design.teachers * 100 + design.cases))
            var found = 0
            for _ in 0..<count {
                let d = ValidityTests.simulate(&random, scenario, teachers: design.teachers, seeds: design.seeds, cases: design.cases)
                    .map { $0.map { $0.map { $0 + effect } } }
                let c = try #require(PairedRunComparison(differences: d, draws: 1000))
                if c.effect.pValue <= 0.05 && c.effect.estimate > 0 { found += 1 }
            }
            let realised = Double(found) / Double(count)
            print(String(format: "%@: detectable %.4f, found %.2f of %d times (planned 0.80)", design.description, effect, realised, count))
            #expect(abs(realised - 0.8) < 0.12, "\(design): found \(realised) of the time, planned 0.8")
        }
    }

    /// More of anything shrinks what a design can detect; a noisier study needs more.
    @Test func moreRunsOrCasesDetectLess() throws {
        let c = Self.components(ValidityTests.Components())
        func detectable(_ t: Int, _ s: Int, _ n: Int) throws -> Double {
            try #require(DesignPower.smallestDetectable(c, Design(teachers: t, seeds: s, cases: n), alpha: 0.05, power: 0.8))
        }
        #expect(try detectable(3, 5, 12) > detectable(5, 5, 12))
        #expect(try detectable(3, 5, 12) > detectable(3, 10, 12))
        // More cases help where the cases vary (this study's case term is estimated at zero).
        var cases = c
        cases.testCase = 0.05 * 0.05
        let few = try #require(DesignPower.smallestDetectable(cases, Design(teachers: 3, seeds: 5, cases: 12), alpha: 0.05, power: 0.8))
        let many = try #require(DesignPower.smallestDetectable(cases, Design(teachers: 3, seeds: 5, cases: 40), alpha: 0.05, power: 0.8))
        #expect(few > many)
        var noisy = c
        noisy.teacher *= 4
        let noisier = try #require(DesignPower.smallestDetectable(noisy, Design(teachers: 3, seeds: 5, cases: 12), alpha: 0.05, power: 0.8))
        #expect(try noisier > detectable(3, 5, 12))
        // Equivalence within a wide margin is likely, within a narrow one not.
        let design = Design(teachers: 5, seeds: 10, cases: 40)
        #expect(try #require(DesignPower.equivalencePower(margin: 0.1, c, design, alpha: 0.05)) > 0.95)
        #expect(try #require(DesignPower.equivalencePower(margin: 0.005, c, design, alpha: 0.05)) < 0.05)
        // The cheapest design reaching 0.03 costs no more than any other that does.
        let candidates = [Design(teachers: 3, seeds: 5, cases: 12), Design(teachers: 6, seeds: 10, cases: 48), Design(teachers: 10, seeds: 20, cases: 96)]
        let cost = { (d: Design) in Double(d.teachers * 10 + d.seeds * 2 + d.teachers * d.seeds + d.cases) }
        let best = try #require(DesignPower.cheapest([c], candidates: candidates, alpha: 0.05, power: 0.8, effect: 0.03, margin: nil, cost: cost))
        for d in candidates where (DesignPower.power(effect: 0.03, c, d, alpha: 0.05) ?? 0) >= 0.8 { #expect(cost(best) <= cost(d)) }
    }

    /// Components read back from a comparison: with one teacher run its terms are folded into the seeds'.
    @Test func componentsComeBackFromAComparison() throws {
        var random = SplitMix(seed: 5)
        let d = ValidityTests.simulate(&random, ValidityTests.scenarios[0], teachers: 1, seeds: 5, cases: 12)
        let one = try #require(PairedRunComparison(differences: d))
        let c = try #require(VarianceComponents(one))
        #expect(!c.teacherKnown && c.teacher == 0 && c.teacherSeed == 0)
        let three = try #require(PairedRunComparison(differences: ValidityTests.simulate(&random, ValidityTests.scenarios[0], teachers: 3, seeds: 5, cases: 12)))
        #expect(VarianceComponents(three)?.teacherKnown == true)
    }
}
