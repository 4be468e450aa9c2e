import Architecture
import Cluster
import Foundation
import Medical
import NN
import Plan
import StageConfig
import Synchronization
import Tensor

/// The `train` and `distill` stages: the epoch loop with validation, checkpoint
/// selection, atomic per-epoch checkpoints, resumption and NaN stops.
///
/// Determinism: initialisation, shuffling and sampling draw from generators seeded
/// by the stage seed (and epoch and step), so the same plan, seed and thread count
/// give the same numbers; a resumed run continues exactly where the last complete
/// epoch ended.
///
/// Data parallelism: under `mpirun -np R` (or `srun`) every rank runs this loop over
/// the same shuffled batches and takes its contiguous share of each; the losses and
/// batch statistics span the global batch (CrossBatch), the gradients are summed over
/// the ranks in one allreduce, and every rank applies the same update, so R ranks
/// compute what one process computes with the same global batch, up to the order of
/// the sums. Rank 0 validates and writes every file.
enum TrainStage {
    static func run(_ stage: PlanStage, _ c: TrainingConfiguration, _ ctx: StageContext) throws {
        let seed = UInt64(c.seed)
        let data = try PreparedData.open(try ctx.input("data").hash, ctx)
        let model = try ModelInput.build(c.model, for: data.set, classes: data.classes, seed: seed)
        if let initStage = stage.inputs["init"] {
            try Checkpoint.loadModel(model, from: ctx.store.file(initStage, "best.safetensors"))
        } else if let file = c.initFile {
            try Checkpoint.loadModel(model, from: file.hasPrefix("/") ? file : ctx.baseDirectory + "/" + file)
        }
        let teacher = try TeacherSource(stage, ctx, data: data)
        var adapterRNG = RNG(seed: seed &+ 0xADA)
        let objective = try DistillationObjective(supervised: c.loss, distillation: c.distill, student: c.model,
                                                  teacher: teacher?.architecture, rng: &adapterRNG)
        let trainSlices = data.split.subset(c.subset, of: data.set, seed: data.seed)
        guard trainSlices.count >= 2 else { throw RuntimeError.stage("the training subset has \(trainSlices.count) slices; at least 2 are needed") }
        var valSlices: [Int]
        switch c.select.split {
        case .test:
            valSlices = data.split.slices(.test)
            ctx.warn("checkpoint selection on the TEST split, as the study did: the test score will be optimistic")
        case .val:
            valSlices = data.split.slices(.val)
            if valSlices.isEmpty { ctx.warn("no validation slices: keeping the last epoch") }
        case .last:
            valSlices = []
        }
        let named = model.store.names.compactMap { n in model.store.parameters[n].map { ("model.\(n)", $0) } } + objective.trainedParameters
        let optimizer = Optimizer(c.optimizer, parameters: named.map(\.1))
        let baseLR = Float(c.optimizer.lr)
        let clip = c.clipGradNorm.map(Float.init)
        let epochs = c.epochs, batchSize = c.batch
        let world = World.current, group = world.batchGroup
        var gradients: DataParallel.GradientBuffer?
        if world.isParallel {
            try DataParallel.check(c, ranks: world.size)
            gradients = DataParallel.GradientBuffer(named.map(\.1))
            ctx.log("data-parallel over \(world.size) ranks: \(batchSize) images a step, split \(world.shard(Array(0..<batchSize)).items.count) or fewer a rank; batch norm and batch-pooled losses span the global batch")
        }

        var state = try Checkpoint.resume(ctx, model: model, named: named, optimizer: optimizer)
        if state.epoch > 0 { ctx.log("resuming after epoch \(state.epoch) of \(epochs)") }
        let steps = (trainSlices.count + batchSize - 1) / batchSize
        let started = Date()
        var checkedTaps = false  // the teacher's taps are checked on the first batch
        let augmenter = c.augment.map(Augmenter.init)
        while state.epoch < epochs {
            let epoch = state.epoch
            optimizer.lr = c.schedule.rate(base: baseLR, epoch: epoch, epochs: epochs)
            var order = RNG(seed: seed &+ UInt64(epoch) &* 7919)
            let shuffled = order.permutation(trainSlices.count).map { trainSlices[$0] }
            var sums: [String: Double] = [:], lastFinite: [String: Float] = [:]
            var step = 0
            for b in stride(from: 0, to: shuffled.count, by: batchSize) {
                let batch = Array(shuffled[b..<min(shuffled.count, b + batchSize)])
                if batch.count < 2, c.model.usesBatchNorm { continue }  // batch statistics need two samples
                if batch.count < world.size {
                    ctx.warn("epoch \(epoch + 1): the last batch has \(batch.count) images for \(world.size) ranks and is left out")
                    continue
                }
                if !world.isParallel, StopRequest.isSet { throw RuntimeError.interrupted }
                // This rank's share of the batch (all of it in one process).
                let (indices, first) = world.shard(batch)
                var (images, labels) = data.set.batch(indices)
                if let augmenter {
                    // Seeded by the stage seed, the epoch, the batch's place in it and each image's place in the batch:
                    // a resumed run, and any split over ranks, augments the same way.
                    (images, labels) = augmenter.apply(images: images, labels: labels, seed: seed &+ 0xA06 &+ UInt64(epoch) &* 1_000_003 &+ UInt64(b),
                                                       first: first)
                }
                let x = Variable(images)
                let teacherMaps = try teacher?.maps(indices, x, taps: objective.teacherTaps) ?? [:]
                if !checkedTaps, let terms = c.distill, let t = stage.inputs["teacher"] {
                    checkedTaps = true
                    for w in TapSpread.constantTaps(teacherMaps.mapValues(\.value), terms: terms, teacher: ctx.plan.specName(of: t)) { ctx.warn(w) }
                }
                var stepRNG = RNG(seed: seed &+ UInt64(epoch * 100_003 + step))
                let tape = Tape()
                var parts: [DistillationObjective.Term] = []
                let loss = try CrossBatch.$group.withValue(group) {
                    try tape.record { () throws -> Variable in
                        let out = model.forward(x, training: true)
                        parts = try objective.terms(student: out, teacher: teacherMaps, images: x, labels: labels, rng: &stepRNG)
                        return DistillationObjective.total(parts)
                    }
                }
                for part in parts {
                    let value = part.value.value.item
                    guard value.isFinite else {
                        throw RuntimeError.nonFinite(term: part.name, step: step, epoch: epoch + 1,
                                                     lastFinite: lastFinite.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
                    }
                    lastFinite[part.name] = value
                    sums[part.name, default: 0] += Double(value)
                }
                sums["loss", default: 0] += Double(loss.value.item)
                optimizer.zeroGrad()
                CrossBatch.$group.withValue(group) { tape.backward(loss) }
                // Each rank holds its part of the global gradient; with them goes whether any rank was asked to stop.
                if let gradients, gradients.sum(over: world, stop: StopRequest.isSet) { throw RuntimeError.interrupted }
                if let clip { optimizer.clipGradNorm(clip) }
                optimizer.update()
                step += 1
                if StageContext.terminal || step % max(1, steps / 4) == 0 || step == steps {
                    let eta = Date().timeIntervalSince(started) / Double(epoch * steps + step) * Double((epochs - epoch) * steps - step)
                    let terms = parts.map { "\($0.name) \(String(format: "%.3f", $0.value.value.item))" }.joined(separator: " ")
                    ctx.progress("epoch \(epoch + 1)/\(epochs) step \(step)/\(steps) loss \(String(format: "%.4f", sums["loss", default: 0] / Double(step))) [\(terms)] eta \(Int(eta))s")
                }
            }
            // Rank 0 validates and writes; the other ranks go on to the next epoch.
            guard ctx.writes else {
                state.epoch = epoch + 1
                continue
            }
            let val = valSlices.isEmpty ? nil : try Metrics.evaluate(model, data.set, valSlices, classes: data.classes.count, threshold: 0.5, onLogit: false, objective: objective)
            var record: [String: JSON] = ["epoch": .int(epoch + 1), "lr": .number(Double(optimizer.lr))]
            for (k, v) in sums { record["train_\(k)"] = .number(v / Double(max(1, step))) }
            if let val { record["val_dice"] = .number(val.dice); record["val_iou"] = .number(val.iou); record["val_loss"] = .number(val.loss) }
            let score: Double = {
                guard let val else { return Double(epoch) }  // `last`: the latest epoch wins
                switch c.select.metric {
                case .iou: return val.iou
                case .loss: return -val.loss
                case .dice: return val.dice
                }
            }()
            let improved = state.bestScore == nil || score >= (state.bestScore ?? 0)
            if improved {
                state.bestScore = score
                state.bestEpoch = epoch + 1
                state.best = Checkpoint.snapshot(model)
            }
            state.epoch = epoch + 1
            state.records.append(.object(record))
            state.wallTimes.append(Date().timeIntervalSince1970)
            // The epoch's commit, then what is derived from it.
            try Checkpoint.save(ctx, model: model, named: named, optimizer: optimizer, state: state)
            try Checkpoint.writeMetrics(ctx, state)
            try Checkpoint.writeEvents(ctx, state)
            ctx.log("epoch \(epoch + 1) done: " + record.keys.sorted().filter { $0 != "epoch" }.compactMap { k in record[k]?.number.map { "\(k) \(String(format: "%.4f", $0))" } }.joined(separator: ", ")
                    + (improved ? " (selected)" : ""))
        }
        guard ctx.writes else { return }
        try Checkpoint.writeMetrics(ctx, state)
        try Checkpoint.writeEvents(ctx, state)
        try Checkpoint.publishBest(ctx, state)
        ctx.summary["best_epoch"] = .int(state.bestEpoch)
        ctx.summary["steps"] = .int(optimizer.step)
        ctx.log("best epoch \(state.bestEpoch) by \(valSlices.isEmpty ? "last" : "\(c.select.split.rawValue) \(c.select.metric.rawValue)"); \(Int(Date().timeIntervalSince(started)))s")
    }
}

/// What a batch split over ranks needs beyond CrossBatch: which terms cannot be
/// split, and the gradient allreduce.
enum DataParallel {
    /// Every term splits (batch-contrastive ones gather the global batch); the batch must give each rank an image.
    static func check(_ c: TrainingConfiguration, ranks: Int) throws {
        guard c.batch >= ranks else { throw RuntimeError.stage("a batch of \(c.batch) cannot be split over \(ranks) ranks") }
    }

