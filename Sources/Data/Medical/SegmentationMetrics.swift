import Foundation
import StageConfig

/// How a predicted class map compares with the truth on a case's own voxel grid:
/// overlap (Dice, IoU, precision, recall from TP, FP and FN voxels) and surface
/// distances in millimetres (HD95 and the normalised surface distance, NSD).
///
/// Conventions (nnU-Net's for overlap): a ratio whose denominator is zero is
/// undefined (nil), never 1: Dice and IoU when neither map has the class, precision
/// when nothing is predicted, recall when the truth has none. A distance needs both
/// surfaces: nil when either map lacks the class.
///
/// Surfaces are the class's voxels with a 6-neighbour outside the class (or outside
/// the volume), each voxel one surface element (as MONAI's and medpy's do). HD95 is
/// the 95th percentile (linear interpolation) of the distances from each surface voxel
/// of one map to the nearest of the other: by default the larger of the two directions'
/// percentiles (MONAI's `compute_hausdorff_distance`), or both directions pooled (MedPy's
/// `hd95`), as `HausdorffConvention` says.
/// NSD at tolerance t is the share of surface voxels of both maps within t mm of the
/// other map's surface (MONAI's `compute_surface_dice` without sub-voxels).
public struct ClassComparison: Sendable, Equatable {
    public var tp = 0, fp = 0, fn = 0
    public var hd95: Double?
    public var nsd: Double?

    public init(tp: Int = 0, fp: Int = 0, fn: Int = 0, hd95: Double? = nil, nsd: Double? = nil) {
        (self.tp, self.fp, self.fn, self.hd95, self.nsd) = (tp, fp, fn, hd95, nsd)
    }

    static func ratio(_ a: Int, _ b: Int) -> Double? { b == 0 ? nil : Double(a) / Double(b) }
    public var dice: Double? { Self.ratio(2 * tp, 2 * tp + fp + fn) }
    public var iou: Double? { Self.ratio(tp, tp + fp + fn) }
    public var precision: Double? { Self.ratio(tp, tp + fp) }
    public var recall: Double? { Self.ratio(tp, tp + fn) }

    public mutating func add(_ o: ClassComparison) { tp += o.tp; fp += o.fp; fn += o.fn }
}

public enum SegmentationMetrics {
    /// Compares class maps (0 background, 1...classes) of one volume whose canonical
    /// dimensions are `dims` and voxel sizes `spacing` (mm); `tolerance[k]` is class
    /// k+1's NSD tolerance in mm.
    public static func compare(prediction: [UInt8], truth: [UInt8], dims: [Int], spacing: [Double], classes: Int, tolerance: [Double],
                               hd95 convention: HausdorffConvention) -> [ClassComparison] {
        precondition(prediction.count == truth.count && dims.count == 3 && prediction.count == dims.reduce(1, *), "maps of one grid")
        var out = [ClassComparison](repeating: ClassComparison(), count: classes)
        for i in 0..<prediction.count {
            let (p, t) = (Int(prediction[i]), Int(truth[i]))
            if p == t { if p > 0 { out[p - 1].tp += 1 } } else {
                if p > 0 { out[p - 1].fp += 1 }
                if t > 0 { out[t - 1].fn += 1 }
            }
        }
        for k in 0..<classes where out[k].tp + out[k].fp > 0 && out[k].tp + out[k].fn > 0 {
            let label = UInt8(k + 1)
            let (hd95, nsd) = surfaceDistances(prediction.map { $0 == label }, truth.map { $0 == label }, dims: dims, spacing: spacing,
                                               tolerance: k < tolerance.count ? tolerance[k] : tolerance.last ?? 0, convention: convention)
            out[k].hd95 = hd95
            out[k].nsd = nsd
        }
        return out
    }

