import Foundation
import Statistics
import Testing

/// The run-level comparisons against an independent reference: Reference/replicated.py
/// re-implements them from the textbook expected mean squares with numpy, takes t and
/// the noncentral t from scipy.stats, and checks the variance of the mean against
/// statsmodels' MixedLM (REML) where every component is positive. It runs here, on
/// designs drawn at random (collapsed runs, negative components, one teacher, one seed).
@Suite struct RunComparisonTests {
    static let python = "/usr/bin/python3"
    static let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Reference/replicated.py").path

    /// Answers of the reference to `problems`, in order.
    static func reference(_ problems: [[String: Any]]) throws -> [[String: Any]] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [reference]
        let input = Pipe(), out = Pipe(), err = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (input, out, err)
        try p.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: problems))
        try input.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "the reference did not run (`make test-deps` installs python3-scipy and python3-statsmodels): \(problem)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    }

    static func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-9) -> Bool {
        if a.isInfinite || b.isInfinite { return a == b || (a > 1e12 && b > 1e12) }
        return abs(a - b) <= tolerance * max(1, abs(a), abs(b))
    }

    static func number(_ any: Any?) -> Double {
        if let d = any as? Double { return d }
        if let i = any as? Int { return Double(i) }
        if let s = any as? String, s == "Infinity" { return .infinity }
        return .nan
    }

    /// A deterministic stream of standard normal draws (Box-Muller over a sine hash).
    struct Draws {
        var i: Double
        init(seed: Double) { i = seed * 1000 }
        mutating func uniform() -> Double {
            i += 1
            let x = sin(i * 12.9898 + 78.233) * 43758.5453
            return x - x.rounded(.down)
        }
        mutating func normal() -> Double { (-2 * log(max(1e-12, uniform()))).squareRoot() * cos(2 * .pi * uniform()) }
    }

    /// Per-case Dice of a run: a case level, the run's level, noise; a collapsed run drops.
    static func design(_ rng: inout Draws, teachers: Int, seeds: Int, cases: Int, seedSpread: Double, caseSpread: Double,
                       collapse: Bool) -> [[[Double]]] {
        func normal() -> Double { rng.normal() }
        let caseEffect = (0..<cases).map { _ in caseSpread * normal() }
        let teacherEffect = (0..<teachers).map { _ in 0.02 * normal() }
        let seedEffect = (0..<seeds).map { _ in seedSpread * normal() }
        return (0..<teachers).map { t in
            (0..<seeds).map { s in
                let drop = collapse && s == seeds - 1 ? 0.25 : 0
                return (0..<cases).map { c in 0.03 + teacherEffect[t] + seedEffect[s] + caseEffect[c] + drop + 0.01 * normal() }
            }
        }
    }

    @Test func pairedComparisonsAndRunsNeededMatchTheReference() throws {
        var rng = Draws(seed: 2026)
        var problems: [[String: Any]] = [], mine: [PairedRunComparison] = []
        let shapes = [(1, 5, 12), (3, 5, 12), (2, 3, 4), (1, 2, 6), (4, 2, 3), (1, 5, 12), (3, 4, 8), (1, 1, 12), (2, 1, 5), (1, 6, 1)]
        for (i, (t, s, c)) in shapes.enumerated() {
            let d = Self.design(&rng, teachers: t, seeds: s, cases: c, seedSpread: i % 3 == 0 ? 0.05 : 0.002,
                                caseSpread: i % 2 == 0 ? 0.04 : 0.001, collapse: i == 5)
            mine.append(try #require(PairedRunComparison(differences: d)))
            problems.append(["kind": "paired", "d": d, "target": 0.03, "alpha": 0.05, "power": 0.8, "most": 256])
        }
        let answers = try Self.reference(problems)
        for (i, (m, a)) in zip(mine, answers).enumerated() {
            let e = try #require(a["effect"] as? [String: Any])
            let w = m.satterthwaite
            #expect(Self.close(w.estimate, Self.number(e["estimate"])), "design \(i): estimate")
            #expect(Self.close(w.standardError, Self.number(e["se"])), "design \(i): se \(w.standardError) against \(e["se"] ?? "")")
            #expect(Self.close(w.df, Self.number(e["df"]), 1e-7), "design \(i): df \(w.df) against \(e["df"] ?? "")")
            #expect(Self.close(w.pValue, Self.number(e["p"]), 1e-7), "design \(i): p \(w.pValue) against \(e["p"] ?? "")")
            #expect(Self.close(w.lower, Self.number(e["lower"]), 1e-7) && Self.close(w.upper, Self.number(e["upper"]), 1e-7), "design \(i): interval")
            // The calibrated test studentises by the unbiased variance of the mean (the reference's, every component kept).
            if let unbiased = a["unbiased_variance"].map(Self.number), m.analysis.levels.count == 3 {
                #expect(Self.close(m.effect.standardError * m.effect.standardError, unbiased, 1e-7), "design \(i): unbiased variance")
            }
            let needed = m.runsNeeded(effect: 0.03, alpha: 0.05, power: 0.8, most: 256)
            switch needed {
            case .runs(let n): #expect(a["runs_needed"] as? Int == n, "design \(i): runs needed \(n) against \(a["runs_needed"] ?? "none")")
            case .unreachable: #expect(a["runs_needed"] == nil || a["runs_needed"] is NSNull, "design \(i): unreachable here, \(a["runs_needed"] ?? "") there")
            case .unknown: #expect(!m.replicated, "design \(i)")
            }
        }
    }

    /// ANOVA estimates are REML's when every component is positive: the variance of the
    /// mean equals statsmodels' for a seed x case design.
    @Test func theVarianceOfTheMeanIsREMLsWhenComponentsArePositive() throws {
        var rng = Draws(seed: 7)
        var problems: [[String: Any]] = [], mine: [PairedRunComparison] = []
        for _ in 0..<3 {
            let d = Self.design(&rng, teachers: 1, seeds: 6, cases: 10, seedSpread: 0.05, caseSpread: 0.05, collapse: false)
            let m = try #require(PairedRunComparison(differences: d))
            try #require(m.analysis.components.values.allSatisfy { $0 > 0 }, "a design with positive components")
            mine.append(m)
            problems.append(["kind": "paired", "d": d, "mixedlm": true])
        }
        for (m, a) in zip(mine, try Self.reference(problems)) {
            let reml = Self.number(a["mixedlm_variance"])
            #expect(Self.close(m.satterthwaite.standardError * m.satterthwaite.standardError, reml, 1e-4), "\(m.satterthwaite.standardError) against REML \(reml)")
            #expect(Self.close(m.effect.standardError * m.effect.standardError, reml, 1e-4), "\(m.effect.standardError) against REML \(reml)")
        }
    }

    /// On a three-factor design (teacher runs x seeds x cases) whose components are all
    /// positive, the calibrated test's variance of the mean is statsmodels MixedLM's
    /// (REML, six crossed random terms beside the residual).
    @Test func theThreeFactorVarianceOfTheMeanIsMixedLMs() throws {
        var rng = Draws(seed: 31)
        var found: [PairedRunComparison] = [], problems: [[String: Any]] = []
        for _ in 0..<40 where found.count < 2 {
            let c = 6, s = 4, t = 3
            let caseEffect = (0..<c).map { _ in 0.03 * rng.normal() }
            let teacherEffect = (0..<t).map { _ in 0.05 * rng.normal() }, seedEffect = (0..<s).map { _ in 0.04 * rng.normal() }
            let ts = (0..<t).map { _ in (0..<s).map { _ in 0.03 * rng.normal() } }, tc = (0..<t).map { _ in (0..<c).map { _ in 0.03 * rng.normal() } }
            let sc = (0..<s).map { _ in (0..<c).map { _ in 0.03 * rng.normal() } }
            let d = (0..<t).map { i in (0..<s).map { j in (0..<c).map { k in
                teacherEffect[i] + seedEffect[j] + caseEffect[k] + ts[i][j] + tc[i][k] + sc[j][k] + 0.02 * rng.normal() } } }
            let m = try #require(PairedRunComparison(differences: d))
            guard m.analysis.components.count == 7, m.analysis.components.values.allSatisfy({ $0 > 0 }) else { continue }
            found.append(m)
            problems.append(["kind": "paired", "d": d, "mixedlm": true])
        }
        try #require(found.count == 2, "two designs with every component positive")
        for (m, a) in zip(found, try Self.reference(problems)) {
            let reml = Self.number(a["mixedlm_variance"])
            #expect(Self.close(m.effect.standardError * m.effect.standardError, reml, 1e-3), "\(m.effect.standardError * m.effect.standardError) against REML \(reml)")
        }
    }

    @Test func unpairedComparisonsMatchTheReference() throws {
        var rng = Draws(seed: 11)
        var problems: [[String: Any]] = [], mine: [UnpairedRunComparison] = []
        for (ra, rb, c) in [(1, 5, 12), (3, 5, 12), (3, 1, 6), (2, 2, 1), (5, 5, 9)] {
            let a = Self.design(&rng, teachers: 1, seeds: ra, cases: c, seedSpread: 0.03, caseSpread: 0.05, collapse: false)[0]
            let b = Self.design(&rng, teachers: 1, seeds: rb, cases: c, seedSpread: 0.01, caseSpread: 0.05, collapse: ra == 3)[0]
            mine.append(try #require(UnpairedRunComparison(a, b)))
            problems.append(["kind": "unpaired", "a": a, "b": b])
        }
        for (i, (m, a)) in zip(mine, try Self.reference(problems)).enumerated() {
            let e = try #require(a["effect"] as? [String: Any])
            #expect(Self.close(m.effect.estimate, Self.number(e["estimate"])), "design \(i)")
            #expect(Self.close(m.effect.standardError, Self.number(e["se"])), "design \(i): se \(m.effect.standardError) against \(e["se"] ?? "")")
            #expect(Self.close(m.effect.pValue, Self.number(e["p"]), 1e-7), "design \(i): p")
        }
    }

    @Test func distributionsMatchScipy() throws {
        let cases: [(t: Double, df: Double, delta: Double, q: Double, x: Double, a: Double, b: Double)] = [
            (2.1, 4, 1.5, 0.975, 0.3, 2, 0.5), (-1.3, 2.7, -0.4, 0.025, 0.9, 0.5, 7.5), (0.4, 31.5, 3.2, 0.6, 0.01, 12, 3),
            (5.0, 1.2, 6.0, 0.99, 0.5, 1, 1), (3.3, 150, 2.8, 0.1, 0.999, 40, 0.5), (-0.2, 9, 0, 0.5, 0.2, 0.5, 4.5),
            (2.5, 6.3, 11.0, 0.995, 0.7, 3.5, 2),
        ]
        let problems: [[String: Any]] = cases.map { ["kind": "distribution", "t": $0.t, "df": $0.df, "delta": $0.delta, "alpha": 0.05, "q": $0.q, "x": $0.x, "a": $0.a, "b": $0.b] }
        for (c, a) in zip(cases, try Self.reference(problems)) {
            #expect(Self.close(Distributions.studentCDF(c.t, df: c.df), Self.number(a["t_cdf"]), 1e-10), "t cdf \(c)")
            #expect(Self.close(Distributions.studentQuantile(c.q, df: c.df), Self.number(a["t_quantile"]), 1e-9), "t quantile \(c)")
            #expect(Self.close(Distributions.noncentralTCDF(c.t, df: c.df, delta: c.delta), Self.number(a["nct_cdf"]), 1e-8), "nct \(c): \(Distributions.noncentralTCDF(c.t, df: c.df, delta: c.delta)) against \(a["nct_cdf"] ?? "")")
            #expect(Self.close(Distributions.power(delta: c.delta, df: c.df, alpha: 0.05), Self.number(a["power"]), 1e-8), "power \(c)")
            #expect(Self.close(Distributions.incompleteBeta(c.x, c.a, c.b), Self.number(a["beta"]), 1e-11), "beta \(c)")
        }
    }

    /// The phantom study's collapsed baseline (stop 21's rerun of specs/phantom-study.yaml):
    /// baseline_s2's seed 4 ended at a case-mean Dice of 0.52 against 0.76-0.81, so kd_t1_s2
    /// minus baseline_s2 per seed was +0.023, +0.031, +0.050, +0.267 and +0.011. The case-level
    /// test read that as p = 0.0005; over runs it is no evidence.
    @Test func aCollapsedRunIsNoEvidence() throws {
        let perSeed = [0.023, 0.031, 0.050, 0.267, 0.011]
        let caseOffsets = [0.01, -0.02, 0.005, 0.03, -0.01, 0.0, 0.015, -0.025, 0.02, -0.005, 0.01, -0.03]
        let d = [perSeed.enumerated().map { s, x in caseOffsets.enumerated().map { c, o in x + o * (s == 3 ? 3 : 1) + 0.001 * Double((s * 7 + c * 3) % 5) } }]
        let m = try #require(PairedRunComparison(differences: d))
        #expect(m.effect.pValue > 0.05, "p = \(m.effect.pValue)")
        #expect(!m.effect.excludesZero)
        #expect(abs(m.effect.estimate - perSeed.reduce(0, +) / 5) < 0.01)
        // The per-case view, seeds averaged first, is what misread it: every case moves up together, and a
        // test over cases alone (the runs held fixed) finds p far below 0.05.
        let caseMeans = (0..<12).map { c in (0..<5).map { d[0][$0][c] }.reduce(0, +) / 5 }
        #expect(try #require(PairedRunComparison(differences: [[caseMeans]])).effect.pValue < 0.001)
        let one = try #require(PairedRunComparison(differences: [[d[0][0]]]))
        #expect(!one.replicated && one.runsNeeded(effect: 0.05, alpha: 0.05, power: 0.8) == .unknown)
    }
}
