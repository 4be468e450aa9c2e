import Architecture
import Foundation
import Medical
import NN
import Plan

/// `distill evaluate`: a checkpoint from outside a plan, on a dataset, with the
/// spec's preprocessing, split and evaluation settings.
public enum CheckpointEvaluation {
    public struct Settings {
        public var architecture: ModelArchitecture
        public var preprocess: PreprocessSettings
        public var split: SplitSettings
        public var threshold: Float
        public var onLogit: Bool
        public init(architecture: ModelArchitecture, preprocess: PreprocessSettings, split: SplitSettings, threshold: Float, onLogit: Bool) {
            (self.architecture, self.preprocess, self.split, self.threshold, self.onLogit) = (architecture, preprocess, split, threshold, onLogit)
        }
    }

    /// Evaluates `checkpoint` on the test part of `dataset` (or every slice with `all`).
    public static func run(checkpoint: String, dataset root: String, settings s: Settings, all: Bool, cache: String) throws -> JSON {
        let dataset = try MSDDataset.load(root)
        let set = try SliceSet.prepare(dataset, s.preprocess, cache: cache)
        let model = ModelBuilder.build(s.architecture, inputSize: s.preprocess.height, seed: 0)
        try Checkpoint.loadModel(model, from: checkpoint)
        let slices = all ? Array(0..<set.count) : SplitManifest.make(set, s.split).slices("test")
        return Evaluation.compute(model, set: set, slices: slices, threshold: s.threshold, onLogit: s.onLogit).result
    }
}
