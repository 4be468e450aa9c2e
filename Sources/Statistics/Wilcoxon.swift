import Foundation

/// The Wilcoxon signed-rank test of paired differences, two-sided.
///
/// Zero differences are dropped (Wilcox's convention, scipy's default); ties share
/// their mean rank. For up to `exactLimit` non-zero differences the p-value is exact:
/// the distribution of W+ under the null, every rank's sign +/- with probability
/// 1/2, enumerated by counting (with tied ranks this is the exact conditional
/// distribution, what a full permutation test gives). Above it, the normal
/// approximation with the tie correction of the variance and a continuity correction.
public struct WilcoxonSignedRank: Sendable, Equatable {
    public enum Method: String, Sendable { case exact, normal }

    /// Non-zero differences used.
    public var n: Int
    /// Sum of the ranks of the positive differences.
    public var wPlus: Double
    public var pValue: Double
    public var method: Method

    public static let exactLimit = 25

    /// nil when no difference is non-zero.
    public init?(_ differences: [Double]) {
        let d = differences.filter { $0 != 0 && $0.isFinite }
        n = d.count
        guard n > 0 else { return nil }
        let ranks = Self.midranks(d.map(abs))
        wPlus = zip(d, ranks).filter { $0.0 > 0 }.map(\.1).reduce(0, +)
        if n <= Self.exactLimit {
            method = .exact
            pValue = Self.exactP(ranks: ranks, wPlus: wPlus)
        } else {
            method = .normal
            pValue = Self.normalP(ranks: ranks, wPlus: wPlus, values: d.map(abs))
        }
    }

    /// Ranks 1...n of `values`, ties sharing their mean rank.
    static func midranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, values[order[j + 1]] == values[order[i]] { j += 1 }
            for k in i...j { ranks[order[k]] = Double(i + j + 2) / 2 }
            i = j + 1
        }
        return ranks
    }

    /// Two-sided exact p: twice the smaller tail of W+, at most 1. Ranks are multiples of
    /// 1/2, so the distribution is counted over doubled (integer) ranks.
    static func exactP(ranks: [Double], wPlus: Double) -> Double {
        let doubled = ranks.map { Int(($0 * 2).rounded()) }
        let total = doubled.reduce(0, +)
        // counts[s]: sign patterns whose positive doubled ranks sum to s (as Double: 2^25 fits exactly).
        var counts = [Double](repeating: 0, count: total + 1)
        counts[0] = 1
        var reach = 0
        for r in doubled {
            for s in stride(from: reach, through: 0, by: -1) where counts[s] > 0 { counts[s + r] += counts[s] }
            reach += r
        }
        let patterns = pow(2.0, Double(ranks.count))
        let w = Int((wPlus * 2).rounded())
        let lower = counts[0...w].reduce(0, +) / patterns
        let upper = counts[w...].reduce(0, +) / patterns
        return min(1, 2 * min(lower, upper))
    }

    /// Normal approximation: mean n(n+1)/4, variance n(n+1)(2n+1)/24 less the ties' sum
    /// of (t^3 - t)/48, and half a unit of continuity correction toward the mean.
    static func normalP(ranks: [Double], wPlus: Double, values: [Double]) -> Double {
        let n = Double(ranks.count)
        let mean = n * (n + 1) / 4
        var ties = 0.0
        for count in Dictionary(grouping: values, by: { $0 }).values.map({ Double($0.count) }) where count > 1 {
            ties += count * count * count - count
        }
        let variance = n * (n + 1) * (2 * n + 1) / 24 - ties / 48
        guard variance > 0 else { return 1 }
        var d = wPlus - mean
        d -= d > 0 ? 0.5 : (d < 0 ? -0.5 : 0)
        let z = d / variance.squareRoot()
        return min(1, erfc(abs(z) / 2.0.squareRoot()))
    }
}
