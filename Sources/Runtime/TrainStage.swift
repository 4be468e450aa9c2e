import Architecture
import Foundation
import Medical
import NN
import Plan
import Tensor

/// The `train` and `distill` stages: the epoch loop with validation, checkpoint
/// selection, atomic per-epoch checkpoints, resumption and NaN stops.
///
/// Determinism: initialisation, shuffling and sampling draw from generators seeded
/// by the stage seed (and epoch and step), so the same plan, seed and thread count
/// give the same numbers; a resumed run continues exactly where the last complete
/// epoch ended.
enum TrainStage {
    static func run(_ stage: PlanStage, _ ctx: StageContext) throws {
        let p = stage.params
        let seed = UInt64(p["seed"]?.int ?? 42)
        let epochs = p["epochs"]?.int ?? 1, batchSize = max(1, p["batch"]?.int ?? 1)
        let data = try PreparedData.open(try ctx.input("data").hash, ctx)
        let arch = try PlanDecoding.architecture(p["model"] ?? .null)
        let model = ModelBuilder.build(arch, inputSize: data.set.height, seed: seed)
        if let initStage = stage.inputs["init"] {
            try Checkpoint.loadModel(model, from: ctx.store.file(initStage, "best.safetensors"))
        } else if let file = p["init_file"]?.string {
            try Checkpoint.loadModel(model, from: file.hasPrefix("/") ? file : ctx.baseDirectory + "/" + file)
        }
        let teacher = try TeacherSource(stage, ctx, data: data)
        var adapterRNG = RNG(seed: seed &+ 0xADA)
        let terms = try LossTerms(params: p, student: arch, teacher: teacher?.architecture, rng: &adapterRNG)
        let trainSlices = data.split.subset(PlanDecoding.subsetChain(p["subset"]), of: data.set, seed: data.seed)
        guard trainSlices.count >= 2 else { throw RuntimeError.stage("the training subset has \(trainSlices.count) slices; at least 2 are needed") }
        let selectSplit = p["select"]?["split"]?.string ?? "val", selectMetric = p["select"]?["metric"]?.string ?? "dice"
        var valSlices = selectSplit == "test" ? data.split.slices("test") : data.split.slices("val")
        if selectSplit == "test" { ctx.log("checkpoint selection on the TEST split, as the study did: the test score will be optimistic") }
        if selectSplit == "val", valSlices.isEmpty { ctx.log("no validation slices: keeping the last epoch") }
        if selectSplit == "last" { valSlices = [] }
        let (kind, lr) = try PlanDecoding.optimizer(p["optimizer"] ?? .null)
        let (schedule, warmup) = PlanDecoding.schedule(p["schedule"] ?? .null)
        let named = model.store.names.compactMap { n in model.store.parameters[n].map { ("model.\(n)", $0) } } + terms.adapterParameters
        let optimizer = Optimizer(kind, lr: lr, parameters: named.map(\.1))
        let clip = p["clip_grad_norm"]?.number.map(Float.init)

        var state = try Checkpoint.resume(ctx, model: model, named: named, optimizer: optimizer)
        if state.epoch > 0 { ctx.log("resuming after epoch \(state.epoch) of \(epochs)") }
        let metricsPath = ctx.directory + "/metrics.jsonl"
        let steps = (trainSlices.count + batchSize - 1) / batchSize
        let started = Date()
        while state.epoch < epochs {
            let epoch = state.epoch
            optimizer.lr = schedule.rate(base: lr, epoch: epoch, epochs: epochs, warmup: warmup)
            var order = RNG(seed: seed &+ UInt64(epoch) &* 7919)
            let shuffled = order.permutation(trainSlices.count).map { trainSlices[$0] }
            var sums: [String: Double] = [:], lastFinite: [String: Float] = [:]
            var step = 0
            for b in stride(from: 0, to: shuffled.count, by: batchSize) {
                let indices = Array(shuffled[b..<min(shuffled.count, b + batchSize)])
                if indices.count < 2, arch.usesBatchNorm { continue }  // batch statistics need two samples
                if CtxStop.requested { throw RuntimeError.interrupted }
                let (images, labels) = data.set.batch(indices)
                let x = Variable(images)
                let teacherMaps = try teacher?.maps(indices, x, taps: terms.teacherTaps) ?? [:]
                var stepRNG = RNG(seed: seed &+ UInt64(epoch * 100_003 + step))
                let tape = Tape()
                var parts: [(String, Variable, Float)] = []
                let loss = try tape.record { () -> Variable in
                    let out = model.forward(x, training: true)
                    parts = try terms.terms(student: out, teacher: teacherMaps, images: x, labels: labels, rng: &stepRNG)
                    return F.weightedSum(parts.map { ($0.1, $0.2) })
                }
                for (name, v, _) in parts {
                    let value = v.value.item
                    guard value.isFinite else {
                        throw RuntimeError.nonFinite(term: name, step: step, epoch: epoch + 1,
                                                     lastFinite: lastFinite.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
                    }
                    lastFinite[name] = value
                    sums[name, default: 0] += Double(value)
                }
                sums["loss", default: 0] += Double(loss.value.item)
                optimizer.zeroGrad()
                tape.backward(loss)
                if let clip { optimizer.clipGradNorm(clip) }
                optimizer.update()
                step += 1
                if StageContext.terminal || step % max(1, steps / 4) == 0 || step == steps {
                    let eta = Date().timeIntervalSince(started) / Double(epoch * steps + step) * Double((epochs - epoch) * steps - step)
                    let terms = parts.map { "\($0.0) \(String(format: "%.3f", $0.1.value.item))" }.joined(separator: " ")
                    ctx.progress("epoch \(epoch + 1)/\(epochs) step \(step)/\(steps) loss \(String(format: "%.4f", sums["loss", default: 0] / Double(step))) [\(terms)] eta \(Int(eta))s")
                }
            }
            let val = valSlices.isEmpty ? nil : Metrics.evaluate(model, data.set, valSlices, threshold: 0.5, onLogit: false, supervised: terms.supervised)
            var record: [String: JSON] = ["epoch": .int(epoch + 1), "lr": .number(Double(optimizer.lr))]
            for (k, v) in sums { record["train_\(k)"] = .number(v / Double(max(1, step))) }
            if let val { record["val_dice"] = .number(val.dice); record["val_iou"] = .number(val.iou); record["val_loss"] = .number(val.loss) }
            let score: Double = {
                guard let val else { return Double(epoch) }  // `last`: the latest epoch wins
                switch selectMetric {
                case "iou": return val.iou
                case "loss": return -val.loss
                default: return val.dice
                }
            }()
            let improved = state.bestScore == nil || score >= (state.bestScore ?? 0)
            if improved {
                state.bestScore = score
                state.bestEpoch = epoch + 1
                try Checkpoint.saveModel(model, to: ctx.directory + "/best.safetensors")
            }
            state.epoch = epoch + 1
            try Checkpoint.save(ctx, model: model, named: named, optimizer: optimizer, state: state)
            if let h = FileHandle(forWritingAtPath: metricsPath) ?? { FileManager.default.createFile(atPath: metricsPath, contents: nil); return FileHandle(forWritingAtPath: metricsPath) }() {
                h.seekToEndOfFile()
                h.write(Data((JSON.object(record).canonical + "\n").utf8))
                try? h.close()
            }
            ctx.log("epoch \(epoch + 1) done: " + record.keys.sorted().filter { $0 != "epoch" }.compactMap { k in record[k]?.number.map { "\(k) \(String(format: "%.4f", $0))" } }.joined(separator: ", ")
                    + (improved ? " (selected)" : ""))
        }
        ctx.log("best epoch \(state.bestEpoch) by \(valSlices.isEmpty ? "last" : "\(selectSplit) \(selectMetric)"); \(Int(Date().timeIntervalSince(started)))s")
    }
}

/// Set by the signal handler; checked between steps.
enum CtxStop {
    nonisolated(unsafe) static var requested = false
}

extension ModelArchitecture {
    var usesBatchNorm: Bool {
        switch self {
        case .unet(let u): return u.norm == .batch
        case .transunet: return true
        }
    }
}

/// Where a distill stage's teacher maps come from: the fp16 cache, or the frozen teacher run live.
struct TeacherSource {
    let architecture: ModelArchitecture
    let model: SegmentationModel?
    let cache: SafetensorsFile?
    let cacheRow: [Int: Int]

