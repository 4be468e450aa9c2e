import Architecture
import Foundation
import Medical
import NN
import Plan
import StageConfig

/// `distill evaluate`: a checkpoint from outside a plan, on a dataset, with the
/// spec's preprocessing, split and evaluation settings, measured as the evaluate
/// stage measures (on each case's own grid).
public enum CheckpointEvaluation {
    public struct Settings {
        public var architecture: ModelArchitecture
        public var classes: LabelClasses
        public var background: [Int]
        public var preprocess: Preprocessing
        public var split: SplitSettings
        public var evaluate: EvaluateConfiguration
        public init(architecture: ModelArchitecture, classes: LabelClasses, background: [Int], preprocess: Preprocessing, split: SplitSettings,
                    evaluate: EvaluateConfiguration) {
            (self.architecture, self.classes, self.background, self.preprocess, self.split, self.evaluate) = (architecture, classes, background, preprocess, split, evaluate)
        }
    }

    /// Evaluates `checkpoint` on the test cases of `dataset` (or every case with `all`).
    public static func run(checkpoint: String, dataset root: String, analyzeOrientation: AxisOrientation?, settings s: Settings,
                           all: Bool, cache: String) throws -> JSON {
        let dataset = try MSDDataset.load(root, analyzeOrientation: analyzeOrientation)
        if let sampling = s.preprocess.volume {
            let set = try VolumeSet.prepare(dataset, s.preprocess, classes: s.classes, background: s.background, split: s.split, cache: cache)
            let model = try ModelInput.build(s.architecture, patch: sampling.patch, channels: set.channels, classes: s.classes, seed: 0)
            try Checkpoint.loadModel(model, from: checkpoint)
            let names = all ? set.patients : (try SplitManifest.make(set, s.split, keepEmpty: 1).parts["test"]?.patients ?? [])
            return try Evaluation.compute(model, volumes: set, patients: names.compactMap { set.patients.firstIndex(of: $0) }, dataset: dataset,
                                          classes: s.classes, window: Evaluation.window(sampling.patch, mirror: s.evaluate.mirror), settings: s.evaluate).result
        }
        let set = try SliceSet.prepare(dataset, s.preprocess, classes: s.classes, background: s.background, split: s.split, cache: cache)
        let model = try ModelInput.build(s.architecture, for: set, classes: s.classes, seed: 0)
        try Checkpoint.loadModel(model, from: checkpoint)
        let names = all ? set.patients : (try SplitManifest.make(set, s.split, keepEmpty: s.preprocess.keepEmpty).parts["test"]?.patients ?? [])
        return try Evaluation.compute(model, set: set, patients: names.compactMap { set.patients.firstIndex(of: $0) }, dataset: dataset,
                                      classes: s.classes, axis: s.preprocess.sliceAxis, settings: s.evaluate).result
    }
}
