import Figures
import Foundation
import Medical
import StageConfig
import Tensor

/// Pictures of the data as Distillery reads it: a volume's slice with its label
/// outlined, and prepared training slices beside draws of a spec's augmentation.
public enum SlicePreview {
    /// The axial slice of `label` with the most foreground voxels (0 for an empty label).
    public static func mostForeground(_ label: Volume) -> Int {
        func count(_ k: Int) -> Int {
            var n = 0
            for y in 0..<label.dims[1] { for x in 0..<label.dims[0] where label[x, y, k] > 0 { n += 1 } }
            return n
        }
        return (0..<label.dims[2]).max { count($0) < count($1) } ?? 0
    }

    /// Whether pixel (x, y) lies on the outline of its label: labelled, and beside the slice's
    /// border or a pixel of another value (around each organ and between touching ones).
    static func outlines(_ x: Int, _ y: Int, width w: Int, height h: Int, _ label: (Int, Int) -> Float) -> Bool {
        let value = label(x, y)
        return value > 0 && [(1, 0), (-1, 0), (0, 1), (0, -1)].contains { dx, dy in
            let (xx, yy) = (x + dx, y + dy)
            return xx < 0 || yy < 0 || xx >= w || yy >= h || label(xx, yy) != value
        }
    }

    /// Axial slice `k` of `image` in the intensity window `[low, high]`, its label outlined
    /// in red where the value changes (around each organ and between touching ones); RGB
    /// bytes, row 0 at the top (anterior up for a RAS volume).
    public static func axial(image: Volume, label: Volume, slice k: Int, window: (low: Double, high: Double)) -> [UInt8] {
        let (w, h) = (image.dims[0], image.dims[1])
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for r in 0..<h {
            for x in 0..<w {
                let y = h - 1 - r
                let v = (Double(image[x, y, k]) - window.low) / (window.high - window.low)
                let g = UInt8(max(0, min(255, v * 255)))
                let edge = outlines(x, y, width: w, height: h) { label[$0, $1, k] }
                let o = (r * w + x) * 3
                (rgb[o], rgb[o + 1], rgb[o + 2]) = edge ? (255, 40, 40) : (g, g, g)
            }
        }
        return rgb
    }
}

/// Prepared training slices as a stage sees them, each beside draws of the augmentation.
public enum AugmentationPreview {
    /// The slice with the most foreground of each of up to four training cases, then
    /// `draws` augmented versions of each; the label outlined by class.
    public static func canvas(_ set: SliceSet, _ config: PrepareConfiguration, _ augmentation: AugmentationSettings,
                              draws: Int, title: String, subtitle: String) throws -> (canvas: Canvas, slices: Int) {
        let train = try SplitManifest.make(set, config.split, keepEmpty: config.preprocess.keepEmpty).slices(.train)
        var best: [Int: (slice: Int, area: Int)] = [:]
        for s in train {
            let area = set.batch([s]).labels.values.filter { $0 > 0 }.count
            let p = set.records[s].patient
            if area > (best[p]?.area ?? -1) { best[p] = (s, area) }
        }
        let chosen = best.sorted { $0.key < $1.key }.prefix(4).map(\.value.slice)
        guard !chosen.isEmpty else { throw PreviewError.noTrainingSlices }
        let augmenter = Augmenter(augmentation)
        var rows: [(String, [RGBImage])] = []
        for s in chosen {
            let (images, labels) = set.batch([s])
            var panels = [panel(images, labels, set)]
            for d in 0..<draws {
                let out = augmenter.apply(images: images, labels: labels, seed: Seeds.preview(draw: d, sample: s))
                panels.append(panel(out.images, out.labels, set, range: range(images)))
            }
            rows.append(("\(set.patients[set.records[s].patient]) z\(set.records[s].slice)", panels))
        }
        let canvas = Charts.imageGrid(title: title, subtitle: subtitle,
                                      columns: ["prepared"] + (1...max(1, draws)).map { "draw \($0)" }, rows: rows,
                                      legend: config.classes.classes.enumerated().map { ($1.name, Color.segmentationClass($0 + 1)) })
        return (canvas, chosen.count)
    }

    public enum PreviewError: Error, CustomStringConvertible {
        case noTrainingSlices
        public var description: String { "the training split has no slices" }
    }

    /// The first channel's range in the unaugmented slice, so that draws show brightness changes.
    static func range(_ images: Tensor) -> (Float, Float) {
        let plane = images.shape[2] * images.shape[3]
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<plane { lo = min(lo, images.pointer[i]); hi = max(hi, images.pointer[i]) }
        return (lo, hi > lo ? hi : lo + 1)
    }

    static func panel(_ images: Tensor, _ labels: Tensor, _ set: SliceSet, range given: (Float, Float)? = nil) -> RGBImage {
        let (h, w) = (set.height, set.width)
        let (lo, hi) = given ?? range(images)
        let scale = max(1, 128 / max(h, w))
        var img = RGBImage(width: w * scale, height: h * scale)
        for y in 0..<h {
            for x in 0..<w {
                let g = UInt8(max(0, min(255, (images.pointer[y * w + x] - lo) / (hi - lo) * 255)))
                let k = Int(labels.pointer[y * w + x])
                let edge = SlicePreview.outlines(x, y, width: w, height: h) { labels.pointer[$1 * w + $0] }
                let color = edge ? Color.segmentationClass(k) : Color(g, g, g)
                for sy in 0..<scale { for sx in 0..<scale { img[x * scale + sx, y * scale + sy] = color } }
            }
        }
        return img
    }
}
