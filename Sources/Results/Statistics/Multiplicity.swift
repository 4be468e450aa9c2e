/// Holm's correction for a family of tests.

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
