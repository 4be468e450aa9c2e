import Architecture
import Cluster
import Foundation
import Medical
import NN
import Plan
import StageConfig
import Storage
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
        let trainer = try Trainer(stage, c, ctx)
        var state = try Checkpoint.resume(ctx, model: trainer.model, named: trainer.named, optimizer: trainer.optimizer)
        if state.epoch > 0 { ctx.log("resuming after epoch \(state.epoch) of \(c.epochs)") }
        while state.epoch < c.epochs {
            let epoch = state.epoch
            let (sums, steps) = try trainer.train(epoch: epoch)
            state.epoch = epoch + 1
            // Rank 0 validates and writes; the other ranks go on to the next epoch.
            if ctx.writes { try trainer.commit(epoch: epoch, sums: sums, steps: steps, &state) }
        }
        if ctx.writes { try trainer.finish(state) }
    }
}

/// A training stage set up: its data, network, teacher, objective and optimiser, and
/// the three things it does: an epoch of steps, the epoch's validation and commit, the end.
final class Trainer {
    let stage: PlanStage
    let c: TrainingConfiguration
    let ctx: StageContext
    let data: PreparedData
    let model: SegmentationModel
    let teacher: TeacherSource?
    let objective: DistillationObjective
    let trainSlices: [Int]
    /// Where checkpoints are compared (empty: the last epoch is kept).
    let valSlices: [Int]
    /// The trained parameters by checkpoint name: the network's and the trained adapters'.
    let named: [(String, Variable)]
    let optimizer: Optimizer
    let step: TrainingStep
    let world = World.current
    let gradients: DataParallel.GradientBuffer?
    let augmenter: Augmenter?
    let started = Date()
    /// The teacher's taps are checked for constant maps on the first batch.
    var checkedTaps = false

    init(_ stage: PlanStage, _ c: TrainingConfiguration, _ ctx: StageContext) throws {
        (self.stage, self.c, self.ctx) = (stage, c, ctx)
        let seed = UInt64(c.seed)
        data = try PreparedData.open(try ctx.input("data").hash, ctx)
        model = try ModelInput.build(c.model, for: data, classes: data.classes, seed: seed)
        if let initStage = stage.inputs["init"] {
            try Checkpoint.loadModel(model, from: ctx.store.file(initStage, "best.safetensors"))
        } else if let file = c.initFile {
            try Checkpoint.loadModel(model, from: FilePath.resolve(file, against: ctx.baseDirectory))
        }
        teacher = try TeacherSource(stage, ctx, data: data)
        var adapterRNG = RNG(seed: Seeds.adapters(seed))
        objective = try DistillationObjective(supervised: c.loss, distillation: c.distill, student: c.model,
                                              teacher: teacher?.architecture, rng: &adapterRNG)
        trainSlices = data.split.subset(c.subset, of: data.inventory, seed: data.seed)
        guard trainSlices.count >= 2 else { throw RuntimeError.stage("the training subset has \(trainSlices.count) slices; at least 2 are needed") }
        valSlices = Self.validationSlices(c.select.split, data, ctx)
        let store = model.store
        let named = store.names.compactMap { n in store.parameters[n].map { ("model.\(n)", $0) } } + objective.trainedParameters
        let optimizer = Optimizer(c.optimizer, parameters: named.map(\.1))
        (self.named, self.optimizer) = (named, optimizer)
        step = TrainingStep(model: model, objective: objective, optimizer: optimizer, clipGradNorm: c.clipGradNorm.map(Float.init))
        augmenter = c.augment.map(Augmenter.init)
        if World.current.isParallel {
            try DataParallel.check(c, ranks: World.current.size)
            gradients = DataParallel.GradientBuffer(named.map(\.1))
            ctx.log("data-parallel over \(World.current.size) ranks: \(c.batch) images a step, split \(World.current.shard(Array(0..<c.batch)).items.count) or fewer a rank; batch norm and batch-pooled losses span the global batch")
        } else {
            gradients = nil
        }
    }

    static func validationSlices(_ split: SelectionSplit, _ data: PreparedData, _ ctx: StageContext) -> [Int] {
        switch split {
        case .test:
            ctx.warn("checkpoint selection on the TEST split, as the study did: the test score will be optimistic")
            return data.split.slices(.test)
        case .val:
            let slices = data.split.slices(.val)
            if slices.isEmpty { ctx.warn("no validation slices: keeping the last epoch") }
            return slices
        case .last:
            return []
        }
    }

