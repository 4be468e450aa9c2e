import Foundation
import Statistics
import Testing

/// The statistics a report rests on, against published and scipy values.
/// scipy 1.17: `wilcoxon(x, method="exact")` where there are no ties,
/// `wilcoxon(x, method=PermutationMethod(n_resamples=inf))` (the exact conditional
/// test) where there are ties or zeros, `wilcoxon(x, method="approx", correction=True)`
/// above 25 pairs; zeros dropped (zero_method="wilcox") throughout.
@Suite struct StatisticsTests {
    func p(_ x: [Double]) throws -> WilcoxonSignedRank { try #require(WilcoxonSignedRank(x)) }

    @Test func eightPositiveDifferencesGiveTheExactTwoOver256() throws {
        let t = try p([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
        #expect(t.method == .exact && t.n == 8 && t.wPlus == 36)
        #expect(abs(t.pValue - 2.0 / 256) < 1e-12)  // 0.0078125; the normal approximation says 0.0143
    }

    @Test(arguments: [
        ([0.12, -0.03, 0.25, 0.08, -0.11, 0.31, 0.05, 0.19, -0.02, 0.14], 0.048828125),   // no ties
        ([0.5, -0.2, 0.1, 0.7, 0.3, 0.9], 0.09375),
        ([1, 1, -1, 2, 2, 2, -3, 4, 4, 5], 0.068359375),                                   // ties
        ([0, 0, 1, -1, 2, 2, 3, -3, 3, 4, 0, 5], 0.0859375),                               // zeros and ties
    ])
    func exactPValuesMatchScipy(_ x: [Double], _ expected: Double) throws {
        let t = try p(x)
        #expect(t.method == .exact)
        #expect(abs(t.pValue - expected) < 1e-9, "\(x): \(t.pValue), scipy \(expected)")
    }

    @Test(arguments: [
        ([0.254, -0.206, 0.092, -0.007, 0.005, 0.028, -0.152, 0.027, -0.037, 0.382, 0.073, 0.015, 0.022, -0.017, -0.056,
          0.011, 0.098, 0.026, 0.146, 0.03, 0.052, 0.205, 0.105, -0.001, 0.032, 0.104, 0.244, 0.023, 0.026, 0.15], 0.004532528356861686),
        ([1, 2, 2, 3, 3, 3, -1, -2, 4, 4, 5, 5, 5, 6, -6, 7, 7, 8, 8, 8, 9, -9, 10, 10, 11, 11, 12, -12, 13, 13], 0.0007940582073832261),
        ([0, 0, 0, 1, -1, 2, 2, -2, 3, 3, 3, 4, 4, -4, 5, 6, 6, 7, -7, 8, 8, 8, 9, 9, 10, -10, 11, 12, 12, 13, 14], 0.0006853746245046292),
    ])
    func largeSamplesUseTheCorrectedNormalApproximation(_ x: [Double], _ expected: Double) throws {
        let t = try p(x)
        #expect(t.method == .normal && t.n > WilcoxonSignedRank.exactLimit)
        #expect(abs(t.pValue - expected) < 1e-9, "\(t.pValue), scipy \(expected)")
    }

    @Test func allZerosHaveNoTest() {
        #expect(WilcoxonSignedRank([0, 0, 0]) == nil)
        #expect(WilcoxonSignedRank([]) == nil)
    }

    @Test func theBootstrapIsSeededAndBracketsTheMean() throws {
        let x = [0.02, 0.05, -0.01, 0.04, 0.03, 0.06, 0.0, 0.05, 0.02, 0.04, 0.01, 0.03]
        let a = try #require(BootstrapInterval(x, seed: 7)), b = try #require(BootstrapInterval(x, seed: 7))
        #expect(a == b)
        #expect(a.lower < a.mean && a.mean < a.upper && a.excludesZero)
        // About mean +- 1.96 standard errors.
        let mean = x.reduce(0, +) / Double(x.count)
        let se = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1)).squareRoot() / Double(x.count).squareRoot()
        #expect(abs(a.lower - (mean - 1.96 * se)) < 0.4 * se && abs(a.upper - (mean + 1.96 * se)) < 0.4 * se)
        let constant = try #require(BootstrapInterval([0.3, 0.3, 0.3]))
        #expect(constant.lower == 0.3 && constant.upper == 0.3)
    }

    @Test func holmAdjustsStepDownAndStaysMonotone() {
        let adjusted = holmAdjusted([0.01, 0.04, 0.03, 0.2])
        let expected = [0.04, 0.09, 0.09, 0.2]  // 4 x 0.01; 3 x 0.03; max(2 x 0.04, 0.09); 0.2
        #expect(zip(adjusted, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(adjusted)")
        #expect(holmAdjusted([0.5, 0.6]) == [1, 1])
        #expect(holmAdjusted([]) == [])
    }
}
