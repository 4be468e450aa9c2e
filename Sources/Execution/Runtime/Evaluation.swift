import Architecture
import Foundation
import Medical
import NN
import StageConfig
import Tensor

/// Metrics of a model on test cases, measured where a clinician would: on each
/// case's own voxel grid. Every slice of the case is predicted, its logits resized
/// back to the volume's plane (bilinear, the inverse of the slicing) and decided
/// there, and the class map compared with the case's label file voxel for voxel:
/// Dice, IoU, precision and recall from TP, FP and FN voxels, HD95 in mm from the
/// voxel spacing, and the normalised surface distance (NSD) at each class's
/// tolerance (SegmentationMetrics, for the conventions). Per case, pooled (TP, FP
/// and FN summed over the cases, as the study pooled its slices), and as means over
/// the cases that define them, with how many do not.
public enum Evaluation {
    /// One test case's prediction: its id, its label file and its class map (canonical order).
    public struct CasePrediction {
        public var id: String
        public var labelFile: String
        public var label: Volume
        public var classes: [UInt8]
    }

    /// The class map of one volume on its own grid (`dims`, canonical), from the slices
    /// `slices` of `set` (one per position along `axis`).
    static func classMap(_ model: SegmentationModel, set: SliceSet, slices: [Int], dims: [Int], axis: SliceAxis, threshold: Float, onLogit: Bool) throws -> [UInt8] {
        var classes = [UInt8](repeating: 0, count: dims.reduce(1, *))
        try Metrics.predict(model, set, slices) { indices, logits, _, _, _ in
            let channels = logits.shape[1], plane = set.height * set.width
            for (b, s) in indices.enumerated() {
                Slicer.placeClasses(logits: logits.pointer + b * channels * plane, channels: channels, height: set.height, width: set.width,
                                    slice: set.records[s].slice, axis: axis, dims: dims, into: &classes) { pixel in
                    if channels == 1 { return Metrics.isPositive(pixel[0], threshold: threshold, onLogit: onLogit) ? 1 : 0 }
                    var best = 0
                    for k in 1..<channels where pixel[k] > pixel[best] { best = k }
                    return UInt8(best)
                }
            }
        }
        return classes
    }

    /// Evaluates the test `patients` of `set` against their label files in `dataset`.
    public static func compute(_ model: SegmentationModel, set: SliceSet, patients: [Int], dataset: MSDDataset, classes: LabelClasses,
                               axis: SliceAxis, settings e: EvaluateConfiguration) throws -> (result: JSON, predictions: [CasePrediction]) {
        var slicesOf: [Int: [Int]] = [:]
        for (i, r) in set.records.enumerated() { slicesOf[r.patient, default: []].append(i) }
        return try compute(model, patients: patients, ids: set.patients, dataset: dataset, classes: classes, settings: e) { p, label in
            let mine = (slicesOf[p] ?? []).sorted { set.records[$0].slice < set.records[$1].slice }
            let predicted = try classMap(model, set: set, slices: mine, dims: label.dims, axis: axis, threshold: Float(e.threshold), onLogit: e.thresholdOn == .logit)
            return (predicted, mine.count)
        }
    }

