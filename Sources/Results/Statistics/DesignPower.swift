import Foundation

/// Where a distilled-minus-baseline difference varies, as variances (Dice squared):
/// teacher runs, student seeds, test cases and their interactions (the residual is
/// teacher run x seed x case). What a design's power is computed from.
public struct VarianceComponents: Sendable, Equatable {
    public var teacher: Double
    public var seed: Double
    public var testCase: Double
    public var teacherSeed: Double
    public var teacherCase: Double
    public var seedCase: Double
    public var residual: Double

    public init(teacher: Double, seed: Double, testCase: Double, teacherSeed: Double, teacherCase: Double, seedCase: Double, residual: Double) {
        (self.teacher, self.seed, self.testCase) = (teacher, seed, testCase)
        (self.teacherSeed, self.teacherCase, self.seedCase, self.residual) = (teacherSeed, teacherCase, seedCase, residual)
    }

    /// From variances in the order teacher, seed, case, teacher x seed, teacher x case,
    /// seed x case, residual (the order `variances` gives them in).
    public init(variances v: [Double]) {
        precondition(v.count == 7, "seven sources of variation")
        self.init(teacher: v[0], seed: v[1], testCase: v[2], teacherSeed: v[3], teacherCase: v[4], seedCase: v[5], residual: v[6])
    }

    public var variances: [Double] { [teacher, seed, testCase, teacherSeed, teacherCase, seedCase, residual] }

    /// By factor set over [teacher, seed, case] (CrossedVariance's masks).
    public var byMask: [Int: Double] {
        [1: teacher, 2: seed, 4: testCase, 3: teacherSeed, 5: teacherCase, 6: seedCase, 7: residual]
    }

    /// A comparison's estimates (negative ones at zero). With one teacher run the teacher's
    /// own terms cannot be told apart: its seed interaction is counted with the seeds and
    /// the residual with the seed x case term, and the teacher terms are zero (`teacherKnown`
    /// is then false). nil for a comparison with one seed or one case.
    public init?(_ comparison: PairedRunComparison) {
        let a = comparison.analysis
        func c(_ mask: Int) -> Double { max(0, a.components[mask] ?? 0) }
        switch a.kept {
        case [0, 1, 2]:
            self.init(teacher: c(1), seed: c(2), testCase: c(4), teacherSeed: c(3), teacherCase: c(5), seedCase: c(6), residual: c(7))
        case [1, 2]:
            self.init(teacher: 0, seed: c(1), testCase: c(2), teacherSeed: 0, teacherCase: 0, seedCase: c(3), residual: 0)
        default:
            return nil
        }
        teacherKnown = a.kept.count == 3
    }

    /// Whether teacher runs were replicated where these were estimated.
    public var teacherKnown = true

    /// The mean of several comparisons' components (each variance averaged).
    public static func pooled(_ all: [VarianceComponents]) -> VarianceComponents? {
        guard !all.isEmpty else { return nil }
        let n = Double(all.count)
        func mean(_ key: KeyPath<VarianceComponents, Double>) -> Double { all.reduce(0) { $0 + $1[keyPath: key] } / n }
        var out = VarianceComponents(teacher: mean(\.teacher), seed: mean(\.seed), testCase: mean(\.testCase), teacherSeed: mean(\.teacherSeed),
                                     teacherCase: mean(\.teacherCase), seedCase: mean(\.seedCase), residual: mean(\.residual))
        out.teacherKnown = all.contains { $0.teacherKnown }
        return out
    }
}

/// A comparison's design: teacher runs x student seeds x test cases.
public struct Design: Hashable, Sendable, CustomStringConvertible {
    public var teachers: Int
    public var seeds: Int
    public var cases: Int
    public init(teachers: Int, seeds: Int, cases: Int) { (self.teachers, self.seeds, self.cases) = (teachers, seeds, cases) }
    public var description: String { "\(teachers) teacher run\(teachers == 1 ? "" : "s") x \(seeds) seed\(seeds == 1 ? "" : "s") x \(cases) test cases" }
}

/// What a design can show before it runs: the test the report would make on the data a
/// design gives on average (mean squares at their expectations), its critical value and
/// degrees of freedom (the calibrated test's equivalent ones where the report calibrates),
/// and power from the noncentral t. Tests/StatisticsTests/DesignPowerTests.swift checks
/// the predicted power against simulations of the report's own test.
public enum DesignPower {
    /// The standard error of the mean, the critical value at `alpha` (two-sided) and its
    /// degrees of freedom, for `design` under `components`. nil without two seeds and two cases.
    public static func test(_ components: VarianceComponents, _ design: Design, alpha: Double) -> (se: Double, critical: Double, df: Double)? {
        guard design.seeds > 1, design.cases > 1, design.teachers >= 1 else { return nil }
        // With one teacher run the comparison is conditional on it: its seed interaction is part of the seed term.
        var sigma = components.byMask
        var all = [design.teachers, design.seeds, design.cases]
        if design.teachers == 1 {
            sigma = [2: components.seed + components.teacherSeed, 4: components.testCase, 6: components.seedCase + components.residual]
            all[0] = 1
        }
        let analysis = CrossedVariance(expected: sigma, levels: all)
        let (variance, df) = analysis.meanVariance
        guard variance > 0 else { return nil }
        if analysis.levels.count == 3, let calibration = FiducialCalibration(analysis) {
            let se = FiducialCalibration.unbiasedVariance(analysis.meanSquares, levels: analysis.levels).squareRoot()
            return (se, calibration.critical(level: 1 - alpha), calibration.equivalentDegrees(level: 1 - alpha))
        }
        return (variance.squareRoot(), Distributions.studentQuantile(1 - alpha / 2, df: df), df)
    }