    /// Every trained parameter's gradient in one flat buffer (one bucket), with a stop
    /// flag in the last slot; allocated once per stage (T1's is 173 MB), reused every step.
    final class GradientBuffer {
        let trained: [Variable]
        let total: Int
        let flat: UnsafeMutablePointer<Float>

        init(_ parameters: [Variable]) {
            trained = parameters.filter(\.requiresGrad)
            total = trained.reduce(0) { $0 + $1.value.count }
            flat = .allocate(capacity: total + 1)
        }

        deinit { flat.deallocate() }

        /// Sums the gradients over the ranks in place; returns whether any rank was asked to stop.
        func sum(over world: World, stop: Bool) -> Bool {
            var at = 0
            for p in trained {
                flat.advanced(by: at).update(from: p.gradBuffer(), count: p.value.count)
                at += p.value.count
            }
            flat[total] = stop ? 1 : 0
            world.sum(flat, total + 1)
            at = 0
            for p in trained {
                p.gradBuffer().update(from: flat.advanced(by: at), count: p.value.count)
                at += p.value.count
            }
            return flat[total] > 0
        }
    }
}

/// Set from the SIGINT/SIGTERM handler (an atomic store is async-signal-safe);
/// checked between steps and between stages.
enum StopRequest {
    static let flag = Atomic<Bool>(false)
    static var isSet: Bool { flag.load(ordering: .relaxed) }
    static func set() { flag.store(true, ordering: .relaxed) }
}

/// Building a model for the data it will read: the data's channels and size must fit it.
enum ModelInput {
    static func build(_ arch: ModelArchitecture, for set: SliceSet, classes: LabelClasses, seed: UInt64) throws -> SegmentationModel {
        if let problem = classes.problems(arch).first { throw RuntimeError.stage(problem.summary) }
        guard set.channels == arch.inChannels else {
            throw RuntimeError.stage("the model takes \(arch.inChannels) input channels but the prepared data has \(set.channels)")
        }
        let d = arch.inputDivisor
        guard set.height % d == 0, set.width % d == 0 else {
            throw RuntimeError.stage("the prepared slices are \(set.height)x\(set.width), not divisible by \(d) as \(arch.summary) needs")
        }
        return ModelBuilder.build(arch, height: set.height, width: set.width, seed: seed)
    }
}


extension PlanStage {
    /// The network a `pretrained`, `train` or `distill` stage produces (its `best.safetensors`).
    func producedModel() throws -> ModelArchitecture {
        guard let model = config.trainedModel else { throw RuntimeError.badPlan("stage \(shortHash) is a \(kind.rawValue) stage, not a network") }
        return model
    }

