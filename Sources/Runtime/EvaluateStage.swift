import Foundation
import Medical
import NN
import Plan
import StageConfig
import Tensor

/// The `evaluate` stage: the selected checkpoint on the test split; metrics pooled
/// over every test slice (the study's way) and per case (mean and sd over
/// patients, with hd95); written as JSON and CSV.
enum EvaluateStage {
    static func run(_ stage: PlanStage, _ c: EvaluateConfiguration, _ ctx: StageContext) throws {
        let data = try PreparedData.open(try ctx.input("data").hash, ctx)
        let trained = try ctx.input("model")
        let model = try ModelInput.build(try trained.trainingConfiguration().model, for: data.set, seed: 0)
        try Checkpoint.loadModel(model, from: ctx.store.file(trained.hash, "best.safetensors"))
        let (result, rows, masks) = try Evaluation.compute(model, set: data.set, slices: data.split.slices(.test), threshold: Float(c.threshold),
                                                           onLogit: c.thresholdOn == .logit)
        let pooled = result["pooled"] ?? .null
        try writePredictions(masks, data: data, ctx: ctx)
        try RunStore.writeAtomically(Data(result.pretty.utf8), to: ctx.directory + "/metrics.json")
        var csv = "case,dice,iou,precision,recall,hd95\n"
        for r in rows {
            let values = ["dice", "iou", "precision", "recall", "hd95"].map { r[$0]?.number.map { String(format: "%.4f", $0) } ?? "" }
            csv += ([r["case"]?.string ?? ""] + values).joined(separator: ",") + "\n"
        }
        try RunStore.writeAtomically(Data(csv.utf8), to: ctx.directory + "/per_case.csv")
        ctx.log(String(format: "test Dice %.4f, IoU %.4f, precision %.4f, recall %.4f over %d slices", pooled["dice"]?.number ?? 0, pooled["iou"]?.number ?? 0,
                       pooled["precision"]?.number ?? 0, pooled["recall"]?.number ?? 0, result["slices"]?.int ?? 0))
    }

    /// Each test case's predicted slices as a NIfTI label volume in the source file's
    /// geometry (axis order, qform, sform), so that it overlays the original image.
    static func writePredictions(_ masks: [Int: (pred: [Int: [Bool]], truth: [Int: [Bool]])], data: PreparedData, ctx: StageContext) throws {
        let prepare = try ctx.input("data")
        let rootFile = ctx.store.file(prepare.hash, "dataset-root.txt")
        guard let root = try? String(contentsOfFile: rootFile, encoding: .utf8) else {
            throw RuntimeError.stage("\(rootFile) is missing: the prepare stage \(prepare.shortHash) is incomplete; delete its folder and rerun")
        }
        var orientation: AxisOrientation?
        if case .prepare(let c) = prepare.config, case .msd(_, let o) = c.source { orientation = o }
        let dataset: MSDDataset
        do {
            dataset = try MSDDataset.load(root, analyzeOrientation: orientation)
        } catch {
            // The slices were cut from this folder; without it there is no geometry to write predictions in.
            ctx.log("predictions not written: the source dataset is no longer readable (\(error)); metrics are unaffected")
            return
        }
        let dir = ctx.directory + "/predictions"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (patient, m) in masks {
            let id = data.set.patients[patient]
            guard let c = dataset.cases.first(where: { $0.id == id }) else {
                throw RuntimeError.stage("case '\(id)' of the prepared slices is not in \(root) any more: the dataset changed after it was prepared")
            }
            let source = try dataset.read(c.image)
            var volume = Volume(dims: source.dims, spacing: source.spacing, data: [Float](repeating: 0, count: source.count),
                                datatype: "UINT8", orientation: source.orientation)
            for (k, mask) in m.pred {
                Slicer.place(mask, height: data.set.height, width: data.set.width, slice: k, axis: data.axis, into: &volume)
            }
            try NIfTI.write(volume, to: "\(dir)/\(c.id).nii.gz", datatype: 2)
        }
        ctx.log("wrote \(masks.count) predicted label volumes to predictions/")
    }
}

/// Metrics of a model on slices: pooled (the study's way) and per case with hd95.
public enum Evaluation {
    public typealias Masks = [Int: (pred: [Int: [Bool]], truth: [Int: [Bool]])]

    public static func compute(_ model: SegmentationModel, set: SliceSet, slices: [Int], threshold: Float, onLogit: Bool) throws
        -> (result: JSON, rows: [[String: JSON]], masks: Masks) {
        var pooled = Counts()
        var perCase: [Int: Counts] = [:]
        var masks: [Int: (pred: [Int: [Bool]], truth: [Int: [Bool]])] = [:]
        let plane = set.height * set.width
        try Metrics.predict(model, set, slices) { idx, logits, labels, _, _ in
            for (b, s) in idx.enumerated() {
                let c = Metrics.counts(logits, labels, from: b * plane, count: plane, threshold: threshold, onLogit: onLogit)
                pooled.add(c)
                let patient = set.records[s].patient
                perCase[patient, default: Counts()].add(c)
                var pred = [Bool](repeating: false, count: plane), truth = [Bool](repeating: false, count: plane)
                for i in 0..<plane {
                    let v = logits.pointer[b * logits.shape[1] * plane + i]
                    pred[i] = Metrics.isPositive(v, threshold: threshold, onLogit: onLogit)
                    truth[i] = labels.pointer[b * plane + i] > 0.5
                }
                masks[patient, default: ([:], [:])].pred[set.records[s].slice] = pred
                masks[patient, default: ([:], [:])].truth[set.records[s].slice] = truth
            }
        }
        var rows: [[String: JSON]] = []
        for (patient, c) in perCase.sorted(by: { $0.key < $1.key }) {
            var row: [String: JSON] = ["case": .string(set.patients[patient]), "dice": .number(c.dice), "iou": .number(c.iou),
                                       "precision": .number(c.precision), "recall": .number(c.recall)]
            if let m = masks[patient] {
                let slices = m.pred.keys.sorted()
                let dims = [set.width, set.height, slices.count]
                let hd = Metrics.hd95(slices.flatMap { m.pred[$0] ?? [] }, slices.flatMap { m.truth[$0] ?? [] }, dims: dims)
                row["hd95"] = hd.map(JSON.number) ?? .null
            }
            rows.append(row)
        }
        func meanSD(_ key: String) -> JSON {
            let v = rows.compactMap { $0[key]?.number }
            guard !v.isEmpty else { return .null }
            let mean = v.reduce(0, +) / Double(v.count)
            let sd = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, v.count - 1))).squareRoot()
            return .object(["mean": .number(mean), "sd": .number(sd)])
        }
        let result: JSON = .object([
            "pooled": .object(["dice": .number(pooled.dice), "iou": .number(pooled.iou), "precision": .number(pooled.precision),
                               "recall": .number(pooled.recall), "tp": .number(pooled.tp), "fp": .number(pooled.fp), "fn": .number(pooled.fn)]),
            "per_case": .object(["dice": meanSD("dice"), "iou": meanSD("iou"), "precision": meanSD("precision"), "recall": meanSD("recall"), "hd95": meanSD("hd95")]),
            "cases": .array(rows.map(JSON.object)),
            "slices": .int(slices.count),
            "parameters": .int(model.store.parameterCount),
            "threshold": .object(["value": .number(Double(threshold)), "on": .string(onLogit ? "logit" : "probability")]),
        ])
        return (result, rows, masks)
    }
}
