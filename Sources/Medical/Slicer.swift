import Foundation
import StageConfig

/// Cuts one image/label pair into 2D slices as the settings say: slice axis,
/// intensity window, resize (bilinear for images, nearest for labels),
/// foreground selection and dropping of empty slices.
public enum Slicer {
    static func slices(_ image: Volume, _ label: Volume, _ s: Preprocessing, classes: LabelClasses, patient: Int)
        -> (records: [SliceRecord], images: [UInt16], labels: [UInt8]) {
        let (rowAxis, colAxis, sliceAxis) = axes(s.sliceAxis)
        let d = image.dims
        let rows = d[rowAxis], cols = d[colAxis], count = d[sliceAxis]
        let strides = [1, d[0], d[0] * d[1]]
        var classOf = [Float: Float]()
        for (value, k) in classes.indexOfValue { classOf[Float(value)] = Float(k) }
        var records: [SliceRecord] = [], images: [UInt16] = [], labels: [UInt8] = []
        var planeImage = [Float](repeating: 0, count: rows * cols), planeLabel = [Float](repeating: 0, count: rows * cols)
        for k in 0..<count {
            // Rows run from anterior/superior at the top, as radiologists display them.
            for r in 0..<rows {
                for c in 0..<cols {
                    var idx = [0, 0, 0]
                    idx[rowAxis] = rows - 1 - r
                    idx[colAxis] = c
                    idx[sliceAxis] = k
                    let i = idx[0] * strides[0] + idx[1] * strides[1] + idx[2] * strides[2]
                    planeImage[r * cols + c] = image.data[i]
                    planeLabel[r * cols + c] = classOf[label.data[i]] ?? 0
                }
            }
            let hasForeground = planeLabel.contains { $0 > 0 }
            // Empty slices are kept by a deterministic draw, so the same settings keep the same slices.
            if !hasForeground, s.keepEmpty < 1, keep(patient: patient, slice: k) >= s.keepEmpty { continue }
            let resizedImage = resizeBilinear(planeImage, rows, cols, s.height, s.width)
            let resizedLabel = resizeNearest(planeLabel, rows, cols, s.height, s.width)
            for v in resizedImage { images.append(UInt16((window(v, s.window) * 65535).rounded())) }
            for v in resizedLabel { labels.append(UInt8(v)) }
            records.append(SliceRecord(patient: patient, slice: k, hasForeground: hasForeground))
        }
        return (records, images, labels)
    }

    /// Plane axes (rows, columns) and the slicing axis, in canonical RAS order.
    static func axes(_ axis: SliceAxis) -> (row: Int, column: Int, slice: Int) {
        switch axis {
        case .coronal: return (2, 0, 1)
        case .sagittal: return (2, 1, 0)
        case .axial: return (1, 0, 2)
        }
    }

    /// The inverse of slicing for a predicted label plane: an H x W plane of slice k along
    /// `axis`, resized (nearest) back to the volume's plane and written into `volume`.
    public static func place(_ plane: [Float], height: Int, width: Int, slice k: Int, axis: SliceAxis, into volume: inout Volume) {
        let (rowAxis, colAxis, sliceAxis) = axes(axis)
        let rows = volume.dims[rowAxis], cols = volume.dims[colAxis]
        guard k >= 0, k < volume.dims[sliceAxis] else { return }
        for r in 0..<rows {
            let sr = min(r * height / rows, height - 1)
            for c in 0..<cols {
                let sc = min(c * width / cols, width - 1)
                var idx = [0, 0, 0]
                idx[rowAxis] = rows - 1 - r
                idx[colAxis] = c
                idx[sliceAxis] = k
                volume[idx[0], idx[1], idx[2]] = plane[sr * width + sc]
            }
        }
    }

    /// A value in [0, 1) fixed by (patient, slice).
    static func keep(patient: Int, slice: Int) -> Double {
        var z = UInt64(patient) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(slice) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
        return Double(z >> 11) / Double(1 << 53)
    }

    static func window(_ v: Float, _ w: IntensityWindow) -> Float {
        switch w {
        case .hounsfield(let lo, let hi): return min(1, max(0, (v - Float(lo)) / Float(max(1e-6, hi - lo))))
        case .clip255: return min(255, max(0, v)) / 255
        }
    }

    /// Bilinear, align_corners false (the runtime's and PyTorch's convention).
    static func resizeBilinear(_ x: [Float], _ h: Int, _ w: Int, _ p: Int, _ q: Int) -> [Float] {
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
