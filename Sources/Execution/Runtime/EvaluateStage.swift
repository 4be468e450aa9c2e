import Foundation
import Medical
import NN
import Plan
import StageConfig
import Storage
import Tensor

/// The `evaluate` stage: the selected checkpoint on the test cases, measured on each
/// case's own voxel grid (Evaluation); metrics.json and per_case.csv, and each case's
/// predicted label map in its label file's geometry and header.
enum EvaluateStage {
    static func run(_ stage: PlanStage, _ c: EvaluateConfiguration, _ ctx: StageContext) throws {
        let data = try PreparedData.open(try ctx.input("data").hash, ctx)
        let trained = try ctx.input("model")
        let model = try ModelInput.build(try trained.producedModel(), for: data, classes: data.classes, seed: 0)
        try Checkpoint.loadModel(model, from: ctx.store.file(trained.hash, "best.safetensors"))
        let dataset = try data.dataset(ctx)
        let names = data.split.parts["test"]?.patients ?? []
        let patients = names.compactMap { data.inventory.patients.firstIndex(of: $0) }
        let (result, predictions): (JSON, [Evaluation.CasePrediction])
        switch data.samples {
        case .slices(let set):
            (result, predictions) = try Evaluation.compute(model, set: set, patients: patients, dataset: dataset, classes: data.classes, axis: data.axis, settings: c)
        case .volumes(let set, let patch):
            (result, predictions) = try Evaluation.compute(model, volumes: set, patients: patients, dataset: dataset, classes: data.classes,
                                                           window: Evaluation.window(patch, mirror: c.mirror), settings: c)
        }
        let dir = ctx.directory + "/predictions"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let values = (0...data.classes.count).map { Float(data.classes.labelValue(ofClass: $0)) }
        for p in predictions {
            // Each class is written as its first label value, so predictions read like the source labels.
            var volume = p.label
            volume.data = p.classes.map { values[Int($0)] }
            try NIfTI.writeLabels(volume, like: p.labelFile, to: "\(dir)/\(p.id).nii.gz")
        }
        try AtomicFile.write(Data(result.pretty.utf8), to: ctx.directory + "/metrics.json")
        try AtomicFile.write(Data(perCaseCSV(result, classes: data.classes).utf8), to: ctx.directory + "/per_case.csv")
        let pooled = result["pooled"] ?? .null
        func f(_ v: JSON?) -> String { v?.number.map { String(format: "%.4f", $0) } ?? "n/a" }
        if data.classes.count > 1 {
            ctx.log("test Dice by class: " + data.classes.classes.map { "\($0.name) \(f(pooled["classes"]?[$0.name]?["dice"]))" }.joined(separator: ", "))
        }
        ctx.log("test Dice \(f(pooled["dice"])), IoU \(f(pooled["iou"])), precision \(f(pooled["precision"])), recall \(f(pooled["recall"])) "
                + "over \(predictions.count) cases (\(result["voxels"]?.int ?? 0) voxels on their own grids); HD95 \(f(result["per_case"]?["hd95"]?["mean"])) mm, "
                + "NSD \(f(result["per_case"]?["nsd"]?["mean"])) (means over cases)")
        if result["predicted_nothing"] == .bool(true) { ctx.warn("the model predicts no foreground voxel in any test case") }
        if let empty = Evaluation.emptyLabelWarning(result) { ctx.warn(empty) }
    }

    /// One row per test case: the class means, then each class's Dice, HD95 and NSD (empty where undefined).
    static func perCaseCSV(_ result: JSON, classes: LabelClasses) -> String {
        let names = classes.count > 1 ? classes.classes.map(\.name) : []
        let keys = Evaluation.caseMetrics
        var csv = (["case"] + keys + names.flatMap { n in ["dice", "hd95", "nsd"].map { "\($0).\(n)" } }).joined(separator: ",") + "\n"
        func format(_ v: JSON?) -> String { v?.number.map { String(format: "%.4f", $0) } ?? "" }
        for r in result["cases"]?.array ?? [] {
            let perClass = names.flatMap { n in ["dice", "hd95", "nsd"].map { format(r["classes"]?[n]?[$0]) } }
            csv += ([r["case"]?.string ?? ""] + keys.map { format(r[$0]) } + perClass).joined(separator: ",") + "\n"
        }
        return csv
    }
}