    init?(_ stage: PlanStage, _ ctx: StageContext, data: PreparedData) throws {
        guard let teacherHash = stage.inputs["teacher"], let teacherStage = ctx.plan.stage(teacherHash) else { return nil }
        architecture = try PlanDecoding.architecture(teacherStage.params["model"] ?? .null)
        if let cacheHash = stage.inputs["teacher_outputs"] {
            let file = try SafetensorsFile(path: ctx.store.file(cacheHash, "outputs.safetensors"))
            let slices = try file.tensor("slices").values.map { Int($0) }
            cache = file
            cacheRow = Dictionary(slices.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            model = nil
            ctx.log("teacher maps from the fp16 cache \(cacheHash.prefix(12))")
        } else {
            let m = ModelBuilder.build(architecture, inputSize: data.set.height, seed: 0)
            try Checkpoint.loadModel(m, from: ctx.store.file(teacherHash, "best.safetensors"))
            model = m
            cache = nil
            cacheRow = [:]
        }
    }

    /// Teacher taps for the batch, as constants (no gradient reaches the teacher).
    func maps(_ indices: [Int], _ x: Variable, taps: [String]) throws -> [String: Variable] {
        if let cache {
            let rows = try indices.map { i -> Int in
                guard let r = cacheRow[i] else { throw RuntimeError.stage("slice \(i) is not in the teacher-output cache") }
                return r
            }
            var out: [String: Variable] = [:]
            for t in taps { out[t] = Variable(try cache.tensor(t, rows: rows)) }
            return out
        }
        guard let model else { return [:] }
        let o = Tape.noGrad { model.forward(x, training: false) }
        var out: [String: Variable] = [:]
        for t in taps { out[t] = o.taps[t] }
        return out
    }
}
