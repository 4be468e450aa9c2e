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
    static let evaluatedHead = "segmentation"

    /// Forward passes over slices, in batches, eval mode, with the segmentation head's logits.
    static func predict(_ model: SegmentationModel, _ set: SliceSet, _ slices: [Int], batch: Int = 16,
                        _ body: (_ indices: [Int], _ logits: Tensor, _ labels: Tensor, _ output: ModelOutput, _ images: Variable) throws -> Void) throws {
        for b in stride(from: 0, to: slices.count, by: batch) {
            let idx = Array(slices[b..<min(slices.count, b + batch)])
            let (images, labels) = set.batch(idx)
            let x = Variable(images)
            let out = Tape.noGrad { model.forward(x, training: false) }
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

    static func counts(_ logits: Tensor, _ labels: Tensor, from: Int, count: Int, threshold: Float, onLogit: Bool) -> Counts {
        var c = Counts()
        let channels = logits.shape[1], plane = labels.count / max(1, labels.shape[0])
        let b = from / plane
        for i in from..<(from + count) {
            let v = logits.pointer[(b * channels) * plane + (i - b * plane)]
            let positive = isPositive(v, threshold: threshold, onLogit: onLogit)
            let truth = labels.pointer[i] > 0.5
            if positive && truth { c.tp += 1 } else if positive { c.fp += 1 } else if truth { c.fn += 1 }
        }
        return c
    }

    /// Validation during training: pooled Dice and IoU, and the stage's supervised loss (mean over batches).
    static func evaluate(_ model: SegmentationModel, _ set: SliceSet, _ slices: [Int], threshold: Float, onLogit: Bool,
                         objective: DistillationObjective) throws -> Summary {
        var total = Counts(), loss = 0.0, batches = 0
        try predict(model, set, slices) { _, logits, labels, out, images in
            let plane = labels.count / max(1, labels.shape[0])
            for b in 0..<labels.shape[0] { total.add(counts(logits, labels, from: b * plane, count: plane, threshold: threshold, onLogit: onLogit)) }
            let terms = try Tape.noGrad { try objective.supervisedTerms(student: out, images: images, labels: labels) }
            loss += Double(DistillationObjective.total(terms).value.item)
            batches += 1
        }
        return Summary(dice: total.dice, iou: total.iou, loss: batches > 0 ? loss / Double(batches) : 0)
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
