import Foundation
import NN
import Plan
import StageConfig
import Tensor

/// Checkpoints as safetensors: `best.safetensors` holds the selected model's
/// state dict under the reference names (what a PyTorch user loads);
/// `last.safetensors` adds adapters and optimiser state, and `state.json` the
/// loop's position, so that a killed run resumes from its last complete epoch.
enum Checkpoint {
    struct State {
        var epoch = 0
        var bestScore: Double?
        var bestEpoch = 0
    }

    static func saveModel(_ model: SegmentationModel, to path: String) throws {
        try SafetensorsFile.write(model.store.stateDict, metadata: ["format": "distillery-model"], to: path)
    }

    static func loadModel(_ model: SegmentationModel, from path: String) throws {
        let file = try SafetensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        try model.store.load(tensors, source: path)
    }

    static func save(_ ctx: StageContext, model: SegmentationModel, named: [(String, Variable)], optimizer: Optimizer, state: State) throws {
        var tensors: [String: Tensor] = [:]
        for (name, t) in model.store.stateDict { tensors["model.\(name)"] = t }
        for (name, v) in named where !name.hasPrefix("model.") { tensors[name] = v.value }
        for (name, v) in named {
            for (stateName, t) in optimizer.state(of: v) { tensors["optim.\(stateName).\(name)"] = t }
        }
        try SafetensorsFile.write(tensors, metadata: ["format": "distillery-training-state"], to: ctx.directory + "/last.safetensors")
        let json = JSON.object(["epoch": .int(state.epoch), "best_epoch": .int(state.bestEpoch), "optimizer_step": .int(optimizer.step),
                                "best_score": state.bestScore.map(JSON.number) ?? .null])
        try RunStore.writeAtomically(Data(json.pretty.utf8), to: ctx.directory + "/state.json")
    }

    /// Restores model, adapters and optimiser from the last complete epoch, if there is one.
    static func resume(_ ctx: StageContext, model: SegmentationModel, named: [(String, Variable)], optimizer: Optimizer) throws -> State {
        let statePath = ctx.directory + "/state.json", weights = ctx.directory + "/last.safetensors"
        guard let data = FileManager.default.contents(atPath: statePath), FileManager.default.fileExists(atPath: weights) else { return State() }
        guard let json = JSON.parse(data), let epoch = json["epoch"]?.int, let bestEpoch = json["best_epoch"]?.int,
              let step = json["optimizer_step"]?.int, let bestScore = json["best_score"] else {
            throw RuntimeError.stage("\(statePath) is unreadable: delete it (and last.safetensors) to restart the stage from scratch")
        }
        let file = try SafetensorsFile(path: weights)
        var modelTensors: [String: Tensor] = [:]
        for name in file.names where name.hasPrefix("model.") { modelTensors[String(name.dropFirst(6))] = try file.tensor(name) }
        try model.store.load(modelTensors, source: weights)
        for (name, v) in named where !name.hasPrefix("model.") {
            let t = try file.tensor(name)
            guard t.shape == v.shape else {
                throw CheckpointError.mismatch(weights, ["'\(name)' has shape \(t.shape), the stage expects \(v.shape)"])
            }
            v.value.pointer.update(from: t.pointer, count: t.count)
        }
        for (name, v) in named {
            var s: [String: Tensor] = [:]
            for stateName in ["exp_avg", "exp_avg_sq", "square_avg", "momentum_buffer", "sum", "grad_avg"] where file.entries["optim.\(stateName).\(name)"] != nil {
                s[stateName] = try file.tensor("optim.\(stateName).\(name)")
            }
            if !s.isEmpty { optimizer.setState(of: v, s) }
        }
        optimizer.setStep(step)
        return State(epoch: epoch, bestScore: bestScore.number, bestEpoch: bestEpoch)
    }
}