    /// One epoch of steps over the shuffled training slices: each term's sum and the number of steps.
    func train(epoch: Int) throws -> (sums: [String: Double], steps: Int) {
        let seed = UInt64(c.seed), batchSize = c.batch
        let steps = (trainSlices.count + batchSize - 1) / batchSize
        optimizer.lr = c.schedule.rate(base: Float(c.optimizer.lr), epoch: epoch, epochs: c.epochs)
        var order = RNG(seed: Seeds.epochOrder(seed, epoch: epoch))
        let shuffled = order.permutation(trainSlices.count).map { trainSlices[$0] }
        var sums: [String: Double] = [:], lastFinite: [String: Float] = [:]
        var done = 0
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
            var (images, labels) = data.trainingBatch(indices, of: batch.count, first: first, seed: Seeds.batchSampling(seed, epoch: epoch, batch: b))
            if let augmenter {
                // Seeded by the stage seed, the epoch, the batch's place in it and each image's place in the batch:
                // a resumed run, and any split over ranks, augments the same way.
                (images, labels) = augmenter.apply(images: images, labels: labels, seed: Seeds.batchAugmentation(seed, epoch: epoch, batch: b),
                                                   first: first)
            }
            let x = Variable(images)
            let teacherMaps = try teacher?.maps(indices, x, taps: objective.teacherTaps) ?? [:]
            if !checkedTaps, let terms = c.distill, let t = stage.inputs["teacher"] {
                checkedTaps = true
                for w in TapSpread.constantTaps(teacherMaps.mapValues(\.value), terms: terms, teacher: ctx.plan.specName(of: t)) { ctx.warn(w) }
            }
            var stepRNG = RNG(seed: Seeds.step(seed, epoch: epoch, done: done))
            let outcome = try step.run(images: x, labels: labels, teacher: teacherMaps, rng: &stepRNG, group: world.batchGroup, inspect: { o in
                for part in o.terms {
                    let value = part.value.value.item
                    guard value.isFinite else {
                        throw RuntimeError.nonFinite(term: part.name, step: done, epoch: epoch + 1,
                                                     lastFinite: lastFinite.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
                    }
                    lastFinite[part.name] = value
                    sums[part.name, default: 0] += Double(value)
                }
                sums["loss", default: 0] += Double(o.loss.value.item)
            }, reduce: {
                // Each rank holds its part of the global gradient; with them goes whether any rank was asked to stop.
                if let gradients, gradients.sum(over: world, stop: StopRequest.isSet) { throw RuntimeError.interrupted }
            })
            done += 1
            if StageContext.terminal || done % max(1, steps / 4) == 0 || done == steps {
                let eta = Date().timeIntervalSince(started) / Double(epoch * steps + done) * Double((c.epochs - epoch) * steps - done)
                let terms = outcome.terms.map { "\($0.name) \(String(format: "%.3f", $0.value.value.item))" }.joined(separator: " ")
                ctx.progress("epoch \(epoch + 1)/\(c.epochs) step \(done)/\(steps) loss \(String(format: "%.4f", sums["loss", default: 0] / Double(done))) [\(terms)] eta \(Int(eta))s")
            }
        }
        return (sums, done)
    }

    /// After an epoch (rank 0): validation, checkpoint selection, and the epoch's atomic commit.
    func commit(epoch: Int, sums: [String: Double], steps: Int, _ state: inout Checkpoint.State) throws {
        let val = valSlices.isEmpty ? nil : try Metrics.evaluate(model, data, valSlices, classes: data.classes.count, threshold: 0.5, onLogit: false, objective: objective)
        var record: [String: JSON] = ["epoch": .int(epoch + 1), "lr": .number(Double(optimizer.lr))]
        for (k, v) in sums { record["train_\(k)"] = .number(v / Double(max(1, steps))) }
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
        state.records.append(.object(record))
        state.wallTimes.append(Date().timeIntervalSince1970)
        // The epoch's commit, then what is derived from it.
        try Checkpoint.save(ctx, model: model, named: named, optimizer: optimizer, state: state)
        try Checkpoint.writeMetrics(ctx, state)
        try Checkpoint.writeEvents(ctx, state)
        ctx.log("epoch \(epoch + 1) done: " + record.keys.sorted().filter { $0 != "epoch" }.compactMap { k in record[k]?.number.map { "\(k) \(String(format: "%.4f", $0))" } }.joined(separator: ", ")
                + (improved ? " (selected)" : ""))
    }

    /// After the last epoch (rank 0): the selected checkpoint published, the summary.
    func finish(_ state: Checkpoint.State) throws {
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

/// Building a model for the data it will read: the data's channels, dimensions and size must fit it.
enum ModelInput {
    static func build(_ arch: ModelArchitecture, for data: PreparedData, classes: LabelClasses, seed: UInt64) throws -> SegmentationModel {
        switch data.samples {
        case .slices(let set): return try build(arch, for: set, classes: classes, seed: seed)
        case .volumes(let set, let patch): return try build(arch, patch: patch, channels: set.channels, classes: classes, seed: seed)
        }
    }

    static func build(_ arch: ModelArchitecture, for set: SliceSet, classes: LabelClasses, seed: UInt64) throws -> SegmentationModel {
        try check(arch, channels: set.channels, classes: classes)
        guard arch.spatialDimensions == 2 else { throw RuntimeError.stage("\(arch.summary) is a 3D network, but the data is prepared as slices") }
        let d = arch.inputDivisor
        guard set.height % d == 0, set.width % d == 0 else {
            throw RuntimeError.stage("the prepared slices are \(set.height)x\(set.width), not divisible by \(d) as \(arch.summary) needs")
        }
        return ModelBuilder.build(arch, height: set.height, width: set.width, seed: seed)
    }

    /// A 3D network for patches of `patch` voxels.
    static func build(_ arch: ModelArchitecture, patch: [Int], channels: Int, classes: LabelClasses, seed: UInt64) throws -> SegmentationModel {
        try check(arch, channels: channels, classes: classes)
        guard case .unet(let u) = arch, let levels = u.volume else {
            throw RuntimeError.stage("\(arch.summary) is a 2D network, but the data is prepared as volumes for 3D ones")
        }
        guard zip(patch, levels.divisor).allSatisfy({ $0 % $1 == 0 }) else {
            throw RuntimeError.stage("the patch \(patch) is not divisible by \(levels.divisor) as \(arch.summary) needs")
        }
        return ModelBuilder.build(arch, height: patch[1], width: patch[2], seed: seed)
    }

    static func check(_ arch: ModelArchitecture, channels: Int, classes: LabelClasses) throws {
        if let problem = classes.problems(arch).first { throw RuntimeError.stage(problem.summary) }
        guard channels == arch.inChannels else {
            throw RuntimeError.stage("the model takes \(arch.inChannels) input channels but the prepared data has \(channels)")
        }
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
            let m = try ModelInput.build(architecture, for: data, classes: data.classes, seed: 0)
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
