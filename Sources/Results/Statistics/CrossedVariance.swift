import Foundation

/// The mean of a balanced array whose every factor is random and crossed with the
/// others (training run, test case, teacher run), with its standard error and
/// Satterthwaite's degrees of freedom.
///
/// Model: one observation per cell, y = mu + sum over non-empty factor sets G of
/// a_G(cell), each a_G independent with variance s2_G (the full set's term holds the
/// residual). For a balanced design the mean squares have
///
///     E[MS_F] = sum over G containing F of (product of n_f over f not in G) s2_G,
///
/// so each s2_G is a linear combination of mean squares (the ANOVA, or method of
/// moments, estimates: REML's when none is negative). Negative estimates are set to
/// zero. The variance of the grand mean is sum_G s2_G / (product of n_f over f in G),
/// again a linear combination sum_F c_F MS_F, whose degrees of freedom are
/// Satterthwaite's: (sum c_F MS_F)^2 / sum (c_F MS_F)^2 / df_F.
///
/// Factors with one level are left out: their variance cannot be estimated, and the
/// result is conditional on that one level (say so where it is reported).
public struct CrossedVariance: Sendable, Equatable {
    /// Levels of the factors kept (those with two or more), in the input's order.
    public var levels: [Int]
    /// Which input factors were kept.
    public var kept: [Int]
    public var mean: Double
    /// Mean squares and degrees of freedom by factor set (a bit mask over `levels`).
    public var meanSquares: [Int: Double]
    public var degrees: [Int: Double]
    /// Variance components by factor set, negative estimates set to zero.
    public var components: [Int: Double]

    /// `values` in row-major order over `levels` (the last factor fastest). nil when the
    /// count does not match or a value is not finite.
    public init?(_ values: [Double], levels allLevels: [Int]) {
        guard !allLevels.isEmpty, allLevels.allSatisfy({ $0 >= 1 }), values.count == allLevels.reduce(1, *),
              values.allSatisfy(\.isFinite) else { return nil }
        kept = allLevels.indices.filter { allLevels[$0] > 1 }
        levels = kept.map { allLevels[$0] }
        let n = values.count
        mean = values.reduce(0, +) / Double(n)
        meanSquares = [:]
        degrees = [:]
        components = [:]
        let k = levels.count
        guard k > 0 else { return }
        // The kept factors' index of every cell (a one-level factor's index is always 0).
        var strides = [Int](repeating: 1, count: allLevels.count)
        for f in stride(from: allLevels.count - 2, through: 0, by: -1) { strides[f] = strides[f + 1] * allLevels[f + 1] }
        let coordinates: [[Int]] = (0..<n).map { cell in kept.map { (cell / strides[$0]) % allLevels[$0] } }

        // Marginal means of every factor set, indexed by the set's own cells.
        var marginal: [Int: [Double]] = [0: [mean]]
        for mask in 1..<(1 << k) {
            let members = (0..<k).filter { mask & (1 << $0) != 0 }
            let cells = members.reduce(1) { $0 * levels[$1] }
            var sums = [Double](repeating: 0, count: cells)
            for (cell, coordinate) in coordinates.enumerated() { sums[Self.index(coordinate, members, levels)] += values[cell] }
            let per = Double(n / cells)
            marginal[mask] = sums.map { $0 / per }
        }
        // Effects by inclusion-exclusion over subsets, then sums of squares.
        for mask in 1..<(1 << k) {
            let members = (0..<k).filter { mask & (1 << $0) != 0 }
            let cells = members.reduce(1) { $0 * levels[$1] }
            var squares = 0.0
            for cell in 0..<cells {
                // This cell's coordinate in each member factor.
                var coordinate = [Int](repeating: 0, count: k)
                var rest = cell
                for f in members.reversed() { coordinate[f] = rest % levels[f]; rest /= levels[f] }
                var effect = 0.0
                var sub = mask
                while true {
                    let subMembers = (0..<k).filter { sub & (1 << $0) != 0 }
                    let sign = (members.count - subMembers.count) % 2 == 0 ? 1.0 : -1.0
                    effect += sign * (marginal[sub]?[Self.index(coordinate, subMembers, levels)] ?? 0)
                    if sub == 0 { break }
                    sub = (sub - 1) & mask
                }
                squares += effect * effect
            }
            let ss = squares * Double(n / cells)
            let df = members.reduce(1.0) { $0 * Double(levels[$1] - 1) }
            meanSquares[mask] = ss / df
            degrees[mask] = df
        }
        for (mask, value) in Self.solve(meanSquares: meanSquares, levels: levels) { components[mask] = max(0, value) }
    }

