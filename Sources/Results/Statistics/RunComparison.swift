import Foundation

/// An estimated difference with its standard error, an interval and a two-sided test:
/// Student's t with (Satterthwaite's) degrees of freedom, or a calibrated null
/// distribution (FiducialCalibration), in which case `df` is the Student t's that has
/// the same critical value.
public struct Effect: Sendable, Equatable {
    public var estimate: Double
    public var standardError: Double
    public var df: Double
    public var level: Double
    public var lower: Double
    public var upper: Double
    public var pValue: Double
    /// The calibrated null of the studentised estimate (nil: Student's t with `df`).
    public var calibration: FiducialCalibration?

    public init(estimate: Double, variance: Double, df: Double, level: Double = 0.95) {
        self.estimate = estimate
        standardError = max(0, variance).squareRoot()
        self.df = df
        self.level = level
        if standardError == 0 || df.isNaN || df <= 0 {
            // No spread at all: the data are exactly the estimate.
            (lower, upper) = (estimate, estimate)
            pValue = estimate == 0 ? 1 : 0
        } else {
            let q = Distributions.studentQuantile(1 - (1 - level) / 2, df: df)
            (lower, upper) = (estimate - q * standardError, estimate + q * standardError)
            pValue = Distributions.twoSidedP(estimate / standardError, df: df)
        }
    }

    /// The estimate studentised by `standardError` and tested against `calibration`.
    public init(estimate: Double, standardError: Double, calibration: FiducialCalibration, level: Double = 0.95) {
        self.estimate = estimate
        self.standardError = standardError
        self.level = level
        self.calibration = calibration
        df = calibration.equivalentDegrees(level: level)
        let c = calibration.critical(level: level)
        (lower, upper) = (estimate - c * standardError, estimate + c * standardError)
        pValue = standardError > 0 ? calibration.twoSidedP(estimate / standardError) : (estimate == 0 ? 1 : 0)
    }

    public var excludesZero: Bool { lower > 0 || upper < 0 }

    /// P(T > t) under this effect's null (calibrated, or Student's t).
    func upperTail(_ t: Double) -> Double {
        if let calibration { return calibration.upperTail(t) }
        if df.isNaN || df <= 0 { return t > 0 ? 0 : 1 }
        return t >= 0 ? Distributions.studentTail(t, df: df) : 1 - Distributions.studentTail(t, df: df)
    }

    /// Two one-sided tests of equivalence within +-margin: the larger of the p-values of
    /// "the effect is at most -margin" and "at least +margin". Below alpha, the effect
    /// lies inside the margin (its 1 - 2 alpha interval does).
    public func equivalenceP(margin: Double) -> Double {
        guard standardError > 0 else { return abs(estimate) < margin ? 0 : 1 }
        let above = upperTail((estimate + margin) / standardError)
        let below = upperTail((margin - estimate) / standardError)
        return min(1, max(above, below))
    }

    /// The interval at `level` on the same null (for equivalence, 1 - 2 alpha).
    public func interval(level: Double) -> (lower: Double, upper: Double) {
        let c: Double
        if let calibration { c = calibration.critical(level: level) }
        else if df.isNaN || df <= 0 || standardError == 0 { c = 0 }
        else { c = Distributions.studentQuantile(1 - (1 - level) / 2, df: df) }
        return (estimate - c * standardError, estimate + c * standardError)
    }
}

/// How many runs a comparison would need to detect an effect.
public enum RunsNeeded: Sendable, Equatable {
    /// This many student seeds per arm reach the power.
    case runs(Int)
    /// More student seeds cannot reach it: the terms that do not shrink with seeds (the
    /// test cases, the teacher runs) leave at least this standard error.
    case unreachable(floor: Double)
    /// One run per arm: nothing says how much runs vary.
    case unknown
}

/// A distilled student against its baseline when their runs pair by student seed:
/// `differences[t][s][c]`, distilled (teacher run t, student seed s) minus baseline
/// (student seed s), on test case c.
///
/// Teacher runs, student seeds and test cases are crossed random factors of one
/// balanced array (CrossedVariance): the baseline's run to run variation enters
/// through the seed factor, the teacher's through the teacher factor, the test set's
/// through the case factor and its interactions. The effect is the mean difference,
/// tested as `effect` says. With one teacher run the result is conditional on
/// that teacher; with one seed it covers the test cases only and is no claim about
/// training (`replicated` is false).
public struct PairedRunComparison: Sendable {
    public var teacherRuns: Int
    public var seeds: Int
    public var cases: Int
    public var analysis: CrossedVariance
    /// The test the report uses. With teacher runs and seeds both replicated, the
    /// unbiased standard error of the mean against its calibrated null
    /// (FiducialCalibration): there Satterthwaite's t rejects a true null 0.7-3% of the
    /// time at 0.05 (its degrees of freedom fall with every negative coefficient), the
    /// calibrated test 1.3-7%. Otherwise (one teacher run, or one seed) `satterthwaite`,
    /// which holds 4-6.4% on those designs where the calibration is conservative.
    public var effect: Effect
    /// Components estimated below zero dropped, Satterthwaite's degrees of freedom.
    public var satterthwaite: Effect
    /// Per paired run (t, s), the mean over cases of the difference.
    public var runDifferences: [[Double]]

