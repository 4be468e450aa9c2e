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
        public var analyzeOrientation: AxisOrientation?
        /// The prepare stage: its slice cache holds the training data's modality names and statistics.
        public var prepare: String
    }

    /// What a new volume is read against: the training data's declared modalities and its
    /// intensity statistics (read from the prepared data when it is in the store).
    public struct TrainingData {
        public var declaredModalities: [String]
        public var statistics: [IntensityStatistics?]
    }

    /// The training data's modalities and statistics, from the prepare stage's slice cache.
    public static func trainingData(_ setting: Setting, store: RunStore) throws -> TrainingData {
        let needsData = setting.preprocess.modalities != nil || setting.preprocess.normalize.contains(where: \.usesDatasetStatistics)
        guard let set = try? SliceSet(path: store.file(setting.prepare, "slices.bin")) else {
            if needsData { throw Problem.notPrepared(setting.stage, hash: setting.prepare, store: store.root) }
            return TrainingData(declaredModalities: [], statistics: [nil])
        }
        for (m, n) in setting.preprocess.normalize.enumerated() where n.usesDatasetStatistics && (m >= set.statistics.count || set.statistics[m] == nil) {
            throw Problem.notPrepared(setting.stage, hash: setting.prepare, store: store.root)
        }
        return TrainingData(declaredModalities: set.declaredModalities, statistics: set.statistics)
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
                return "stage '\(s)' reads its modalities and intensity statistics from its prepared data (\(hash.prefix(12))), which is not in \(store): run `distill run` first"
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
                       onLogit: e.thresholdOn == .logit, analyzeOrientation: orientation, prepare: prepareHash)
    }

    /// The model of `setting` with the weights of `checkpoint` (the stage's best one when nil).
    public static func model(_ setting: Setting, store: RunStore, checkpoint: String?) throws -> SegmentationModel {
        let path: String
        if let checkpoint {
            path = checkpoint
        } else {
            guard store.isDone(setting.train.hash) else { throw Problem.notTrained(setting.stage, hash: setting.train.hash, store: store.root) }
            path = store.file(setting.train.hash, "best.safetensors")
        }
        let model = ModelBuilder.build(setting.model, height: setting.preprocess.height, width: setting.preprocess.width, seed: 0)
        try Checkpoint.loadModel(model, from: path)
        return model
    }

    /// A label map of `image` in its geometry: each pixel the label value of its predicted class (0 for background).
    public static func segment(_ file: String, id: String, model: SegmentationModel, setting: Setting, training: TrainingData) throws -> Volume {
        let all = try NIfTI.readChannels(file, analyzeOrientation: setting.analyzeOrientation)
        let modalities = try MSDDataset.select(all, names: setting.preprocess.modalities, declared: training.declaredModalities, file: file)
        let image = modalities[0]
        let set = try SliceSet.unlabelled(modalities, id: id, settings: setting.preprocess, statistics: training.statistics)
        guard set.channels == setting.model.inChannels else {
            throw RuntimeError.stage("the model takes \(setting.model.inChannels) input channels but the preprocessing gives \(set.channels)")
        }
        var labels = Volume(dims: image.dims, spacing: image.spacing, data: [Float](repeating: 0, count: image.count),
                            datatype: "UINT8", orientation: image.orientation)
        let values = (0...setting.classes.count).map { Float(setting.classes.labelValue(ofClass: $0)) }
        try Metrics.predict(model, set, Array(0..<set.count)) { indices, logits, _, _, _ in
            for (b, s) in indices.enumerated() {
                let plane = Metrics.classMap(logits, image: b, threshold: setting.threshold, onLogit: setting.onLogit).map { values[Int($0)] }
                Slicer.place(plane, height: set.height, width: set.width, slice: set.records[s].slice, axis: setting.preprocess.sliceAxis, into: &labels)
            }
        }
        return labels
    }
}
