import Architecture
import Foundation
import Medical
import NN
import Plan
import StageConfig
import Tensor

/// Segmenting new volumes that have no label (`distill predict`): each volume is
/// sliced and preprocessed exactly as the stage's training data was (the same
/// code), the stage's model predicts every slice, and the masks go back into a
/// label map in the volume's own geometry (shape, axis order, qform and sform).
public enum Prediction {
    /// What a trained stage needs to segment a volume, all read from its plan.
    public struct Setting {
        public var stage: String
        /// The train or distill stage whose checkpoint is used (unless another file is given).
        public var train: PlanStage
        public var model: ModelArchitecture
        public var preprocess: Preprocessing
        /// What each predicted class is written as (its first label value).
        public var classes: LabelClasses
        public var threshold: Float
        public var onLogit: Bool
        /// Axes a 3D network's windows are also predicted mirrored along (the stage's `evaluate.mirror`).
        public var mirror: [Int]
        public var analyzeOrientation: AxisOrientation?
        /// The prepare stage: its slice cache holds the training data's modality names and statistics.
        public var prepare: String
    }

    /// What a new volume is read against: the training data's declared modalities and its
    /// intensity statistics (read from the prepared data when it is in the store).
    public struct TrainingData: Sendable {
        public var declaredModalities: [String]
        public var statistics: [IntensityStatistics?]
        /// For 3D networks: the spacing the training volumes were resampled to, mm [depth, height, width].
        public var spacing: [Double]?
    }

    /// The training data's modalities and statistics, from the prepare stage's cache (and for
    /// 3D networks its spacing, which is always needed: a new volume is resampled to it).
    public static func trainingData(_ setting: Setting, store: RunStore) throws -> TrainingData {
        let needsData = setting.preprocess.volume != nil || setting.preprocess.modalities != nil
            || setting.preprocess.normalize.contains(where: \.usesDatasetStatistics)
        let found: TrainingData?
        // The prepared cache is read only once its digest matches the stage's record (a damaged one is an error, not "not prepared").
        let cache = setting.preprocess.volume != nil ? PreparedData.volumeFile : PreparedData.sliceFile
        let verified = store.claimsDone(setting.prepare) ? try store.verifiedFile(setting.prepare, cache) : nil
        if setting.preprocess.volume != nil {
            found = verified.flatMap { try? VolumeSet(path: $0) }.map {
                TrainingData(declaredModalities: $0.declaredModalities, statistics: $0.statistics, spacing: $0.spacing)
            }
        } else {
            found = verified.flatMap { try? SliceSet(path: $0) }.map {
                TrainingData(declaredModalities: $0.declaredModalities, statistics: $0.statistics, spacing: nil)
            }
        }
        guard let found else {
            if needsData { throw Problem.notPrepared(setting.stage, hash: setting.prepare, store: store.root) }
            return TrainingData(declaredModalities: [], statistics: [nil], spacing: nil)
        }
        for (m, n) in setting.preprocess.normalize.enumerated() where n.usesDatasetStatistics && (m >= found.statistics.count || found.statistics[m] == nil) {
            throw Problem.notPrepared(setting.stage, hash: setting.prepare, store: store.root)
        }
        return found
    }

    public enum Problem: Error, CustomStringConvertible {
        case noStage(String, known: [String])
        case ambiguous(String, variants: [String])
        case notTrained(String, hash: String, store: String)
        case notPrepared(String, hash: String, store: String)

        public var description: String {
            switch self {
            case .noStage(let s, let known): return "no trained stage '\(s)' in the spec; stages: \(known.joined(separator: ", "))"
            case .ambiguous(let s, let variants):
                return "stage '\(s)' differs between variants; choose one with --variant (\(variants.joined(separator: ", ")))"
            case .notPrepared(let s, let hash, let store):
                return "stage '\(s)' reads its modalities, intensity statistics and (3D) spacing from its prepared data (\(hash.prefix(12))), which is not in \(store): run `distill run` first"
            case .notTrained(let s, let hash, let store):
                return "stage '\(s)' (\(hash.prefix(12))) is not trained in \(store): run `distill run` or `distill sweep` first, or give a checkpoint file"
            }
        }
    }