    /// Evaluates the test `patients` of `set` (volumes for a 3D network) against their label
    /// files: each volume predicted whole by `window` at the prepared spacing, its logits
    /// resampled (linearly) back to the case's own grid and decided there.
    public static func compute(_ model: SegmentationModel, volumes set: VolumeSet, patients: [Int], dataset: MSDDataset, classes: LabelClasses,
                               window: SlidingWindow, settings e: EvaluateConfiguration) throws -> (result: JSON, predictions: [CasePrediction]) {
        var evaluated = try compute(model, patients: patients, ids: set.patients, dataset: dataset, classes: classes, settings: e) { p, label in
            guard label.dims == set.cases[p].native else {
                throw RuntimeError.stage("test case '\(set.patients[p])' is \(label.dims) voxels now but was \(set.cases[p].native) when prepared: the dataset changed")
            }
            let logits = try volumeLogits(model, set.volume(p).image, window: window)
            let predicted = classMap(logits, size: set.cases[p].dims, native: label.dims, axis: set.axis, threshold: Float(e.threshold), onLogit: e.thresholdOn == .logit)
            return (predicted, 0)
        }
        if case .object(var o) = evaluated.result {
            o["prediction"] = .string(slidingWindow)
            o["window"] = .object(["patch": .array(window.patch.map(JSON.int)), "step": .number(window.step), "spacing_mm": .array(set.spacing.map(JSON.number)),
                                   "mirror": .array(window.mirrorAxes.map { .string(EvaluateConfiguration.mirrorAxes[$0]) })])
            evaluated.result = .object(o)
        }
        return evaluated
    }

    /// How whole volumes are predicted: windows of the training patch, overlapping by half (nnU-Net's step 0.5).
    public static func window(_ patch: [Int], mirror: [Int] = []) -> SlidingWindow { SlidingWindow(patch: patch, step: WindowPlacement.step, mirrorAxes: mirror) }

    /// metrics.json's `prediction` for volumes predicted by sliding windows (slices write none).
    public static let slidingWindow = "sliding_window"

    /// The segmentation head's logits [K, D, H, W] over a whole volume [C, D, H, W], window by window.
    static func volumeLogits(_ model: SegmentationModel, _ image: Tensor, window: SlidingWindow) throws -> Tensor {
        var failure: Error?
        let channels = model.architecture.heads.first { $0.name == Metrics.evaluatedHead }?.channels ?? 0
        guard channels > 0 else { throw RuntimeError.stage("the model has no '\(Metrics.evaluatedHead)' head to evaluate") }
        let logits = window.predict(image, classes: channels) { batch in
            let out = Tape.noGrad { model.forward(Variable(batch), training: false, taps: []) }
            guard let l = out.logits[Metrics.evaluatedHead]?.value else {
                failure = RuntimeError.stage("the model has no '\(Metrics.evaluatedHead)' head to evaluate")
                return Tensor(zeros: [batch.shape[0], channels] + Array(batch.shape[2...]))
            }
            return l
        }
        if let failure { throw failure }
        return logits
    }

    /// Logits [K, D, H, W] at the prepared spacing to the class map of the case's own canonical
    /// grid `native`: each channel resampled linearly to the source's network-order size, the
    /// voxel decided there (threshold for one channel, arg-max for several), then put back
    /// in canonical order.
    static func classMap(_ logits: Tensor, size: [Int], native: [Int], axis: SliceAxis, threshold: Float, onLogit: Bool) -> [UInt8] {
        let target = VolumeSet.networkAxes(axis).map { native[$0] }
        let channels = logits.shape[0], voxels = size.reduce(1, *), count = target.reduce(1, *)
        let resampled = (0..<channels).map { k in
            VolumeResampling.resample(Array(UnsafeBufferPointer(start: logits.pointer + k * voxels, count: voxels)), size: size, to: target, order: .linear)
        }
        var decided = [Float](repeating: 0, count: count)
        for i in 0..<count {
            if channels == 1 {
                decided[i] = Metrics.isPositive(resampled[0][i], threshold: threshold, onLogit: onLogit) ? 1 : 0
            } else {
                var best = 0
                for k in 1..<channels where resampled[k][i] > resampled[best][i] { best = k }
                decided[i] = Float(best)
            }
        }
        return VolumeSet.canonicalOrder(decided, dims: native, axis: axis).map { UInt8($0) }
    }

