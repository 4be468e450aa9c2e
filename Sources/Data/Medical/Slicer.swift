import Foundation
import StageConfig
import enum Tensor.Seeds

/// Cuts one case (its modalities and its label) into 2D slices as the settings say:
/// slice axis, normalisation per modality, resize (bilinear for images, nearest for
/// labels) and classes. Every slice is kept: thinning empty slices is a matter of
/// the training part alone (SplitManifest), never of the test set.
public enum Slicer {
    /// Slices of one case: records, images as `planes` float planes per slice, labels as class indices.
    static func slices(_ images: [Volume], _ label: Volume, _ s: Preprocessing, classes: LabelClasses,
                       statistics: [IntensityStatistics?], patient: Int) -> (records: [SliceRecord], images: [Float], labels: [UInt8]) {
        let (rowAxis, colAxis, sliceAxis) = axes(s.sliceAxis)
        let d = label.dims
        let rows = d[rowAxis], cols = d[colAxis], count = d[sliceAxis]
        let strides = [1, d[0], d[0] * d[1]]
        var classOf = [Float: Float]()
        for (value, k) in classes.indexOfValue { classOf[Float(value)] = Float(k) }
        // Each modality's mapping from raw values to inputs, fixed per volume (z-score) or per dataset (percentile).
        let maps = images.indices.map { c in IntensityMap(s.normalize[c], window: s.window, volume: images[c], statistics: c < statistics.count ? statistics[c] : nil) }
        var records: [SliceRecord] = [], out: [Float] = [], labels: [UInt8] = []
        var planeImages = [[Float]](repeating: [Float](repeating: 0, count: rows * cols), count: images.count)
        var planeLabel = [Float](repeating: 0, count: rows * cols)
        for k in 0..<count {
            // Rows run from anterior/superior at the top, as radiologists display them.
            for r in 0..<rows {
                for c in 0..<cols {
                    var idx = [0, 0, 0]
                    idx[rowAxis] = rows - 1 - r
                    idx[colAxis] = c
                    idx[sliceAxis] = k
                    let i = idx[0] * strides[0] + idx[1] * strides[1] + idx[2] * strides[2]
                    for m in images.indices { planeImages[m][r * cols + c] = images[m].data[i] }
                    planeLabel[r * cols + c] = classOf[label.data[i]] ?? 0
                }
            }
            let hasForeground = planeLabel.contains { $0 > 0 }
            for m in images.indices {
                // Normalising after the resize keeps the window's clip exact at the new resolution.
                for v in resizeBilinear(planeImages[m], rows, cols, s.height, s.width) { out.append(maps[m].apply(v)) }
            }
            for v in resizeNearest(planeLabel, rows, cols, s.height, s.width) { labels.append(UInt8(v)) }
            records.append(SliceRecord(patient: patient, slice: k, hasForeground: hasForeground))
        }
        return (records, out, labels)
    }

    /// Plane axes (rows, columns) and the slicing axis, in canonical RAS order.
    public static func axes(_ axis: SliceAxis) -> (row: Int, column: Int, slice: Int) {
        switch axis {
        case .coronal: return (2, 0, 1)
        case .sagittal: return (2, 1, 0)
        case .axial: return (1, 0, 2)
        }
    }

    /// The inverse of slicing for a network's output: the logits of slice k (`channels`
    /// planes of height x width) resized bilinearly back to the volume's plane, each pixel
    /// decided (`decide` takes the pixel's per-channel logits), and written into the class
    /// map `classes` of the volume whose canonical dimensions are `dims`.
    public static func placeClasses(logits: UnsafePointer<Float>, channels: Int, height: Int, width: Int, slice k: Int, axis: SliceAxis,
                                    dims: [Int], into classes: inout [UInt8], decide: ([Float]) -> UInt8) {
        let (rowAxis, colAxis, sliceAxis) = axes(axis)
        let rows = dims[rowAxis], cols = dims[colAxis]
        guard k >= 0, k < dims[sliceAxis] else { return }
        let plane = height * width
        let resized = (0..<channels).map { c in resizeBilinear(Array(UnsafeBufferPointer(start: logits + c * plane, count: plane)), height, width, rows, cols) }
        let strides = [1, dims[0], dims[0] * dims[1]]
        var pixel = [Float](repeating: 0, count: channels)
        for r in 0..<rows {
            for c in 0..<cols {
                for ch in 0..<channels { pixel[ch] = resized[ch][r * cols + c] }
                var idx = [0, 0, 0]
                idx[rowAxis] = rows - 1 - r
                idx[colAxis] = c
                idx[sliceAxis] = k
                classes[idx[0] * strides[0] + idx[1] * strides[1] + idx[2] * strides[2]] = decide(pixel)
            }
        }
    }