    /// The setting of spec stage `name` in `plan` (one variant, or the only version of the stage).
    public static func setting(_ name: String, in plan: ExecutionPlan) throws -> Setting {
        var versions: [(variant: String, train: String, evaluate: String)] = []
        for v in plan.variants {
            for s in v.stages where s.name == name && !versions.contains(where: { $0.train == s.train }) {
                versions.append((v.name, s.train, s.evaluate))
            }
        }
        guard let version = versions.first else {
            var known: [String] = []
            for v in plan.variants { for s in v.stages where !known.contains(s.name) { known.append(s.name) } }
            throw Problem.noStage(name, known: known)
        }
        guard versions.count == 1 else { throw Problem.ambiguous(name, variants: versions.map(\.variant)) }
        guard let train = plan.stage(version.train), let model = train.config.trainedModel,
              let prepareHash = train.inputs["data"], let prepare = plan.stage(prepareHash), case .prepare(let p) = prepare.config,
              let evaluate = plan.stage(version.evaluate), case .evaluate(let e) = evaluate.config else {
            throw RuntimeError.badPlan("stage '\(name)' has no trained model, prepared data and evaluation in the plan")
        }
        var orientation: AxisOrientation?
        if case .msd(_, let o) = p.source { orientation = o }
        return Setting(stage: name, train: train, model: model, preprocess: p.preprocess, classes: p.classes, threshold: Float(e.threshold),
                       onLogit: e.thresholdOn == .logit, mirror: e.mirror, analyzeOrientation: orientation, prepare: prepareHash)
    }

    /// The model of `setting` with the weights of `checkpoint` (the stage's best one when nil).
    public static func model(_ setting: Setting, store: RunStore, checkpoint: String?) throws -> SegmentationModel {
        let path: String
        if let checkpoint {
            path = checkpoint
        } else {
            guard store.claimsDone(setting.train.hash) else { throw Problem.notTrained(setting.stage, hash: setting.train.hash, store: store.root) }
            // The weights are read only once their digest matches the stage's record.
            path = try store.verifiedFile(setting.train.hash, "best.safetensors")
        }
        let plane = setting.preprocess.inputExtent.suffix(2)
        let model = ModelBuilder.build(setting.model, height: plane.first ?? 1, width: plane.last ?? 1, seed: 0)
        try Checkpoint.loadModel(model, from: path)
        return model
    }

    /// One volume to segment: one file (3D, or 4D with the modalities on the fourth axis),
    /// or nnU-Net's one file per modality (`CASE_0000.nii.gz`, `CASE_0001.nii.gz`, ...).
    public struct Input: Sendable, Equatable {
        public var id: String
        public var files: [String]
        /// The label map's file name: the input's, or `CASE.nii.gz` for nnU-Net's files.
        public var output: String
    }

    /// Groups files into volumes: `NAME_0000.ext`, `NAME_0001.ext`, ... of one folder are one
    /// volume's modalities, in that order (they must run from 0000 without a gap); any other
    /// file is a volume of its own.
    public static func inputs(_ files: [String]) throws -> [Input] {
        var order: [String] = [], groups: [String: (ending: String, channels: [Int: String])] = [:], singles: [String: Input] = [:]
        for f in files {
            let name = (f as NSString).lastPathComponent, folder = (f as NSString).deletingLastPathComponent
            let ending = name.hasSuffix(".nii.gz") ? ".nii.gz" : ".nii"
            let stem = String(name.dropLast(ending.count))
            if stem.count > 5, stem.dropLast(4).last == "_", let channel = Int(stem.suffix(4)), stem.suffix(4).allSatisfy(\.isNumber) {
                let key = (folder as NSString).appendingPathComponent(String(stem.dropLast(5)))
                if groups[key] == nil { order.append(key) }
                groups[key, default: (ending, [:])].channels[channel] = f
            } else {
                order.append(f)
                singles[f] = Input(id: stem, files: [f], output: name)
            }
        }
        return try order.map { key in
            if let single = singles[key] { return single }
            guard let group = groups[key] else { throw RuntimeError.stage("no input \(key)") }
            let channels = group.channels.keys.sorted()
            guard channels == Array(0..<channels.count) else {
                throw DatasetProblem(.modality, "\(key)_NNNN\(group.ending): nnU-Net's files of one case run from _0000 without a gap; found \(channels.map { String(format: "_%04d", $0) }.joined(separator: ", "))",
                                     files: channels.compactMap { group.channels[$0] })
            }
            let base = (key as NSString).lastPathComponent
            return Input(id: base, files: channels.compactMap { group.channels[$0] }, output: base + group.ending)
        }
    }

    /// The volume's modalities, chosen and ordered as the stage was trained.
    static func modalities(_ input: Input, setting: Setting, training: TrainingData) throws -> [Volume] {
        let all = try input.files.count > 1
            ? input.files.map { try NIfTI.read($0, analyzeOrientation: setting.analyzeOrientation) }
            : NIfTI.readChannels(input.files[0], analyzeOrientation: setting.analyzeOrientation)
        for (file, volume) in zip(input.files, all).dropFirst() {
            if let mismatch = all[0].grid.mismatch(volume.grid) {
                throw DatasetProblem(.geometry, "\(file) does not lie on the grid of \(input.files[0]): \(mismatch)", files: [file])
            }
        }
        return try MSDDataset.select(all, names: setting.preprocess.modalities, declared: training.declaredModalities, file: input.files[0],
                                     declaredBy: "the stage's training data")
    }