    /// The evaluation of test cases whose class maps `predict` makes (with the slices it read).
    static func compute(_ model: SegmentationModel, patients: [Int], ids: [String], dataset: MSDDataset, classes: LabelClasses, settings e: EvaluateConfiguration,
                        predict: (_ patient: Int, _ label: Volume) throws -> (classes: [UInt8], slices: Int)) throws -> (result: JSON, predictions: [CasePrediction]) {
        let names = classes.classes.map(\.name)
        let tolerance = try names.map { n -> Double in
            guard let t = e.nsdTolerance.millimetres(n) else { throw RuntimeError.badPlan("evaluate.nsd_tolerance names no tolerance for class '\(n)'") }
            return t
        }
        let indexOf = classes.indexOfValue
        var rows: [(id: String, perClass: [ClassComparison])] = []
        var predictions: [CasePrediction] = []
        var voxels = 0, slices = 0
        for p in patients.sorted() {
            let id = ids[p]
            guard let c = dataset.cases.first(where: { $0.id == id }) else {
                throw RuntimeError.stage("test case '\(id)' of the prepared data is not in \(dataset.root) any more: the dataset changed after it was prepared")
            }
            let label = try dataset.read(c.label)
            let truth = label.data.map { indexOf[Int($0)] ?? 0 }
            let (predicted, read) = try predict(p, label)
            rows.append((id, SegmentationMetrics.compare(prediction: predicted, truth: truth, dims: label.dims, spacing: label.spacing,
                                                         classes: classes.count, tolerance: tolerance, hd95: e.hd95)))
            predictions.append(CasePrediction(id: id, labelFile: c.label, label: label, classes: predicted))
            voxels += label.count
            slices += read
        }
        return (report(rows, names: names, tolerance: tolerance, voxels: voxels, slices: slices, parameters: model.store.parameterCount, settings: e), predictions)
    }

    /// A metric's value as JSON: a number, or null when it is undefined.
    static func value(_ v: Double?) -> JSON { v.map(JSON.number) ?? .null }

    /// The metrics of one class as JSON.
    static func json(_ c: ClassComparison) -> [String: JSON] {
        var out: [String: JSON] = ["tp": .int(c.tp), "fp": .int(c.fp), "fn": .int(c.fn)]
        for m in EvaluationMetric.allCases { out[m.rawValue] = value(c.value(m)) }
        return out
    }

    /// Every metric, in the order of metrics.json's summaries and per-case CSV columns.
    static let caseMetrics = EvaluationMetric.allCases.map(\.rawValue)

    /// The metrics that pool over cases (voxel counts add up; surface distances do not).
    static let pooledMetrics: [EvaluationMetric] = [.dice, .iou, .precision, .recall]

    /// What metrics.json's `empty_labels` means for its scores, naming the cases (nil when there are none).
    static func emptyLabelWarning(_ metrics: JSON) -> String? {
        let ids = (metrics["empty_labels"]?.array ?? []).compactMap(\.string)
        guard !ids.isEmpty else { return nil }
        let shown = ids.prefix(5).joined(separator: ", ") + (ids.count > 5 ? " and \(ids.count - 5) more" : "")
        return "test case\(ids.count == 1 ? "" : "s") \(shown) \(ids.count == 1 ? "has" : "have") no foreground in \(ids.count == 1 ? "its" : "their") label: "
            + "\(ids.count == 1 ? "its" : "their") Dice is 0 or undefined whatever the model predicts, and the pooled Dice counts only \(ids.count == 1 ? "its" : "their") false positives"
    }

