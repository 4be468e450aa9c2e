import Architecture
import Foundation
import Medical
import NN
import Plan
import StageConfig
import Tensor

/// What training-time validation and the report's pictures need of a model's slices:
/// batched eval-mode predictions and their class maps on the slice grid. Test metrics
/// are measured on the patients' own grids (Evaluation).
enum Metrics {
    struct Summary { var dice: Double; var iou: Double; var loss: Double }

    /// The head every evaluation reads.
    static let evaluatedHead = Head.segmentation

    /// Forward passes over slices, in batches, eval mode, with the segmentation head's logits.
    static func predict(_ model: SegmentationModel, _ set: SliceSet, _ slices: [Int], batch: Int = 16,
                        _ body: (_ indices: [Int], _ logits: Tensor, _ labels: Tensor, _ output: ModelOutput, _ images: Variable) throws -> Void) throws {
        try predict(model, batches(set, slices, size: batch), body)
    }

    /// Slices in batches of `size`, each read when its turn comes.
    static func batches(_ set: SliceSet, _ slices: [Int], size: Int = WorkBatch.evaluation) -> [(indices: [Int], load: () -> (images: Tensor, labels: Tensor))] {
        stride(from: 0, to: slices.count, by: size).map { b in
            let idx = Array(slices[b..<min(slices.count, b + size)])
            return (indices: idx, load: { set.batch(idx) })
        }
    }

    /// Forward passes over batches that `load` reads, eval mode, with the segmentation head's logits.
    static func predict(_ model: SegmentationModel, _ batches: [(indices: [Int], load: () -> (images: Tensor, labels: Tensor))],
                        _ body: (_ indices: [Int], _ logits: Tensor, _ labels: Tensor, _ output: ModelOutput, _ images: Variable) throws -> Void) throws {
        for (idx, load) in batches {
            let (images, labels) = load()
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
    static func counts(_ pred: [UInt8], _ truth: [UInt8], classes: Int) -> [ClassComparison] {
        var c = [ClassComparison](repeating: ClassComparison(), count: classes + 1)
        for i in 0..<pred.count {
            let (p, t) = (Int(pred[i]), Int(truth[i]))
            if p == t { c[p].tp += 1 } else { c[p].fp += 1; c[t].fn += 1 }
        }
        return Array(c.dropFirst())
    }

    /// Validation during training, on the slice grid (or on patches of the validation volumes): pooled Dice and IoU (means over the classes
    /// that define them; 0 when none does), and the stage's supervised loss (mean over batches).
    static func evaluate(_ model: SegmentationModel, _ data: PreparedData, _ slices: [Int], classes: Int, threshold: Float, onLogit: Bool,
                         objective: DistillationObjective) throws -> Summary {
        var total = [ClassComparison](repeating: ClassComparison(), count: classes), loss = 0.0, batches = 0
        try predict(model, data.validationBatches(slices)) { _, logits, labels, out, images in
            for b in 0..<labels.shape[0] {
                let c = counts(classMap(logits, image: b, threshold: threshold, onLogit: onLogit), truthMap(labels, image: b), classes: classes)
                for k in 0..<classes { total[k].add(c[k]) }
            }
            let terms = try Tape.noGrad { try objective.supervisedTerms(student: out, images: images, labels: labels) }
            loss += Double(DistillationObjective.total(terms).value.item)
            batches += 1
        }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        return Summary(dice: mean(total.compactMap(\.dice)), iou: mean(total.compactMap(\.iou)), loss: batches > 0 ? loss / Double(batches) : 0)
    }
}