    /// What to do with image voxels that are NaN or infinite: refuse the volume (training
    /// refuses such data too: E0808), or set them to the volume's lowest finite value and say so.
    public enum NonFinite: Sendable { case refuse, replaceWithMinimum }

    /// Finds the NaN and infinite voxels of each modality; refuses them, or replaces them
    /// (returning what was done, for the user).
    static func guardFinite(_ volumes: inout [Volume], files: [String], _ policy: NonFinite) throws -> [String] {
        var notes: [String] = []
        for i in volumes.indices {
            let bad = volumes[i].data.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
            guard bad > 0 else { continue }
            let file = files[min(i, files.count - 1)] + (volumes.count > files.count ? " (modality \(i))" : "")
            let nan = volumes[i].data.reduce(0) { $0 + ($1.isNaN ? 1 : 0) }
            let what = "\(bad) of \(volumes[i].data.count) voxels are NaN (\(nan)) or infinite (\(bad - nan))"
            switch policy {
            case .refuse:
                throw DatasetProblem(.voxels, "\(file): \(what): a segmentation of them means nothing; fix the image, or pass --replace-non-finite "
                                     + "to set them to its lowest finite value", files: [file])
            case .replaceWithMinimum:
                let lowest = volumes[i].data.lazy.filter(\.isFinite).min() ?? 0
                volumes[i].data = volumes[i].data.map { $0.isFinite ? $0 : lowest }
                notes.append("\(file): \(what); set to \(lowest), its lowest finite value")
            }
        }
        return notes
    }

    /// A volume's label map and how its intensities compare with the training data's.
    public struct Segmentation {
        /// On the input's own grid: each voxel the label value of its predicted class (0 for background).
        public var labels: Volume
        /// One per modality the training data has statistics for.
        public var intensities: [IntensityComparison]
        /// Why some modality's intensities were not compared (nil when every one was).
        public var uncompared: String?
    }

    /// A label map of `input`, with its intensity comparison. `notes` receives what was done
    /// to the input (non-finite voxels replaced) and what the reader should know (warnings).
    public static func segment(_ input: Input, model: SegmentationModel, setting: Setting, training: TrainingData,
                               nonFinite: NonFinite = .refuse, notes: (String) -> Void = { _ in }) throws -> Segmentation {
        var modalities = try modalities(input, setting: setting, training: training)
        for note in try guardFinite(&modalities, files: input.files, nonFinite) { notes(note) }
        let labels = try labelMap(modalities, input: input, model: model, setting: setting, training: training, notes: notes)
        let names = setting.preprocess.modalities ?? (training.declaredModalities.count == 1 ? training.declaredModalities : ["image"])
        let comparison = IntensityComparison.compare(modalities, labels: labels, training: training, normalize: setting.preprocess.normalize, names: names)
        for c in comparison.compared where c.unlike {
            notes("warning[\(DataDiagnostics.intensities.code)]: \(MSDDataset.shortName(input.files[min(c.index, input.files.count - 1)])): " + c.description)
        }
        return Segmentation(labels: labels, intensities: comparison.compared, uncompared: comparison.uncompared)
    }

    static func labelMap(_ modalities: [Volume], input: Input, model: SegmentationModel, setting: Setting, training: TrainingData,
                         notes: (String) -> Void) throws -> Volume {
        // Placed by the sform where the two transforms disagree: say so, as `data inspect` does (W0811).
        for file in input.files {
            if let apart = (try? NIfTI.header(file, analyzeOrientation: setting.analyzeOrientation))?.transformsDisagree {
                notes("warning[W0811]: " + DatasetScan.disagreement(file, apart).message)
            }
        }
        let image = modalities[0]
        if let sampling = setting.preprocess.volume {
            // 3D: resampled as the training volumes were, predicted by windows, resampled back.
            guard let target = training.spacing else { throw Problem.notPrepared(setting.stage, hash: setting.prepare, store: "the store") }
            var (values, dims) = VolumeSet.image(modalities, setting.preprocess, statistics: training.statistics, target: target)
            let planes = modalities.count, voxels = dims.reduce(1, *)
            if setting.model.inChannels == 3, planes == 1 { values += values + values }
            guard values.count == setting.model.inChannels * voxels else {
                throw RuntimeError.stage("the model takes \(setting.model.inChannels) input channels but the preprocessing gives \(values.count / max(1, voxels))")
            }
            let logits = try Evaluation.volumeLogits(model, Tensor(shape: [setting.model.inChannels] + dims, values: values),
                                                     window: Evaluation.window(sampling.patch, mirror: setting.mirror))
            let classes = Evaluation.classMap(logits, size: dims, native: image.dims, axis: setting.preprocess.sliceAxis,
                                              threshold: setting.threshold, onLogit: setting.onLogit)
            return labelMap(classes, like: image, setting)
        }
        let set = try SliceSet.unlabelled(modalities, id: input.id, settings: setting.preprocess, statistics: training.statistics)
        guard set.channels == setting.model.inChannels else {
            throw RuntimeError.stage("the model takes \(setting.model.inChannels) input channels but the preprocessing gives \(set.channels)")
        }
        let classes = try Evaluation.classMap(model, set: set, slices: Array(0..<set.count), dims: image.dims, axis: setting.preprocess.sliceAxis,
                                              threshold: setting.threshold, onLogit: setting.onLogit)
        return labelMap(classes, like: image, setting)
    }