    /// metrics.json: per case (each class, and their mean over the classes that define it),
    /// pooled over the cases, and summarised over cases (mean and sd of the defined values,
    /// with the count of undefined ones).
    static func report(_ rows: [(id: String, perClass: [ClassComparison])], names: [String], tolerance: [Double], voxels: Int, slices: Int,
                       parameters: Int, settings e: EvaluateConfiguration) -> JSON {
        func classMean(_ perClass: [[String: JSON]], _ key: String) -> (JSON, Int) {
            let v = perClass.compactMap { $0[key]?.number }
            return (v.isEmpty ? .null : .number(v.reduce(0, +) / Double(v.count)), v.count)
        }
        var cases: [JSON] = []
        for r in rows {
            let perClass = r.perClass.map(json)
            var row: [String: JSON] = ["case": .string(r.id)]
            for key in caseMetrics { row[key] = classMean(perClass, key).0 }
            row["classes_in_dice"] = .int(classMean(perClass, "dice").1)
            row["classes"] = .object(Dictionary(uniqueKeysWithValues: zip(names, perClass.map(JSON.object))))
            cases.append(.object(row))
        }
        func summary(_ values: [Double?]) -> JSON {
            let v = values.compactMap { $0 }
            guard !v.isEmpty else { return .object(["mean": .null, "sd": .null, "n": .int(0), "undefined": .int(values.count)]) }
            let mean = v.reduce(0, +) / Double(v.count)
            let sd = v.count > 1 ? (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
            return .object(["mean": .number(mean), "sd": .number(sd), "n": .int(v.count), "undefined": .int(values.count - v.count)])
        }
        var perCase: [String: JSON] = [:]
        for key in caseMetrics { perCase[key] = summary(cases.map { $0[key]?.number }) }
        var perCaseClasses: [String: JSON] = [:], pooledClasses: [String: JSON] = [:]
        var pooled = [ClassComparison](repeating: ClassComparison(), count: names.count)
        for (k, name) in names.enumerated() {
            var s: [String: JSON] = [:]
            for key in caseMetrics { s[key] = summary(cases.map { $0["classes"]?[name]?[key]?.number }) }
            perCaseClasses[name] = .object(s)
            for r in rows { pooled[k].add(r.perClass[k]) }
            var p = json(pooled[k])
            p["hd95"] = nil
            p["nsd"] = nil
            pooledClasses[name] = .object(p)
        }
        perCase["classes"] = .object(perCaseClasses)
        var pooledSummary: [String: JSON] = [:]
        for metric in pooledMetrics {
            let v = pooled.compactMap { $0.value(metric) }
            pooledSummary[metric.rawValue] = v.isEmpty ? .null : .number(v.reduce(0, +) / Double(v.count))
        }
        for (key, path) in [("tp", \ClassComparison.tp), ("fp", \ClassComparison.fp), ("fn", \ClassComparison.fn)] {
            pooledSummary[key] = .int(pooled.map { $0[keyPath: path] }.reduce(0, +))
        }
        pooledSummary["classes"] = .object(pooledClasses)
        let predictedNothing = pooled.allSatisfy { $0.tp + $0.fp == 0 }
        // Test cases whose label holds no foreground of any class: their Dice is 0 or undefined
        // whatever the model does, and the pooled Dice counts only their false positives.
        let emptyLabels = rows.filter { $0.perClass.allSatisfy { $0.tp + $0.fn == 0 } }.map(\.id)
        return .object([
            "grid": .string("patient"),
            "pooled": .object(pooledSummary),
            "per_case": .object(perCase),
            "classes": .array(names.map(JSON.string)),
            "nsd_tolerance_mm": .object(Dictionary(uniqueKeysWithValues: zip(names, tolerance.map(JSON.number)))),
            "hd95_convention": .string(e.hd95.rawValue), "hd95_definition": .string(e.hd95.definition),
            "cases": .array(cases),
            "voxels": .int(voxels),
            "slices": .int(slices),
            "predicted_nothing": .bool(predictedNothing),
            "empty_labels": .array(emptyLabels.map(JSON.string)),
            "parameters": .int(parameters),
            "threshold": .object(["value": .number(e.threshold), "on": .string(e.thresholdOn == .logit ? "logit" : "probability")]),
        ])
    }
}

extension ClassComparison {
    /// The value of `metric` for this class (nil where it is undefined).
    func value(_ metric: EvaluationMetric) -> Double? {
        switch metric {
        case .dice: dice
        case .iou: iou
        case .precision: precision
        case .recall: recall
        case .hd95: hd95
        case .nsd: nsd
        }
    }
}
