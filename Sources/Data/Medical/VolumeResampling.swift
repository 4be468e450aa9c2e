import Foundation

/// Resampling of volumes to a new voxel grid, one axis at a time, as nnU-Net resamples
/// to its target spacing: third-order (cubic B-spline) for images, linear on each class's
/// one-hot map for labels, which then take the class of the largest value.
///
/// Voxel centres map as align_corners false does: output voxel o of m lies at input
/// coordinate (o + 0.5) n / m - 0.5 of n. The B-spline interpolates (resampling to the
/// same size returns the input), and its boundary is mirrored (f[-1] = f[1]), which
/// keeps a constant constant and a linear ramp linear up to the edges.
public enum VolumeResampling {
    public enum Order: Sendable { case linear, cubic }

    /// The voxels a volume of `size` voxels spaced `spacing` mm has at `target` spacing,
    /// per axis: round(size x spacing / target), at least 1.
    public static func size(_ size: [Int], spacing: [Double], target: [Double]) -> [Int] {
        (0..<size.count).map { max(1, Int((Double(size[$0]) * spacing[$0] / target[$0]).rounded())) }
    }

    /// `values` (`size` row-major, the last axis fastest) resampled to `newSize`.
    public static func resample(_ values: [Float], size: [Int], to newSize: [Int], order: Order) -> [Float] {
        var current = values, dims = size
        for axis in 0..<size.count where dims[axis] != newSize[axis] {
            current = resample(current, dims: dims, axis: axis, to: newSize[axis], order: order)
            dims[axis] = newSize[axis]
        }
        return current
    }

    /// A label volume of class indices 0..<classes resampled linearly class by class (one-hot),
    /// each output voxel taking the class of the largest interpolated value (the lowest on ties).
    public static func resampleLabels(_ labels: [UInt8], size: [Int], to newSize: [Int], classes: Int) -> [UInt8] {
        if size == newSize { return labels }
        let count = newSize.reduce(1, *)
        var best = [Float](repeating: -1, count: count)
        var out = [UInt8](repeating: 0, count: count)
        for k in 0..<classes {
            let oneHot = labels.map { Float($0 == UInt8(k) ? 1 : 0) }
            let r = resample(oneHot, size: size, to: newSize, order: .linear)
            for i in 0..<count where r[i] > best[i] {
                best[i] = r[i]
                out[i] = UInt8(k)
            }
        }
        return out
    }

    /// One axis resampled: every line along `axis` of a row-major volume `dims`.
    static func resample(_ x: [Float], dims: [Int], axis: Int, to m: Int, order: Order) -> [Float] {
        let n = dims[axis]
        let inner = dims[(axis + 1)...].reduce(1, *), outer = dims[..<axis].reduce(1, *)
        let taps = Self.taps(from: n, to: m, order: order)
        var y = [Float](repeating: 0, count: outer * m * inner)
        var line = [Float](repeating: 0, count: n)
        for o in 0..<outer {
            for i in 0..<inner {
                for k in 0..<n { line[k] = x[(o * n + k) * inner + i] }
                if order == .cubic { prefilter(&line) }
                for (j, tap) in taps.enumerated() {
                    var s: Float = 0
                    for (index, weight) in tap { s += weight * line[index] }
                    y[(o * m + j) * inner + i] = s
                }
            }
        }
        return y
    }

    /// For each output voxel, the input voxels and weights it reads.
    static func taps(from n: Int, to m: Int, order: Order) -> [[(Int, Float)]] {
        (0..<m).map { o in
            let src = (Double(o) + 0.5) * Double(n) / Double(m) - 0.5
            switch order {
            case .linear:
                let c = min(max(src, 0), Double(n - 1))
                let i0 = Int(c.rounded(.down)), i1 = min(i0 + 1, n - 1)
                let t = Float(c - Double(i0))
                return [(i0, 1 - t), (i1, t)]
            case .cubic:
                guard n > 1 else { return [(0, 1)] }
                let base = Int(src.rounded(.down))
                return (base - 1...base + 2).map { k in (mirror(k, n), Float(bspline3(src - Double(k)))) }
            }
        }
    }

    /// Index `k` reflected into 0..<n about the edge voxels (f[-1] = f[1], f[n] = f[n - 2]).
    static func mirror(_ k: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        var i = k % period
        if i < 0 { i += period }
        return i < n ? i : period - i
    }

    /// The cubic B-spline: 2/3 - x^2 + |x|^3 / 2 inside 1, (2 - |x|)^3 / 6 inside 2.
    static func bspline3(_ x: Double) -> Double {
        let a = abs(x)
        if a < 1 { return 2.0 / 3.0 - a * a + a * a * a / 2 }
        if a < 2 { return (2 - a) * (2 - a) * (2 - a) / 6 }
        return 0
    }

    /// Samples to cubic B-spline coefficients in place (the recursive filter with pole
    /// sqrt(3) - 2, mirror boundaries), so that the spline passes through the samples.
    static func prefilter(_ c: inout [Float]) {
        let n = c.count
        guard n > 1 else { return }
        let z = 3.0.squareRoot() - 2
        var d = c.map { Double($0) * 6 }  // the filter's gain (1 - z)(1 - 1/z)
        // The causal filter's first value, summed exactly over the mirrored line.
        var sum = d[0] + pow(z, Double(n - 1)) * d[n - 1]
        var zk = z, z2n = pow(z, Double(2 * n - 3))
        for k in 1..<(n - 1) {
            sum += (zk + z2n) * d[k]
            zk *= z
            z2n /= z
        }
        d[0] = sum / (1 - pow(z, Double(2 * n - 2)))
        for k in 1..<n { d[k] += z * d[k - 1] }
        d[n - 1] = z / (z * z - 1) * (d[n - 1] + z * d[n - 2])
        for k in stride(from: n - 2, through: 0, by: -1) { d[k] = z * (d[k + 1] - d[k]) }
        for k in 0..<n { c[k] = Float(d[k]) }
    }
}