    /// HD95 and NSD between two non-empty masks, computed in the bounding box of both
    /// (the nearest surface voxel of either mask always lies in it).
    static func surfaceDistances(_ a: [Bool], _ b: [Bool], dims: [Int], spacing: [Double], tolerance: Double,
                                 convention: HausdorffConvention) -> (hd95: Double?, nsd: Double?) {
        var lo = dims, hi = [-1, -1, -1]
        for z in 0..<dims[2] { for y in 0..<dims[1] { for x in 0..<dims[0] {
            let i = (z * dims[1] + y) * dims[0] + x
            guard a[i] || b[i] else { continue }
            for (axis, c) in [x, y, z].enumerated() { lo[axis] = min(lo[axis], c); hi[axis] = max(hi[axis], c) }
        } } }
        guard hi[0] >= 0 else { return (nil, nil) }
        let box = (0..<3).map { hi[$0] - lo[$0] + 1 }
        func crop(_ m: [Bool]) -> [Bool] {
            var out = [Bool](repeating: false, count: box.reduce(1, *))
            for z in 0..<box[2] { for y in 0..<box[1] { for x in 0..<box[0] {
                out[(z * box[1] + y) * box[0] + x] = m[((z + lo[2]) * dims[1] + y + lo[1]) * dims[0] + x + lo[0]]
            } } }
            return out
        }
        // Beyond the box lies no voxel of either mask, so a mask voxel on the box's face is on its surface
        // whether the face is the volume's edge or not.
        let sa = surface(crop(a), dims: box), sb = surface(crop(b), dims: box)
        guard sa.contains(true), sb.contains(true) else { return (nil, nil) }
        let da = distanceTransform(sb, dims: box, spacing: spacing), db = distanceTransform(sa, dims: box, spacing: spacing)
        // Directed distances: from a's surface to b's, and from b's to a's.
        var fromA: [Double] = [], fromB: [Double] = []
        var within = 0
        for i in 0..<sa.count {
            if sa[i] { let d = da[i].squareRoot(); fromA.append(d); if d <= tolerance { within += 1 } }
            if sb[i] { let d = db[i].squareRoot(); fromB.append(d); if d <= tolerance { within += 1 } }
        }
        let hd95: Double
        switch convention {
        case .monai: hd95 = max(percentile95(fromA), percentile95(fromB))
        case .medpy: hd95 = percentile95(fromA + fromB)
        }
        return (hd95, Double(within) / Double(fromA.count + fromB.count))
    }

    /// The 95th percentile with linear interpolation between order statistics (numpy's default).
    static func percentile95(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let position = 0.95 * Double(sorted.count - 1)
        let j = Int(position.rounded(.down)), f = position - Double(j)
        return j + 1 < sorted.count ? sorted[j] * (1 - f) + sorted[j + 1] * f : sorted[j]
    }

    /// The mask's voxels with a 6-neighbour outside it (beyond the grid counts as outside).
    static func surface(_ m: [Bool], dims: [Int]) -> [Bool] {
        let (w, h, d) = (dims[0], dims[1], dims[2])
        var out = [Bool](repeating: false, count: m.count)
        for z in 0..<d { for y in 0..<h { for x in 0..<w {
            let i = (z * h + y) * w + x
            guard m[i] else { continue }
            out[i] = (x == 0 || !m[i - 1]) || (x == w - 1 || !m[i + 1])
                || (y == 0 || !m[i - w]) || (y == h - 1 || !m[i + w])
                || (z == 0 || !m[i - w * h]) || (z == d - 1 || !m[i + w * h])
        } } }
        return out
    }

    /// Squared Euclidean distance (mm^2) from every voxel to the nearest `true` voxel of
    /// `sites`, by Felzenszwalb and Huttenlocher's separable transform, one axis at a time
    /// with that axis' voxel size.
    public static func distanceTransform(_ sites: [Bool], dims: [Int], spacing: [Double]) -> [Double] {
        var f = sites.map { $0 ? 0.0 : Double.infinity }
        let strides = [1, dims[0], dims[0] * dims[1]]
        for axis in 0..<3 {
            let n = dims[axis], step = strides[axis], s2 = spacing[axis] * spacing[axis]
            var line = [Double](repeating: 0, count: n), result = [Double](repeating: 0, count: n)
            var v = [Int](repeating: 0, count: n), z = [Double](repeating: 0, count: n + 1)
            let others = (0..<3).filter { $0 != axis }
            for b in 0..<dims[others[1]] {
                for a in 0..<dims[others[0]] {
                    let start = a * strides[others[0]] + b * strides[others[1]]
                    for q in 0..<n { line[q] = f[start + q * step] }
                    lowerEnvelope(line, n: n, s2: s2, v: &v, z: &z, into: &result)
                    for q in 0..<n { f[start + q * step] = result[q] }
                }
            }
        }
        return f
    }

    /// One axis of the transform: d(p) = min over q of f(q) + s2 (p - q)^2.
    static func lowerEnvelope(_ f: [Double], n: Int, s2: Double, v: inout [Int], z: inout [Double], into d: inout [Double]) {
        var k = -1
        for q in 0..<n where f[q].isFinite {
            if k < 0 {
                k = 0
                v[0] = q
                z[0] = -.infinity
                z[1] = .infinity
                continue
            }
            // Where the parabola of q meets that of the last site kept; z[0] is -infinity, so k stays >= 0.
            func meet(_ r: Int) -> Double { ((f[q] + s2 * Double(q * q)) - (f[r] + s2 * Double(r * r))) / (2 * s2 * Double(q - r)) }
            var s = meet(v[k])
            while s <= z[k] {
                k -= 1
                s = meet(v[k])
            }
            k += 1
            v[k] = q
            z[k] = s
            z[k + 1] = .infinity
        }
        guard k >= 0 else {
            for q in 0..<n { d[q] = .infinity }
            return
        }
        var j = 0
        for q in 0..<n {
            while z[j + 1] < Double(q) { j += 1 }
            let dq = Double(q - v[j])
            d[q] = s2 * dq * dq + f[v[j]]
        }
    }
}
