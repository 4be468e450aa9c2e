import Foundation
import Interchange
import NN
import Plan
import StageConfig
import Storage
import Tensor

/// Checkpoints as safetensors. `best.safetensors` holds the selected model's state
/// dict under the reference names (what a PyTorch user loads), written once the
/// loop has ended.
///
/// While the loop runs, everything a resume needs is one file, `last.safetensors`:
/// the model, the adapters, the optimiser's state, the selected model so far and,
/// in its metadata, the loop's position and every epoch's metrics record. It is
/// replaced atomically once per epoch, so an epoch is committed whole or not at
/// all: a kill between any two writes resumes from the last committed epoch and
/// ends bit for bit where an uninterrupted run ends. metrics.jsonl and
/// best.safetensors are derived from it (rewritten after each commit and at the
/// end), so a kill between the commit and them only delays them.
enum Checkpoint {
    /// The format of `last.safetensors`; the first (with state.json beside it) is not resumed.
    static let format = "distillery-training-state-2"

    struct State {
        var epoch = 0
        var bestScore: Double?
        var bestEpoch = 0
        /// Each committed epoch's metrics record, in order.
        var records: [JSON] = []
        /// When each committed epoch ended (seconds since 1970): the x axis of TensorBoard's wall-time view.
        /// Kept in the event file, not in last.safetensors.
        var wallTimes: [Double] = []
        /// The selected model's state dict (a copy).
        var best: [String: Tensor] = [:]
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

    /// The model's current state dict, copied (the selected model must not follow later updates).
    static func snapshot(_ model: SegmentationModel) -> [String: Tensor] {
        model.store.stateDict.mapValues { $0.copy() }
    }

    /// Commits an epoch: one file, renamed into place.
    static func save(_ ctx: StageContext, model: SegmentationModel, named: [(String, Variable)], optimizer: Optimizer, state: State) throws {
        var tensors: [String: Tensor] = [:]
        for (name, t) in model.store.stateDict { tensors["model.\(name)"] = t }
        for (name, v) in named where !name.hasPrefix("model.") { tensors[name] = v.value }
        for (name, v) in named {
            for (stateName, t) in optimizer.state(of: v) { tensors["optim.\(stateName).\(name)"] = t }
        }
        for (name, t) in state.best { tensors["best.\(name)"] = t }
        let metadata = ["format": format, "epoch": "\(state.epoch)", "best_epoch": "\(state.bestEpoch)", "optimizer_step": "\(optimizer.step)",
                        "best_score": state.bestScore.map { "\($0)" } ?? "none", "metrics": JSON.array(state.records).canonical]
        try SafetensorsFile.write(tensors, metadata: metadata, to: ctx.directory + "/last.safetensors")
    }

    /// Rewrites metrics.jsonl from the committed records (unless it already holds them).
    static func writeMetrics(_ ctx: StageContext, _ state: State) throws {
        let path = ctx.directory + "/metrics.jsonl", text = Data(state.records.map { $0.canonical + "\n" }.joined().utf8)
        if FileManager.default.contents(atPath: path) == text { return }
        try AtomicFile.write(text, to: path)
    }

    /// Rewrites the stage's TensorBoard event file from the committed records, and links it
    /// into the store's tensorboard/ folder under the spec's variant and stage names.
    static func writeEvents(_ ctx: StageContext, _ state: State) throws {
        let steps = zip(state.records, state.wallTimes).map { record, time in
            TensorBoardEvents.Step(step: record["epoch"]?.int ?? 0, wallTime: time, scalars: TensorBoardRuns.scalars(record))
        }
        let path = ctx.directory + "/" + TensorBoardRuns.fileName
        let data = try TensorBoardEvents.file(steps, startTime: state.wallTimes.first ?? Date().timeIntervalSince1970)
        // Bookkeeping like the log (it holds wall times): replaced whole, without the outputs' fsyncs.
        if FileManager.default.contents(atPath: path) != data { try data.write(to: URL(fileURLWithPath: path), options: .atomic) }
        TensorBoardRuns.link(ctx.stage.hash, plan: ctx.plan, store: ctx.store)
    }

    /// Writes the selected model as best.safetensors.
    static func publishBest(_ ctx: StageContext, _ state: State) throws {
        guard !state.best.isEmpty else { throw RuntimeError.stage("no epoch was selected: the stage trained no epoch") }
        try SafetensorsFile.write(state.best, metadata: ["format": "distillery-model"], to: ctx.directory + "/best.safetensors")
    }

    /// Restores model, adapters and optimiser from the last committed epoch, if there is one.
    static func resume(_ ctx: StageContext, model: SegmentationModel, named: [(String, Variable)], optimizer: Optimizer) throws -> State {
        let weights = ctx.directory + "/last.safetensors"
        guard FileManager.default.fileExists(atPath: weights) else { return State() }
        let file = try SafetensorsFile(path: weights)
        let m = file.metadata
        guard m["format"] == format else {
            throw RuntimeError.stage("\(weights) was written by an earlier Distillery (format '\(m["format"] ?? "none")'), which this one does not resume: "
                                     + "delete it (and state.json beside it) to train the stage from the start")
        }
        guard let epoch = m["epoch"].flatMap(Int.init), let bestEpoch = m["best_epoch"].flatMap(Int.init),
              let step = m["optimizer_step"].flatMap(Int.init), let scoreText = m["best_score"],
              let records = m["metrics"].flatMap({ JSON.parse(Data($0.utf8)) })?.array, records.count == epoch else {
            throw RuntimeError.stage("\(weights) has an unreadable training state: delete it to train the stage from the start")
        }
        var modelTensors: [String: Tensor] = [:], best: [String: Tensor] = [:]
        for name in file.names {
            if name.hasPrefix("model.") { modelTensors[String(name.dropFirst(6))] = try file.tensor(name) }
            if name.hasPrefix("best.") { best[String(name.dropFirst(5))] = try file.tensor(name) }
        }
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
        // The wall times live in the event file, not in the checkpoint (whose bytes a rerun must reproduce); an
        // epoch the event file lost (killed before it was rewritten, or deleted) gets the time of the commit that holds it.
        let committed = ((try? FileManager.default.attributesOfItem(atPath: weights))?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        var wallTimeOf: [Int: Double] = [:]
        if let data = FileManager.default.contents(atPath: ctx.directory + "/" + TensorBoardRuns.fileName), let steps = TensorBoardEvents.read(data) {
            for s in steps { wallTimeOf[s.step] = s.wallTime }
        }
        let wallTimes = (1...max(1, records.count)).prefix(records.count).map { wallTimeOf[$0] ?? committed }
        return State(epoch: epoch, bestScore: scoreText == "none" ? nil : Double(scoreText), bestEpoch: bestEpoch, records: records,
                     wallTimes: wallTimes, best: best)
    }
}