    /// A value in [0, 1) fixed by (patient, slice): an empty training slice is kept when it
    /// is below `keep_empty`, so the same settings keep the same slices.
    static func keep(patient: Int, slice: Int) -> Double {
        var z = UInt64(patient) &* Seeds.golden &+ UInt64(slice) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
        return Double(z >> 11) / Double(1 << 53)
    }

    /// Bilinear, align_corners false (the runtime's and PyTorch's convention).
    public static func resizeBilinear(_ x: [Float], _ h: Int, _ w: Int, _ p: Int, _ q: Int) -> [Float] {
        if h == p, w == q { return x }
        func taps(_ input: Int, _ output: Int) -> [(Int, Int, Float)] {
            (0..<output).map { o in
                let src = max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0)
                let i0 = min(Int(src), input - 1)
                return (i0, min(i0 + 1, input - 1), Float(src - Double(i0)))
            }
        }
        let rt = taps(h, p), ct = taps(w, q)
        var y = [Float](repeating: 0, count: p * q)
        for i in 0..<p {
            let (r0, r1, a) = rt[i]
            for j in 0..<q {
                let (c0, c1, b) = ct[j]
                let top = x[r0 * w + c0] + b * (x[r0 * w + c1] - x[r0 * w + c0])
                let bottom = x[r1 * w + c0] + b * (x[r1 * w + c1] - x[r1 * w + c0])
                y[i * q + j] = top + a * (bottom - top)
            }
        }
        return y
    }

    static func resizeNearest(_ x: [Float], _ h: Int, _ w: Int, _ p: Int, _ q: Int) -> [Float] {
        if h == p, w == q { return x }
        var y = [Float](repeating: 0, count: p * q)
        for i in 0..<p { for j in 0..<q { y[i * q + j] = x[min(i * h / p, h - 1) * w + min(j * w / q, w - 1)] } }
        return y
    }
}

/// Dataset-level intensity statistics of one modality: percentiles, mean and sd of the
/// foreground voxels of the training cases (what `percentile` normalisation uses).
public struct IntensityStatistics: Hashable, Sendable {
    public var low: Double, high: Double, mean: Double, sd: Double

    public init(low: Double, high: Double, mean: Double, sd: Double) { (self.low, self.high, self.mean, self.sd) = (low, high, mean, sd) }

    /// From sampled voxel values: the percentiles (linear interpolation, numpy's default) and the moments.
    public init?(samples: [Float], low: Double, high: Double) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        func percentile(_ q: Double) -> Double {
            let pos = q / 100 * Double(sorted.count - 1)
            let i = Int(pos.rounded(.down)), j = min(i + 1, sorted.count - 1)
            return Double(sorted[i]) + (pos - Double(i)) * Double(sorted[j] - sorted[i])
        }
        let mean = sorted.reduce(0.0) { $0 + Double($1) } / Double(sorted.count)
        let variance = sorted.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(sorted.count)
        self.init(low: percentile(low), high: percentile(high), mean: mean, sd: variance.squareRoot())
    }

    var array: [Double] { [low, high, mean, sd] }
}

/// A raw value to a network input for one volume of one modality.
struct IntensityMap {
    enum Kind { case window(IntensityWindow), affine(scale: Float, shift: Float, zeroStaysZero: Bool), clipAffine(lo: Float, hi: Float, scale: Float, shift: Float) }
    let kind: Kind

    init(_ n: Normalization, window: IntensityWindow, volume: Volume, statistics: IntensityStatistics?) {
        switch n {
        case .window:
            kind = .window(window)
        case .zscore(let mask):
            var sum = 0.0, squares = 0.0, count = 0
            for v in volume.data where mask == .all || v != 0 { sum += Double(v); squares += Double(v) * Double(v); count += 1 }
            let mean = count > 0 ? sum / Double(count) : 0
            let sd = count > 0 ? max(0, squares / Double(count) - mean * mean).squareRoot() : 1
            let scale = Float(1 / max(sd, 1e-8))
            kind = .affine(scale: scale, shift: Float(-mean) * scale, zeroStaysZero: mask == .nonzero)
        case .percentile:
            // Prepare computes the statistics before slicing and prediction reads them from it; both
            // refuse to go on without them, so this default is never used.
            let st = statistics ?? IntensityStatistics(low: -.infinity, high: .infinity, mean: 0, sd: 1)
            let scale = Float(1 / max(st.sd, 1e-8))
            kind = .clipAffine(lo: Float(st.low), hi: Float(st.high), scale: scale, shift: Float(-st.mean) * scale)
        }
    }

    func apply(_ v: Float) -> Float {
        switch kind {
        case .window(.hounsfield(let lo, let hi)): return min(1, max(0, (v - Float(lo)) / Float(max(1e-6, hi - lo))))
        case .window(.clip255): return min(255, max(0, v)) / 255
        case .affine(let scale, let shift, let zero): return zero && v == 0 ? 0 : v * scale + shift
        case .clipAffine(let lo, let hi, let scale, let shift): return min(hi, max(lo, v)) * scale + shift
        }
    }
}
