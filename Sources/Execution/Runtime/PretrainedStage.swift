import Architecture
import Foundation
import Hashing
import Medical
import NN
import Plan
import StageConfig
import Storage
import Tensor

/// The `pretrained` stage: a network's weights read from a file trained elsewhere,
/// renamed to the reference names, checked against the weight manifest and written
/// as the stage's `best.safetensors`, which evaluation, teachers and `init` read
/// exactly as they read a trained stage's.
enum PretrainedStage {
    static func run(_ stage: PlanStage, _ c: PretrainedConfiguration, _ ctx: StageContext) throws {
        let path = FilePath.resolve(c.file, against: ctx.baseDirectory)
        guard let digest = SHA256.file(path) else { throw RuntimeError.stage("cannot read the weights '\(path)'") }
        guard digest == c.sha256 else {
            throw RuntimeError.stage("'\(path)' changed since the plan was made (SHA-256 \(digest.prefix(12)), the plan has \(c.sha256.prefix(12))): plan again to import the new weights")
        }
        let data = try PreparedData.open(try ctx.input("data").hash, ctx)
        let model = try ModelInput.build(c.model, for: data, classes: data.classes, seed: 0)
        let report = try WeightImport.load(path, rules: c.rename, into: model)
        if !report.dropped.isEmpty {
            ctx.log("not loaded: \(report.dropped.count) tensor\(report.dropped.count == 1 ? "" : "s") (\(report.dropped.prefix(4).joined(separator: ", "))\(report.dropped.count > 4 ? ", ..." : ""))")
        }
        try Checkpoint.saveModel(model, to: ctx.directory + "/best.safetensors")
        ctx.log("imported \(report.loaded) tensors (\(model.store.parameterCount) parameters) from \(path)")
    }
}

/// Loading a weight file into a built network through rename rules: the check
/// `distill check` makes (StageConfig's WeightMapping) and then the values.
public enum WeightImport {
    public struct Report {
        public var loaded: Int
        public var dropped: [String]
    }

    /// Every missing, unexpected or mis-shaped tensor is one error listing all of them.
    @discardableResult
    public static func load(_ path: String, rules: [WeightRename], into model: SegmentationModel) throws -> Report {
        let file = try SafetensorsFile(path: path)
        var manifest: [WeightEntry] = []
        for n in model.store.names { if let v = model.store.parameters[n] { manifest.append(WeightEntry(name: n, shape: v.value.shape, isBuffer: false)) } }
        for n in model.store.bufferNames { if let t = model.store.buffers[n] { manifest.append(WeightEntry(name: n, shape: t.shape, isBuffer: true)) } }
        let mapping = try WeightMapping(file: file.header, rules: rules, manifest: manifest)
        guard mapping.problems.isEmpty else { throw CheckpointError.mismatch(path, mapping.problems) }
        var tensors: [String: Tensor] = [:]
        for (target, source) in mapping.sources { tensors[target] = try file.tensor(source) }
        try model.store.load(tensors, source: path)
        return Report(loaded: tensors.count, dropped: mapping.dropped)
    }
}