    /// The chance that the two-sided test at `alpha` finds a true difference `effect`.
    public static func power(effect: Double, _ components: VarianceComponents, _ design: Design, alpha: Double) -> Double? {
        test(components, design, alpha: alpha).map { power(effect: effect, $0) }
    }

    static func power(effect: Double, _ t: (se: Double, critical: Double, df: Double)) -> Double {
        let delta = abs(effect) / t.se
        return 1 - Distributions.noncentralTCDF(t.critical, df: t.df, delta: delta) + Distributions.noncentralTCDF(-t.critical, df: t.df, delta: delta)
    }

    /// The smallest true difference the test at `alpha` finds with `power`.
    public static func smallestDetectable(_ components: VarianceComponents, _ design: Design, alpha: Double, power target: Double) -> Double? {
        guard let t = test(components, design, alpha: alpha) else { return nil }
        var low = 0.0, high = t.se * (t.critical + 4)
        // Power reaches 1 as the difference grows past the critical value; a difference of a
        // whole Dice unit that it does not find is none this design can detect.
        while power(effect: high, t) < target {
            guard high < 1 else { return nil }
            high *= 2
        }
        while high - low > 1e-5 * high {
            let mid = (low + high) / 2
            if power(effect: mid, t) < target { low = mid } else { high = mid }
        }
        return high
    }

    /// The chance that two one-sided tests at `alpha` show equivalence within +-margin when
    /// there is no true difference: the 1 - 2 alpha interval inside the margin.
    public static func equivalencePower(margin: Double, _ components: VarianceComponents, _ design: Design, alpha: Double) -> Double? {
        guard let t = test(components, design, alpha: 2 * alpha) else { return nil }
        let room = margin / t.se - t.critical
        guard room > 0 else { return 0 }
        return max(0, 2 * Distributions.studentCDF(room, df: t.df) - 1)
    }

    /// The cheapest design among `candidates` (by `cost`) that reaches `power` for every
    /// entry of `components`: detecting `effect`, or showing equivalence within `margin`.
    public static func cheapest(_ components: [VarianceComponents], candidates: [Design], alpha: Double, power target: Double,
                                effect: Double?, margin: Double?, cost: (Design) -> Double) -> Design? {
        guard effect != nil || margin != nil else { return nil }
        func reaches(_ d: Design) -> Bool {
            components.allSatisfy { c in
                if let effect, (power(effect: effect, c, d, alpha: alpha) ?? 0) < target { return false }
                if let margin, (equivalencePower(margin: margin, c, d, alpha: alpha) ?? 0) < target { return false }
                return true
            }
        }
        // A design that reaches the target with fewer of everything than another is cheaper
        // in any count; among the rest the cost decides. In cost order, the first that reaches.
        return candidates.map { ($0, cost($0)) }.sorted { $0.1 < $1.1 }.lazy.map(\.0).first(where: reaches)
    }
}

extension CrossedVariance {
    /// The analysis whose mean squares are their expectations under `components` (by
    /// factor set over `allLevels`): the data a design gives on average. Factors with one
    /// level are left out, as from data.
    public init(expected components: [Int: Double], levels allLevels: [Int]) {
        kept = allLevels.indices.filter { allLevels[$0] > 1 }
        levels = kept.map { allLevels[$0] }
        mean = 0
        meanSquares = [:]
        degrees = [:]
        self.components = [:]
        let k = levels.count
        guard k > 0 else { return }
        // Components re-indexed over the kept factors (a set touching a one-level factor is dropped).
        var sigma: [Int: Double] = [:]
        for (mask, value) in components.sorted(by: { $0.key < $1.key }) {
            guard (0..<allLevels.count).allSatisfy({ mask & (1 << $0) == 0 || allLevels[$0] > 1 }) else { continue }
            var local = 0
            for (i, f) in kept.enumerated() where mask & (1 << f) != 0 { local |= 1 << i }
            if local != 0 { sigma[local, default: 0] += max(0, value) }
        }
        let levels = self.levels
        func outside(_ mask: Int) -> Double { Self.levelProduct(levels, mask, inside: false) }
        for f in 1..<(1 << k) {
            meanSquares[f] = sigma.sorted { $0.key < $1.key }.filter { $0.key & f == f }.reduce(0) { $0 + outside($1.key) * $1.value }
            degrees[f] = (0..<k).filter { f & (1 << $0) != 0 }.reduce(1.0) { $0 * Double(levels[$1] - 1) }
            self.components[f] = sigma[f] ?? 0
        }
    }
}