    /// Classes as label values (each class's first), on the grid of `image`.
    static func labelMap(_ classes: [UInt8], like image: Volume, _ setting: Setting) -> Volume {
        let values = (0...setting.classes.count).map { Float(setting.classes.labelValue(ofClass: $0)) }
        var labels = image
        labels.data = classes.map { values[Int($0)] }
        return labels
    }
}

/// A new volume's intensities beside the training data's, where the model found foreground:
/// the share of the voxels it labels foreground that lie outside the training foreground's
/// percentile range (by construction about 1% in training). A CT model given an MR image, an
/// image in another unit or a scanner far from the training data's labels many voxels whose
/// intensities it never saw as foreground; over `limit` of them is a warning.
public struct IntensityComparison: Sendable, Equatable {
    /// Above this share outside the range, the input is said to be unlike the training data.
    public static let limit = 0.25

    public var index: Int
    public var modality: String
    public var training: IntensityStatistics
    /// The percentiles `training.low` and `training.high` are.
    public var percentiles: [Double]
    /// Voxels labelled foreground, and the median and share outside the range of their intensities.
    public var voxels: Int
    public var median: Double?
    public var outside: Double?

    /// The share of training foreground outside the range.
    public var expectedOutside: Double { (percentiles[0] + 100 - percentiles[1]) / 100 }
    public var unlike: Bool { (outside ?? 0) > Self.limit }

    public var description: String {
        func f(_ v: Double) -> String { String(format: "%.4g", v) }
        guard let outside, let median else { return "\(modality): no voxel labelled foreground, so its intensities were not compared" }
        return "\(modality): \(Int((outside * 100).rounded()))% of the \(voxels) voxels labelled foreground lie outside the training foreground's "
            + "\(f(percentiles[0]))-\(f(percentiles[1])) percentile range [\(f(training.low)), \(f(training.high))] (\(f(expectedOutside * 100))% in training; "
            + "median \(f(median)) here, mean \(f(training.mean)) in training)"
            + (unlike ? ": the input's intensities are not the training data's (another modality, scanner or unit?), and its label map may mean nothing" : "")
    }

    public var json: JSON {
        .object(["modality": .string(modality), "foreground_voxels": .int(voxels), "median": median.map(JSON.number) ?? .null,
                 "outside_share": outside.map(JSON.number) ?? .null, "expected_outside_share": .number(expectedOutside), "unlike_training": .bool(unlike),
                 "training": .object(["low": .number(training.low), "high": .number(training.high), "mean": .number(training.mean), "sd": .number(training.sd),
                                      "percentiles": .array(percentiles.map(JSON.number))])])
    }

    /// Each modality with training statistics, and why the others were not compared.
    static func compare(_ modalities: [Volume], labels: Volume, training: Prediction.TrainingData, normalize: [StageConfig.Normalization],
                        names: [String]) -> (compared: [IntensityComparison], uncompared: String?) {
        let foreground = labels.data.indices.filter { labels.data[$0] != 0 }
        var compared: [IntensityComparison] = [], missing: [String] = []
        for (m, volume) in modalities.enumerated() {
            let name = m < names.count ? names[m] : "modality \(m)"
            guard m < training.statistics.count, let st = training.statistics[m] else { missing.append(name); continue }
            let percentiles: [Double]
            if m < normalize.count, case .percentile(let lo, let hi) = normalize[m] { percentiles = [lo, hi] } else { percentiles = [0.5, 99.5] }
            var values = foreground.map { volume.data[$0] }
            values.sort()
            let outside = values.isEmpty ? nil : Double(values.filter { Double($0) < st.low || Double($0) > st.high }.count) / Double(values.count)
            compared.append(IntensityComparison(index: m, modality: name, training: st, percentiles: percentiles, voxels: values.count,
                                                median: values.isEmpty ? nil : Double(values[values.count / 2]), outside: outside))
        }
        let uncompared = missing.isEmpty ? nil
            : "the prepared data holds no intensity statistics for \(missing.joined(separator: ", ")) (prepared before they were kept): prepare again to compare them"
        return (compared, uncompared)
    }
}