    /// `draws`: the calibration's simulated draws (the report uses the default).
    public init?(differences: [[[Double]]], level: Double = 0.95, draws: Int = 4000) {
        let (t, s, c) = (differences.count, differences.first?.count ?? 0, differences.first?.first?.count ?? 0)
        (teacherRuns, seeds, cases) = (t, s, c)
        guard t > 0, s > 0, c > 0, differences.allSatisfy({ $0.count == s && $0.allSatisfy { $0.count == c } }),
              let analysis = CrossedVariance(differences.flatMap { $0.flatMap { $0 } }, levels: [t, s, c]) else { return nil }
        self.analysis = analysis
        let (variance, df) = analysis.meanVariance
        satterthwaite = Effect(estimate: analysis.mean, variance: variance, df: df, level: level)
        // Teacher runs and seeds both replicated: the calibrated test. With one of them
        // (one teacher run: a comparison conditional on it) Satterthwaite's t keeps its
        // level and the calibration is conservative (Benchmarks/validity.py).
        if analysis.levels.count == 3, let calibration = FiducialCalibration(analysis, draws: draws) {
            let se = FiducialCalibration.unbiasedVariance(analysis.meanSquares, levels: analysis.levels).squareRoot()
            effect = Effect(estimate: analysis.mean, standardError: se, calibration: calibration, level: level)
        } else {
            effect = satterthwaite
        }
        runDifferences = differences.map { $0.map { $0.reduce(0, +) / Double($0.count) } }
    }

    /// Whether runs were replicated: two or more seeds per arm.
    public var replicated: Bool { seeds > 1 }

    /// The fewest student seeds per arm (each under the same teacher runs, on the same
    /// test cases) for a two-sided t test at `alpha` to detect `effect` with `power`,
    /// were the variance components what this comparison estimates.
    public func runsNeeded(effect target: Double, alpha: Double, power: Double, most: Int = 4096) -> RunsNeeded {
        guard replicated, let seedFactor = analysis.kept.firstIndex(of: 1) else { return .unknown }
        func levels(_ n: Int) -> [Int] {
            var l = analysis.levels
            l[seedFactor] = n
            return l
        }
        func reaches(_ n: Int) -> Bool {
            let (variance, df) = analysis.projected(levels: levels(n))
            guard variance > 0 else { return target != 0 }
            return Distributions.power(delta: abs(target) / variance.squareRoot(), df: df, alpha: alpha) >= power
        }
        var high = 2
        while !reaches(high) {
            if high >= most {
                // The part of the variance no number of seeds removes.
                let floor = analysis.components.filter { $0.key & (1 << seedFactor) == 0 }.reduce(0.0) { sum, c in
                    sum + c.value / (0..<analysis.levels.count).filter { c.key & (1 << $0) != 0 }.reduce(1.0) { $0 * Double(analysis.levels[$1]) }
                }
                return .unreachable(floor: floor.squareRoot())
            }
            high = min(most, high * 2)
        }
        var low = max(2, high / 2)
        if reaches(low) { return .runs(low) }
        while high - low > 1 {
            let mid = (low + high) / 2
            if reaches(mid) { high = mid } else { low = mid }
        }
        return .runs(high)
    }
}

/// Two arms whose runs do not pair (a teacher against a baseline student): `a[r][c]`
/// and `b[r][c]`, runs by test cases, the same cases in both.
///
///     D = mean(a) - mean(b),
///     Var(D) = V_case / C + sum over arms of (MS_run - MS_residual) / (C R),
///
/// where V_case is the variance over cases of the per-case difference of the arms'
/// run means, and MS_run and MS_residual come from each arm's run x case ANOVA (a run
/// term estimated below zero is left out). An arm with one run contributes no run
/// term: the result is conditional on that run.
public struct UnpairedRunComparison: Sendable {
    public var effect: Effect
    public var runs: (Int, Int)
    public var cases: Int

    public init?(_ a: [[Double]], _ b: [[Double]], level: Double = 0.95) {
        guard let c = a.first?.count, c > 0, !b.isEmpty, a.allSatisfy({ $0.count == c }), b.allSatisfy({ $0.count == c }) else { return nil }
        cases = c
        runs = (a.count, b.count)
        func caseMeans(_ x: [[Double]]) -> [Double] { (0..<c).map { j in x.reduce(0) { $0 + $1[j] } / Double(x.count) } }
        let delta = zip(caseMeans(a), caseMeans(b)).map { $0 - $1 }
        let estimate = delta.reduce(0, +) / Double(c)
        var terms: [(coefficient: Double, ms: Double, df: Double)] = []
        if c > 1 {
            let v = delta.map { ($0 - estimate) * ($0 - estimate) }.reduce(0, +) / Double(c - 1)
            terms.append((1 / Double(c), v, Double(c - 1)))
        }
        for arm in [a, b] where arm.count > 1 {
            guard let anova = CrossedVariance(arm.flatMap { $0 }, levels: [arm.count, c]) else { return nil }
            let run = 1, residual = c > 1 ? 3 : 1
            guard let msRun = anova.meanSquares[run], let dfRun = anova.degrees[run] else { continue }
            let msResidual = c > 1 ? anova.meanSquares[residual] ?? 0 : 0
            guard msRun > msResidual else { continue }
            let scale = 1 / (Double(c) * Double(arm.count))
            terms.append((scale, msRun, dfRun))
            if c > 1 { terms.append((-scale, msResidual, anova.degrees[residual] ?? 1)) }
        }
        let variance = max(0, terms.reduce(0) { $0 + $1.coefficient * $1.ms })
        let denominator = terms.reduce(0) { $0 + pow($1.coefficient * $1.ms, 2) / $1.df }
        effect = Effect(estimate: estimate, variance: variance, df: denominator > 0 ? variance * variance / denominator : .infinity, level: level)
    }
}
