import Foundation
import Storage
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
        let model = try ModelInput.build(try trained.producedModel(), for: data.set, classes: data.classes, seed: 0)
        try Checkpoint.loadModel(model, from: ctx.store.file(trained.hash, "best.safetensors"))
        let (result, rows, masks) = try Evaluation.compute(model, set: data.set, slices: data.split.slices(.test), classes: data.classes,
                                                           threshold: Float(c.threshold),
                                                           onLogit: c.thresholdOn == .logit)
        let pooled = result["pooled"] ?? .null
        try writePredictions(masks, data: data, ctx: ctx)
        try AtomicFile.write(Data(result.pretty.utf8), to: ctx.directory + "/metrics.json")
        // Per-class columns (`dice.liver`) follow the class means when there is more than one class.
        let names = data.classes.count > 1 ? data.classes.classes.map(\.name) : []
        let keys = ["dice", "iou", "precision", "recall", "hd95"]
        var csv = (["case"] + keys + names.flatMap { n in ["dice", "hd95"].map { "\($0).\(n)" } }).joined(separator: ",") + "\n"
        func format(_ v: JSON?) -> String { v?.number.map { String(format: "%.4f", $0) } ?? "" }
        for r in rows {
            let perClass = names.flatMap { n in ["dice", "hd95"].map { format(r["classes"]?[n]?[$0]) } }
            csv += ([r["case"]?.string ?? ""] + keys.map { format(r[$0]) } + perClass).joined(separator: ",") + "\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: ctx.directory + "/per_case.csv")
        if data.classes.count > 1 {
            ctx.log("test Dice by class: " + data.classes.classes.map { c in
                String(format: "%@ %.4f", c.name, pooled["classes"]?[c.name]?["dice"]?.number ?? .nan) }.joined(separator: ", "))
        }
        ctx.log(String(format: "test Dice %.4f, IoU %.4f, precision %.4f, recall %.4f over %d slices", pooled["dice"]?.number ?? 0, pooled["iou"]?.number ?? 0,
                       pooled["precision"]?.number ?? 0, pooled["recall"]?.number ?? 0, result["slices"]?.int ?? 0))
    }

    /// Each test case's predicted slices as a NIfTI label volume in the source file's
    /// geometry (axis order, qform, sform), so that it overlays the original image.
    static func writePredictions(_ masks: Evaluation.Masks, data: PreparedData, ctx: StageContext) throws {
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
        let values = (0...data.classes.count).map { Float(data.classes.labelValue(ofClass: $0)) }
        for (patient, m) in masks {
            let id = data.set.patients[patient]
            guard let c = dataset.cases.first(where: { $0.id == id }) else {
                throw RuntimeError.stage("case '\(id)' of the prepared slices is not in \(root) any more: the dataset changed after it was prepared")
            }
            let source = try dataset.read(c.label)  // the label shares the image's grid and is 3D whatever the modalities
            var volume = Volume(dims: source.dims, spacing: source.spacing, data: [Float](repeating: 0, count: source.count),
                                datatype: "UINT8", orientation: source.orientation)
            for (k, plane) in m.pred {
                // Each class is written as its first label value, so predictions read like the source labels.
                Slicer.place(plane.map { values[Int($0)] }, height: data.set.height, width: data.set.width, slice: k, axis: data.axis, into: &volume)
            }
            try NIfTI.write(volume, to: "\(dir)/\(c.id).nii.gz", datatype: 2)
        }
        ctx.log("wrote \(masks.count) predicted label volumes to predictions/")
    }
}

/// Metrics of a model on slices: pooled (the study's way) and per case with hd95,
/// for each class and as their mean.
public enum Evaluation {
    /// Predicted and true class maps by patient, then by slice.
    public typealias Masks = [Int: (pred: [Int: [UInt8]], truth: [Int: [UInt8]])]

    static let metricNames = ["dice", "iou", "precision", "recall"]