    /// The product of the levels of the factors inside (or outside) `mask`.
    static func levelProduct(_ levels: [Int], _ mask: Int, inside: Bool) -> Double {
        levels.indices.filter { (mask & (1 << $0) != 0) == inside }.reduce(1.0) { $0 * Double(levels[$1]) }
    }

    /// The flat index of a coordinate restricted to `members`, row-major.
    static func index(_ coordinate: [Int], _ members: [Int], _ levels: [Int]) -> Int {
        members.reduce(0) { $0 * levels[$1] + coordinate[$1] }
    }

    /// The ANOVA estimate of every component as coefficients over the mean squares,
    /// from the largest factor set down.
    static func coefficients(levels: [Int]) -> [Int: [Int: Double]] {
        let k = levels.count, full = (1 << k) - 1
        func outside(_ mask: Int) -> Double { levelProduct(levels, mask, inside: false) }
        var out: [Int: [Int: Double]] = [:]
        let masks = (1...full).sorted { $0.nonzeroBitCount > $1.nonzeroBitCount }
        for g in masks {
            var c: [Int: Double] = [g: 1]
            for h in masks where h != g && h & g == g {
                for (f, v) in out[h] ?? [:] { c[f, default: 0] -= outside(h) * v }
            }
            out[g] = c.mapValues { $0 / outside(g) }
        }
        return out
    }

    static func solve(meanSquares: [Int: Double], levels: [Int]) -> [Int: Double] {
        coefficients(levels: levels).mapValues { c in c.reduce(0) { $0 + $1.value * (meanSquares[$1.key] ?? 0) } }
    }

    /// The variance of the grand mean and its Satterthwaite degrees of freedom, from the
    /// components kept (positive) at these `levels` and mean squares.
    static func meanVariance(levels: [Int], meanSquares: [Int: Double], degrees: [Int: Double], kept: Set<Int>) -> (variance: Double, df: Double) {
        let k = levels.count
        guard k > 0 else { return (0, .infinity) }
        func inside(_ mask: Int) -> Double { levelProduct(levels, mask, inside: true) }
        var c: [Int: Double] = [:]
        for (g, coefficients) in Self.coefficients(levels: levels) where kept.contains(g) {
            for (f, v) in coefficients { c[f, default: 0] += v / inside(g) }
        }
        var variance = 0.0, denominator = 0.0
        for (f, cf) in c {
            let term = cf * (meanSquares[f] ?? 0)
            variance += term
            if let df = degrees[f], df > 0 { denominator += term * term / df }
        }
        variance = max(0, variance)
        return (variance, denominator > 0 ? variance * variance / denominator : .infinity)
    }

    /// The variance of the mean and its degrees of freedom.
    public var meanVariance: (variance: Double, df: Double) {
        Self.meanVariance(levels: levels, meanSquares: meanSquares, degrees: degrees, kept: Set(components.filter { $0.value > 0 }.keys))
    }

    /// What the variance of the mean and its degrees of freedom would be with other
    /// `levels` (same factors), were the components what they are estimated to be:
    /// the expected mean squares at those levels, fed to the same formula.
    public func projected(levels new: [Int]) -> (variance: Double, df: Double) {
        precondition(new.count == levels.count && new.allSatisfy { $0 > 1 }, "projection keeps the factors")
        return CrossedVariance(expected: components, levels: new).meanVariance
    }
}