    /// The training configuration of a `train` or `distill` stage.
    func trainingConfiguration() throws -> TrainingConfiguration {
        guard case .train(let c) = config else { throw RuntimeError.badPlan("stage \(shortHash) is a \(kind.rawValue) stage, not a trained model") }
        return c
    }
}

/// Where a distill stage's teacher maps come from: the fp16 cache, or the frozen teacher run live.
struct TeacherSource {
    let architecture: ModelArchitecture
    let model: SegmentationModel?
    let cache: SafetensorsFile?
    let cacheRow: [Int: Int]

    init?(_ stage: PlanStage, _ ctx: StageContext, data: PreparedData) throws {
        guard stage.inputs["teacher"] != nil else { return nil }
        let teacherStage = try ctx.input("teacher")
        architecture = try teacherStage.producedModel()
        if let cacheHash = stage.inputs["teacher_outputs"] {
            if case .train(let c) = stage.config, c.augment != nil {
                throw RuntimeError.badPlan("stage \(stage.shortHash) augments its batches but reads cached teacher maps of unaugmented slices; the planner never pairs them")
            }
            let file = try SafetensorsFile(path: ctx.store.file(cacheHash, "outputs.safetensors"))
            let slices = try file.tensor("slices").values.map { Int($0) }
            cache = file
            cacheRow = Dictionary(slices.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            model = nil
            ctx.log("teacher maps from the fp16 cache \(cacheHash.prefix(12))")
        } else {
            let m = try ModelInput.build(architecture, for: data.set, classes: data.classes, seed: 0)
            try Checkpoint.loadModel(m, from: ctx.store.file(teacherStage.hash, "best.safetensors"))
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
        let o = Tape.noGrad { model.forward(x, training: false, taps: Set(taps)) }
        var out: [String: Variable] = [:]
        for t in taps { out[t] = o.taps[t] }
        return out
    }
}