    public static func compute(_ model: SegmentationModel, set: SliceSet, slices: [Int], classes: LabelClasses, threshold: Float, onLogit: Bool) throws
        -> (result: JSON, rows: [[String: JSON]], masks: Masks) {
        let k = classes.count, names = classes.classes.map(\.name)
        var pooled = [Counts](repeating: Counts(), count: k)
        var perCase: [Int: [Counts]] = [:]
        var masks: Masks = [:]
        try Metrics.predict(model, set, slices) { idx, logits, labels, _, _ in
            for (b, s) in idx.enumerated() {
                let pred = Metrics.classMap(logits, image: b, threshold: threshold, onLogit: onLogit), truth = Metrics.truthMap(labels, image: b)
                let c = Metrics.counts(pred, truth, classes: k)
                let patient = set.records[s].patient
                var caseCounts = perCase[patient] ?? [Counts](repeating: Counts(), count: k)
                for j in 0..<k { pooled[j].add(c[j]); caseCounts[j].add(c[j]) }
                perCase[patient] = caseCounts
                masks[patient, default: ([:], [:])].pred[set.records[s].slice] = pred
                masks[patient, default: ([:], [:])].truth[set.records[s].slice] = truth
            }
        }
        /// A class's metrics; nil where the class is neither present nor predicted (nnU-Net leaves those out of means).
        func metrics(_ c: Counts) -> [String: JSON] {
            guard c.tp + c.fp + c.fn > 0 else { return Dictionary(uniqueKeysWithValues: metricNames.map { ($0, JSON.null) }) }
            return ["dice": .number(c.dice), "iou": .number(c.iou), "precision": .number(c.precision), "recall": .number(c.recall)]
        }
        /// The mean over classes of each metric, over the classes that have it; 1 when none has (nothing to find, nothing found).
        func classMean(_ perClass: [[String: JSON]], _ keys: [String]) -> [String: JSON] {
            Dictionary(uniqueKeysWithValues: keys.map { key in
                let v = perClass.compactMap { $0[key]?.number }
                return (key, v.isEmpty ? (key == "hd95" ? JSON.null : .number(1)) : .number(v.reduce(0, +) / Double(v.count)))
            })
        }
        var rows: [[String: JSON]] = []
        for (patient, counts) in perCase.sorted(by: { $0.key < $1.key }) {
            var perClass = counts.map(metrics)
            if let m = masks[patient] {
                let slices = m.pred.keys.sorted()
                let dims = [set.width, set.height, slices.count]
                let pred = slices.flatMap { m.pred[$0] ?? [] }, truth = slices.flatMap { m.truth[$0] ?? [] }
                for j in 0..<k {
                    let cls = UInt8(j + 1)
                    perClass[j]["hd95"] = Metrics.hd95(pred.map { $0 == cls }, truth.map { $0 == cls }, dims: dims).map(JSON.number) ?? .null
                }
            }
            var row = classMean(perClass, metricNames + ["hd95"])
            row["case"] = .string(set.patients[patient])
            row["classes"] = .object(Dictionary(uniqueKeysWithValues: zip(names, perClass.map(JSON.object))))
            rows.append(row)
        }
        func meanSD(_ values: [Double]) -> JSON {
            guard !values.isEmpty else { return .null }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, values.count - 1))).squareRoot()
            return .object(["mean": .number(mean), "sd": .number(sd)])
        }
        func summary(_ value: ([String: JSON], String) -> Double?) -> [String: JSON] {
            Dictionary(uniqueKeysWithValues: (metricNames + ["hd95"]).map { key in (key, meanSD(rows.compactMap { value($0, key) })) })
        }
        var perCaseSummary = summary { row, key in row[key]?.number }
        var pooledClasses: [String: JSON] = [:]
        var perCaseClasses: [String: JSON] = [:]
        for (j, name) in names.enumerated() {
            var m = metrics(pooled[j])
            for (key, value) in [("tp", pooled[j].tp), ("fp", pooled[j].fp), ("fn", pooled[j].fn)] { m[key] = .number(value) }
            pooledClasses[name] = .object(m)
            perCaseClasses[name] = .object(summary { row, key in row["classes"]?[name]?[key]?.number })
        }
        perCaseSummary["classes"] = .object(perCaseClasses)
        var pooledSummary = classMean(pooled.map(metrics), metricNames)
        for (key, path) in [("tp", \Counts.tp), ("fp", \Counts.fp), ("fn", \Counts.fn)] { pooledSummary[key] = .number(pooled.map { $0[keyPath: path] }.reduce(0, +)) }
        pooledSummary["classes"] = .object(pooledClasses)
        let result: JSON = .object([
            "pooled": .object(pooledSummary),
            "per_case": .object(perCaseSummary),
            "classes": .array(names.map(JSON.string)),
            "cases": .array(rows.map(JSON.object)),
            "slices": .int(slices.count),
            "parameters": .int(model.store.parameterCount),
            "threshold": .object(["value": .number(Double(threshold)), "on": .string(onLogit ? "logit" : "probability")]),
        ])
        return (result, rows, masks)
    }
}
