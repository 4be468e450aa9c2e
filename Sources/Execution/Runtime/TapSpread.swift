import Foundation
import StageConfig
import Tensor

/// Whether a teacher tap says anything about its image. A teacher can learn to
/// route everything around a map (a TransUNet's bottleneck once its skips carry
/// the segmentation): the map is then the same for every image, a contrastive
/// term on it sits at ln(batch) with no gradient, and a regression term teaches
/// the student a constant. Training would run and report numbers all the same.
public enum TapSpread {
    /// Below this spread across images (relative to the map's RMS) a tap is constant.
    public static let threshold = 1e-3

    /// The spread of `maps` ([N, ...]) across its N images: the mean over positions
    /// of the standard deviation across images, over the RMS of all values
    /// (0 when every image gives the same map, or the map is all zero).
    public static func relative(_ maps: Tensor) -> Double {
        guard maps.shape.count > 1, maps.shape[0] > 1 else { return .infinity }
        let n = maps.shape[0], row = maps.count / n
        guard row > 0 else { return .infinity }
        var spread = 0.0, squares = 0.0
        for j in 0..<row {
            var sum = 0.0, sumSquares = 0.0
            for i in 0..<n {
                let v = Double(maps.pointer[i * row + j])
                sum += v
                sumSquares += v * v
            }
            let mean = sum / Double(n)
            spread += max(0, sumSquares / Double(n) - mean * mean).squareRoot()
            squares += sumSquares
        }
        let rms = (squares / Double(maps.count)).squareRoot()
        return rms > 0 ? spread / Double(row) / rms : 0
    }

    /// A sentence for every tap in `maps` that the distillation terms read and that
    /// does not change with the image; empty when every tap does.
    public static func constantTaps(_ maps: [String: Tensor], terms: DistillationTerms, teacher: String) -> [String] {
        var readers: [String: [String]] = [:]
        for p in terms.pairs { readers[p.teacherTap, default: []].append(p.name) }
        if let l = terms.logits { readers["logits.\(l.head)", default: []].append("logits") }
        return readers.keys.sorted().compactMap { tap in
            guard let m = maps[tap] else { return nil }
            let r = relative(m)
            guard r < threshold else { return nil }
            let names = readers[tap, default: []].joined(separator: ", ")
            return "tap \(tap) of the teacher \(teacher) is the same for every image (spread \(String(format: "%.1e", r)) of its RMS over \(m.shape[0]) images): "
                + "the distillation terms on it (\(names)) compare the student with a constant and teach nothing"
        }
    }
}
