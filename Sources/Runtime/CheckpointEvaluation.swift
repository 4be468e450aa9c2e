import Architecture
import Foundation
import Medical
import NN
import Plan
import StageConfig

/// `distill evaluate`: a checkpoint from outside a plan, on a dataset, with the
/// spec's preprocessing, split and evaluation settings.
public enum CheckpointEvaluation {
    public struct Settings {
        public var architecture: ModelArchitecture
        public var classes: LabelClasses
        public var preprocess: Preprocessing
        public var split: SplitSettings
        public var evaluate: EvaluateConfiguration
        public init(architecture: ModelArchitecture, classes: LabelClasses, preprocess: Preprocessing, split: SplitSettings, evaluate: EvaluateConfiguration) {
            (self.architecture, self.classes, self.preprocess, self.split, self.evaluate) = (architecture, classes, preprocess, split, evaluate)
        }
    }

    /// Evaluates `checkpoint` on the test part of `dataset` (or every slice with `all`).
    public static func run(checkpoint: String, dataset root: String, analyzeOrientation: AxisOrientation?, settings s: Settings,
                           all: Bool, cache: String) throws -> JSON {
        let dataset = try MSDDataset.load(root, analyzeOrientation: analyzeOrientation)
        let set = try SliceSet.prepare(dataset, s.preprocess, classes: s.classes, split: s.split, cache: cache)
        let model = try ModelInput.build(s.architecture, for: set, classes: s.classes, seed: 0)
        try Checkpoint.loadModel(model, from: checkpoint)
        let slices = all ? Array(0..<set.count) : SplitManifest.make(set, s.split).slices(.test)
        return try Evaluation.compute(model, set: set, slices: slices, classes: s.classes, threshold: Float(s.evaluate.threshold),
                                      onLogit: s.evaluate.thresholdOn == .logit).result
    }
}
