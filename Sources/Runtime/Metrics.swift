import Architecture
import Foundation
import Medical
import NN
import StageConfig
import Tensor

/// Segmentation metrics: pooled over all slices as the study did (TP, FP, FN summed,
/// then Dice = 2TP/(2TP+FP+FN), IoU = TP/(TP+FP+FN)), and per case.
struct Counts {
    var tp = 0.0, fp = 0.0, fn = 0.0
    var dice: Double { 2 * tp + fp + fn == 0 ? 1 : 2 * tp / (2 * tp + fp + fn) }
    var iou: Double { tp + fp + fn == 0 ? 1 : tp / (tp + fp + fn) }
    var precision: Double { tp + fp == 0 ? 1 : tp / (tp + fp) }
    var recall: Double { tp + fn == 0 ? 1 : tp / (tp + fn) }
    mutating func add(_ o: Counts) { tp += o.tp; fp += o.fp; fn += o.fn }
}

enum Metrics {
    struct Summary { var dice: Double; var iou: Double; var loss: Double }

    /// The head every evaluation reads.
    static let evaluatedHead = Head.segmentation

    /// Forward passes over slices, in batches, eval mode, with the segmentation head's logits.
    static func predict(_ model: SegmentationModel, _ set: SliceSet, _ slices: [Int], batch: Int = 16,
                        _ body: (_ indices: [Int], _ logits: Tensor, _ labels: Tensor, _ output: ModelOutput, _ images: Variable) throws -> Void) throws {
        for b in stride(from: 0, to: slices.count, by: batch) {
            let idx = Array(slices[b..<min(slices.count, b + batch)])
            let (images, labels) = set.batch(idx)
            let x = Variable(images)
            // Evaluation reads the logits alone: no tap is kept, so each map is freed once used.
            let out = Tape.noGrad { model.forward(x, training: false, taps: []) }
            guard let logits = out.logits[evaluatedHead] else {
                throw RuntimeError.stage("the model has no '\(evaluatedHead)' head to evaluate; heads: \(out.logits.keys.sorted().joined(separator: ", "))")
            }
            try body(idx, logits.value, labels, out, x)
        }
    }

    /// Whether a logit is foreground: the logit itself, or its sigmoid, above the threshold.
    static func isPositive(_ logit: Float, threshold: Float, onLogit: Bool) -> Bool {
        onLogit ? logit > threshold : Activation.sigmoid(logit) > threshold
    }

    /// The predicted class of every pixel of image `b`: a 1-channel head's logit against the
    /// threshold (class 1 or background), a wider head's arg-max over its channels.
    static func classMap(_ logits: Tensor, image b: Int, threshold: Float, onLogit: Bool) -> [UInt8] {
        let channels = logits.shape[1], plane = logits.count / max(1, logits.shape[0] * channels)
        let base = logits.pointer + b * channels * plane
        if channels == 1 {
            return (0..<plane).map { isPositive(base[$0], threshold: threshold, onLogit: onLogit) ? 1 : 0 }
        }
        var out = [UInt8](repeating: 0, count: plane)
        var best = [Float](unsafeUninitializedCapacity: plane) { buffer, count in
            for i in 0..<plane { buffer[i] = base[i] }
            count = plane
        }
        for k in 1..<channels {
            let row = base + k * plane
            for i in 0..<plane where row[i] > best[i] { best[i] = row[i]; out[i] = UInt8(k) }
        }
        return out
    }

    /// The true classes of image `b` of a label batch.
    static func truthMap(_ labels: Tensor, image b: Int) -> [UInt8] {
        let plane = labels.count / max(1, labels.shape[0])
        return (0..<plane).map { UInt8(labels.pointer[b * plane + $0]) }
    }

    /// TP, FP and FN of each foreground class 1...classes between two class maps.
    static func counts(_ pred: [UInt8], _ truth: [UInt8], classes: Int) -> [Counts] {
        var c = [Counts](repeating: Counts(), count: classes + 1)
        for i in 0..<pred.count {
            let (p, t) = (Int(pred[i]), Int(truth[i]))
            if p == t { c[p].tp += 1 } else { c[p].fp += 1; c[t].fn += 1 }
        }
        return Array(c.dropFirst())
    }

    /// Validation during training: pooled Dice (mean over classes) and IoU, and the stage's supervised loss (mean over batches).
    static func evaluate(_ model: SegmentationModel, _ set: SliceSet, _ slices: [Int], classes: Int, threshold: Float, onLogit: Bool,
                         objective: DistillationObjective) throws -> Summary {
        var total = [Counts](repeating: Counts(), count: classes), loss = 0.0, batches = 0
        try predict(model, set, slices) { _, logits, labels, out, images in
            for b in 0..<labels.shape[0] {
                let c = counts(classMap(logits, image: b, threshold: threshold, onLogit: onLogit), truthMap(labels, image: b), classes: classes)
                for k in 0..<classes { total[k].add(c[k]) }
            }
            let terms = try Tape.noGrad { try objective.supervisedTerms(student: out, images: images, labels: labels) }
            loss += Double(DistillationObjective.total(terms).value.item)
            batches += 1
        }
        let n = Double(max(1, classes))
        return Summary(dice: total.map(\.dice).reduce(0, +) / n, iou: total.map(\.iou).reduce(0, +) / n,
                       loss: batches > 0 ? loss / Double(batches) : 0)
    }

    /// The 95th percentile of symmetric surface distances between two masks (voxel units); nil if either is empty.
    static func hd95(_ a: [Bool], _ b: [Bool], dims: [Int]) -> Double? {
        func surface(_ m: [Bool]) -> [(Int, Int, Int)] {
            var s: [(Int, Int, Int)] = []
            let (w, h, d) = (dims[0], dims[1], dims[2])
            for z in 0..<d { for y in 0..<h { for x in 0..<w where m[(z * h + y) * w + x] {
                let edge = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)].contains { dx, dy, dz in
                    let (xx, yy, zz) = (x + dx, y + dy, z + dz)
                    return xx < 0 || yy < 0 || zz < 0 || xx >= w || yy >= h || zz >= d || !m[(zz * h + yy) * w + xx]
                }
                if edge { s.append((x, y, z)) }
            } } }
            return s
        }
        let sa = surface(a), sb = surface(b)
        guard !sa.isEmpty, !sb.isEmpty else { return nil }
        func distances(_ from: [(Int, Int, Int)], _ to: [(Int, Int, Int)]) -> [Double] {
            // Subsample large surfaces: hd95 is a percentile, robust to a uniform thinning.
            let stepFrom = max(1, from.count / 2000), stepTo = max(1, to.count / 4000)
            return stride(from: 0, to: from.count, by: stepFrom).map { i in
                let p = from[i]
                var best = Int.max
                for j in stride(from: 0, to: to.count, by: stepTo) {
                    let q = to[j]
                    let d = (p.0 - q.0) * (p.0 - q.0) + (p.1 - q.1) * (p.1 - q.1) + (p.2 - q.2) * (p.2 - q.2)
                    if d < best { best = d }
                }
                return Double(best).squareRoot()
            }
        }
        let all = (distances(sa, sb) + distances(sb, sa)).sorted()
        return all[min(all.count - 1, Int(0.95 * Double(all.count - 1)))]
    }
}
