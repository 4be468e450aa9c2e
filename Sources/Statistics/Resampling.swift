/// A percentile bootstrap confidence interval of a mean, and Holm's correction.

/// SplitMix64: a small seeded generator, so that a report's intervals reproduce.
public struct SeededGenerator: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}

/// The mean of `values` with a percentile bootstrap interval: `resamples` draws of as
/// many values with replacement (seeded), the interval between the (1-level)/2 and
/// (1+level)/2 quantiles of their means.
public struct BootstrapInterval: Sendable, Equatable {
    public var mean: Double
    public var lower: Double
    public var upper: Double
    public var level: Double
    public var resamples: Int
    public var seed: UInt64

    public init?(_ values: [Double], level: Double = 0.95, resamples: Int = 10_000, seed: UInt64 = 0) {
        guard !values.isEmpty, resamples > 0, level > 0, level < 1 else { return nil }
        let n = values.count
        mean = values.reduce(0, +) / Double(n)
        var rng = SeededGenerator(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        for b in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += values[rng.below(n)] }
            means[b] = sum / Double(n)
        }
        means.sort()
        func quantile(_ q: Double) -> Double {
            // Linear interpolation between order statistics (numpy's default).
            let position = q * Double(resamples - 1)
            let i = Int(position.rounded(.down)), f = position - Double(i)
            return i + 1 < resamples ? means[i] * (1 - f) + means[i + 1] * f : means[i]
        }
        lower = quantile((1 - level) / 2)
        upper = quantile((1 + level) / 2)
        self.level = level
        self.resamples = resamples
        self.seed = seed
    }

    /// Whether the interval lies wholly above or below zero.
    public var excludesZero: Bool { lower > 0 || upper < 0 }
}

/// Holm's step-down adjustment of p-values for a family of tests (controls the
/// family-wise error rate): the i-th smallest is multiplied by (m - i + 1), kept
/// monotone, at most 1. Returned in the input order.
public func holmAdjusted(_ p: [Double]) -> [Double] {
    let m = p.count
    let order = p.indices.sorted { p[$0] < p[$1] }
    var adjusted = [Double](repeating: 1, count: m)
    var running = 0.0
    for (i, index) in order.enumerated() {
        running = max(running, min(1, Double(m - i) * p[index]))
        adjusted[index] = running
    }
    return adjusted
}
