import Architecture
import Foundation
import Medical
import Spec
import StageConfig

/// Estimates each stage's bill from the tap manifest and the model graph.
struct CostModel {
    let throughput: Throughput
    let summary: DatasetSummary
    let data: DataSpec
    let cacheBudgetBytes: Int
    /// The split of the known slices (nil while they are not known), made once.
    let manifest: SplitManifest?
    /// Samples per subset chain of that split, counted once: every variant of a grid
    /// asks for its students' subset, and each count draws a seeded permutation per level.
    private let sampleCounts = SampleCounts()

    init(throughput: Throughput, summary: DatasetSummary, data: DataSpec, cacheBudgetBytes: Int) {
        (self.throughput, self.summary, self.data, self.cacheBudgetBytes) = (throughput, summary, data, cacheBudgetBytes)
        // A patient key that does not match every case is the data checks' error (E0812); the plan then counts by shares.
        manifest = summary.inventory.flatMap { try? SplitManifest.make($0, data.split, keepEmpty: summary.prepared ? data.preprocess.keepEmpty : 1) }
    }

    /// Values of one input plane: a slice's pixels, or a 3D patch's voxels.
    var pixels: Int { data.preprocess.inputExtent.reduce(1, *) }

    /// One sample's forward pass: a slice, or a patch through a 3D network.
    func forward(_ model: ModelArchitecture) -> ForwardCost {
        if let patch = data.preprocess.volume?.patch, let f = model.forwardCost(volume: patch) { return f }
        return model.forwardCost(height: data.height, width: data.width)
    }

    /// Sliding windows that cover a volume of `size` (placed as the runtime places them), per case of the
    /// test part; the patch itself where the sizes are not known.
    func windowsPerCase() -> Double {
        guard let patch = data.preprocess.volume?.patch else { return 1 }
        guard let sizes = summary.volumeSizes, !sizes.isEmpty else { return 1 }
        let counts = sizes.map { size in
            (0..<3).reduce(1) { acc, a in acc * WindowPlacement.positions(size: max(size[a], patch[a]), patch: patch[a]).count }
        }
        return Double(counts.reduce(0, +)) / Double(counts.count)
    }
    var trainShare: Double { max(0, 1 - data.split.test - data.split.val) }

    /// Slices of a split part: counted when the slices are known, else estimated.
    func slices(_ part: SplitPart) -> Double {
        if let m = manifest { return Double(m.slices(part).count) * (part == .train || part == .trainval ? unknownThinning : 1) }
        let share: Double
        switch part {
        case .trainval: share = trainShare + data.split.val
        case .val: share = data.split.val
        case .test: share = data.split.test
        case .train: share = trainShare
        }
        return summary.totalSlices * share * (part == .train || part == .trainval ? unknownThinning : 1)
    }

    /// What keep_empty leaves of the training slices while their foreground is not known slice by slice.
    var unknownThinning: Double {
        summary.prepared ? 1 : summary.foregroundShare + (1 - summary.foregroundShare) * data.preprocess.keepEmpty
    }

    /// Whether training slice counts are exact: the slices are known, and keep_empty and
    /// stratified subsets need no foreground flags the plan does not have.
    func exactCounts(_ chain: [SubsetSpec]) -> Bool {
        guard summary.inventory != nil else { return false }
        return summary.prepared || (data.preprocess.keepEmpty >= 1 && !chain.contains { $0.level.stratify })
    }

    /// Samples a stage trains on: the training part's slices (thinned by keep_empty), then the subset chain.
    func trainingSamples(_ spec: Spec, subset: String) -> Double {
        let chain = spec.data.chain(subset)
        if let inventory = summary.inventory, let m = manifest, exactCounts(chain) {
            let levels = SubsetChain(chain.map(\.level))
            return Double(sampleCounts.count(levels.json) { m.subset(levels, of: inventory, seed: UInt64(data.split.seed)).count })
        }
        return slices(chain.first?.level.part ?? .train) * chain.reduce(1.0) { $0 * $1.level.fraction }
    }

    /// Optimiser steps of an epoch over `samples` in batches of `batch`: the runtime skips a
    /// last batch of one image when the model normalises by batch statistics.
    static func stepsPerEpoch(samples: Int, batch: Int, usesBatchNorm: Bool) -> Int {
        let rest = samples % batch
        return samples / batch + (rest >= 2 || (rest == 1 && !usesBatchNorm) ? 1 : 0)
    }

    func seconds(_ flops: Double) -> Double { flops / (throughput.gflops * 1e9) }

    func prepare() -> StageCost {
        var c = StageCost()
        if data.preprocess.volume != nil {
            // Whole volumes at the target spacing: a float32 volume per modality plus a byte per label voxel.
            let sizes = summary.volumeSizes ?? Array(repeating: data.preprocess.inputExtent, count: summary.cases)
            let voxels = sizes.reduce(0) { $0 + $1.reduce(1, *) }
            c.diskBytes = voxels * (4 * data.preprocess.planes + 1)
            // Third-order resampling (4 taps an axis) of each modality and linear resampling of each class: about 200 FLOP a voxel.
            c.flops = Double(voxels) * 200 * Double(data.preprocess.planes + data.classes.count + 1)
            c.seconds = seconds(c.flops)
            c.memoryBytes = (sizes.map { $0.reduce(1, *) }.max() ?? 0) * 4 * (2 * data.preprocess.planes + 4)
            return c
        }
        // Every slice: a float32 plane per modality plus one byte per label pixel, memory-mapped by training.
        c.diskBytes = Int(summary.totalSlices) * pixels * (4 * data.preprocess.planes + 1)
        // Reading, resampling and windowing: about 20 MFLOP a slice.
        c.flops = summary.totalSlices * 2e7
        c.seconds = seconds(c.flops)
        c.memoryBytes = summary.slicesPerCase * pixels * 4 * 4
        return c
    }

    func train(_ stage: StageSpec, model: ModelArchitecture, samples: Double, teacher: ModelArchitecture?, teacherCached: Bool) -> StageCost {
        let f = forward(model)
        let params = model.parameterCount(height: data.height, width: data.width)
        var c = StageCost()
        c.parameters = params
        c.macsPerSample = f.macs
        let epochs = Double(stage.epochs)
        // Forward, input gradient and weight gradient: 3 x 2 FLOP per MAC.
        c.flops = 6 * Double(f.macs) * samples * epochs
        let slots = stage.optimizer.algorithm.stateSlots
        let student = Self.trainingBytes(activations: f.activations, batch: stage.batch, parameters: params, optimizerSlots: slots)
        c.memoryBytes = student.resident
        var stepBytes = student.step
        if let teacher {
            let tf = forward(teacher)
            if !teacherCached { c.flops += 2 * Double(tf.macs) * samples * epochs }
            // A frozen teacher keeps no activations for backward; its weights stay resident.
            c.memoryBytes += teacher.parameterCount(height: data.height, width: data.width) * 4 + tf.activations * stage.batch * 4 / 8
            if !teacherCached { stepBytes += tf.activations * stage.batch * 4 }
        }
        // Freed buffers wait in the pool for the next step.
        c.memoryBytes += MemoryPolicy.idleBytes(forStepBytes: stepBytes)
        // Validation passes: one forward over the validation part per epoch (two patches a volume in 3D).
        c.flops += 2 * Double(f.macs) * slices(.val) * epochs * (data.preprocess.volume == nil ? 1 : 2)
        c.diskBytes = 2 * params * 4 * (1 + slots)  // last (resumable) and selected checkpoints
        c.seconds = seconds(c.flops)
        c.steps = Self.stepsPerEpoch(samples: Int(samples.rounded()), batch: stage.batch, usesBatchNorm: model.usesBatchNorm) * stage.epochs
        if let terms = stage.distill?.activeTerms { c.gatheredBytesPerStep = gatheredBytes(terms, student: model, teacher: teacher, batch: stage.batch) }
        // Measured on this machine where it has been: the steps, then each epoch's validation.
        let step = MeasuredWork(kind: .train, name: stage.model.name, model: model, extent: data.preprocess.inputExtent, classes: data.classes.count,
                                batch: stage.batch, loss: stage.loss.map(\.term), optimizer: stage.optimizer, clipGradNorm: stage.clipGradNorm,
                                distill: stage.distill?.activeTerms, teacher: teacher, teacherLive: teacher != nil && !teacherCached, augment: data.augment)
        let validated: Double = switch stage.select.split { case .val: slices(.val); case .test: slices(.test); case .last: 0 }
        let validation = validationPass(stage.model.name, model)
        c.work = validated > 0 ? [step, validation.work] : [step]
        if let perStep = throughput.steps[step.key] {
            let perPass = validated > 0 ? throughput.steps[validation.work.key] : 0
            if let perPass {
                c.seconds = Double(c.steps) * perStep + Double(stage.epochs) * validation.passes(validated) * perPass
                c.measured = true
            }
        }
        if let measured = measuredMemory(c.work, mapped: samples + validated) { c.memoryBytes = measured }
        return c
    }

    /// A training step's memory without a teacher: what stays resident (the activations kept
    /// for backward, the weights with their gradients and optimiser state), and what a step
    /// allocates and frees (the activations and their gradients), which the pool keeps idle for
    /// the next step (`MemoryPolicy.idleBytes`).
    static func trainingBytes(activations: Int, batch: Int, parameters: Int, optimizerSlots: Int) -> (resident: Int, step: Int) {
        (activations * batch * 4 + parameters * 4 * (2 + optimizerSlots), 2 * activations * batch * 4)
    }

    /// A training step's peak memory without a teacher, freed buffers included.
    static func trainingPeakBytes(_ model: ModelArchitecture, volume: [Int], batch: Int, optimizerSlots: Int) -> Int? {
        guard let f = model.forwardCost(volume: volume) else { return nil }
        let (resident, step) = trainingBytes(activations: f.activations, batch: batch, parameters: model.parameterCount(height: volume[1], width: volume[2]),
                                             optimizerSlots: optimizerSlots)
        return resident + MemoryPolicy.idleBytes(forStepBytes: step)
    }

    /// A stage's memory from its measured work: the process's own, the most any of its work
    /// added at its peak, and the pages of the prepared data it reads (memory-mapped: resident
    /// once touched); nil unless all of them were measured.
    func measuredMemory(_ work: [MeasuredWork], mapped samples: Double) -> Int? {
        guard let process = throughput.stepBytes[MeasuredSteps.processKey] else { return nil }
        let peaks = work.map { throughput.stepBytes[$0.key] }
        guard !peaks.isEmpty, !peaks.contains(nil) else { return nil }
        return process + (peaks.compactMap { $0 }.max() ?? 0) + Int(samples * Double(preparedBytesPerSample))
    }

    /// Bytes of the prepared cache per sample: a slice's planes and label, or a whole resampled volume's.
    var preparedBytesPerSample: Int {
        let perVoxel = 4 * data.preprocess.planes + 1
        if data.preprocess.volume != nil {
            let sizes = summary.volumeSizes ?? []
            return sizes.isEmpty ? pixels * perVoxel : sizes.reduce(0) { $0 + $1.reduce(1, *) } / sizes.count * perVoxel
        }
        return pixels * perVoxel
    }

    /// Validation's forward passes: 2D slices in batches of 16 (Metrics.batches), or two patches
    /// a 3D volume; `passes` of them for `n` validation samples.
    func validationPass(_ name: String, _ model: ModelArchitecture) -> (work: MeasuredWork, passes: (Double) -> Double) {
        if data.preprocess.volume != nil {
            return (.forward(name, model, extent: data.preprocess.inputExtent, classes: data.classes.count, batch: WorkBatch.volumeValidation), { $0 })
        }
        return (.forward(name, model, extent: data.preprocess.inputExtent, classes: data.classes.count, batch: WorkBatch.evaluation), { ($0 / Double(WorkBatch.evaluation)).rounded(.up) })
    }

    /// Test cases: counted when the split is known, else estimated from the share.
    var testCases: Double {
        if let m = manifest { return Double(m.parts["test"]?.patients.count ?? 0) }
        return (Double(summary.cases) * data.split.test).rounded()
    }

    /// The bytes a step of `batch` images gathers over the ranks for batch-contrastive terms
    /// (8 a value: the gather is a sum of doubles): an InfoNCE pair's query and key rows
    /// (the larger of the two taps' sizes, an upper bound on the adapted and resampled map),
    /// SupCon's sampled pixels and the labels they are drawn from.
    func gatheredBytes(_ terms: DistillationTerms, student: ModelArchitecture, teacher: ModelArchitecture?, batch: Int) -> Int {
        func size(_ manifest: TapManifest, _ name: String) -> Int {
            guard let tap = manifest[name], let extent = tap.extent(input: data.preprocess.inputExtent) else { return 0 }
            return tap.channels * extent.reduce(1, *)
        }
        var values = 0
        for p in terms.pairs {
            guard case .infoNCE = p.loss else { continue }
            let width = max(size(student.tapManifest, p.studentTap), teacher.map { size($0.tapManifest, p.teacherTap) } ?? 0)
            values += 2 * batch * width
        }
        if let sc = terms.supcon {
            let channels = student.tapManifest[sc.tap]?.channels ?? 0
            values += batch * (data.classes.classes.count + 1) * sc.samplesPerClass * channels + batch * pixels  // the classes and background
        }
        return 8 * values
    }

    /// fp16 bytes the cached teacher taps and logits take per sample.
    func teacherOutputBytesPerSample(_ teacher: ModelArchitecture, taps: [String]) -> Int {
        let manifest = teacher.tapManifest
        return taps.reduce(0) { acc, name in
            guard let tap = manifest[name], let extent = tap.extent(input: data.preprocess.inputExtent) else { return acc }
            return acc + tap.channels * extent.reduce(1, *) * 2
        }
    }

    func teacherOutputs(_ teacher: ModelArchitecture, name: String, taps: [String], samples: Double) -> StageCost {
        let tf = forward(teacher)
        var c = StageCost()
        c.parameters = teacher.parameterCount(height: data.height, width: data.width)
        c.macsPerSample = tf.macs
        c.flops = 2 * Double(tf.macs) * samples
        c.diskBytes = Int(samples) * teacherOutputBytesPerSample(teacher, taps: taps)
        // Written a batch of 8 at a time (streamed), so the cache's size never enters memory: the weights,
        // every map of a batch's forward pass (an upper bound: evaluation frees some as it goes) and the batch's input.
        c.memoryBytes = c.parameters * 4 + tf.activations * 8 * 4 + 8 * pixels * data.preprocess.planes * 4
            + MemoryPolicy.idleBytes(forStepBytes: tf.activations * 8 * 4)
        c.seconds = seconds(c.flops)
        let pass = MeasuredWork.forward(name, teacher, extent: data.preprocess.inputExtent, classes: data.classes.count, batch: WorkBatch.teacherOutputs)
        c.work = [pass]
        if let perPass = throughput.steps[pass.key] {
            c.seconds = (samples / Double(WorkBatch.teacherOutputs)).rounded(.up) * perPass
            c.measured = true
        }
        if let measured = measuredMemory(c.work, mapped: samples) { c.memoryBytes = measured }
        return c
    }

    /// Cache the teacher's outputs when a cache saves teacher passes and fits the disk budget.
    func cacheDecision(teacher: ModelArchitecture, taps: [String], samples: Double, epochs: Int) -> (cache: Bool, reason: String) {
        let bytes = Int(samples) * teacherOutputBytesPerSample(teacher, taps: taps)
        let perEpoch = 2 * Double(forward(teacher).macs) * samples
        if epochs <= 1 {
            return (false, "recompute: one epoch runs the teacher once anyway")
        }
        if bytes > cacheBudgetBytes {
            return (false, "recompute: a cache would take \(Format.bytes(bytes)), over the \(Format.bytes(cacheBudgetBytes)) budget")
        }
        let saved = perEpoch * Double(epochs - 1)
        return (true, "cache in fp16: \(Format.bytes(bytes)) saves \(epochs - 1) teacher passes (\(Format.flops(saved)), ~\(Format.duration(seconds(saved))))")
    }

    /// Reading a weight file: no arithmetic, the weights held twice (file and network), one copy left on disk.
    func pretrained(_ model: ModelArchitecture) -> StageCost {
        var c = StageCost()
        c.parameters = model.parameterCount(height: data.height, width: data.width)
        let bytes = model.weightManifest(height: data.height, width: data.width).reduce(0) { $0 + 4 * $1.count }
        c.memoryBytes = 2 * bytes
        c.diskBytes = bytes
        return c
    }

    /// `mirror`: the axes 3D windows are also predicted mirrored along (2^axes passes a window).
    func evaluate(_ model: ModelArchitecture, name: String, mirror: Int) -> StageCost {
        let f = forward(model)
        let samples = slices(.test)
        var c = StageCost()
        c.parameters = model.parameterCount(height: data.height, width: data.width)
        c.macsPerSample = f.macs
        // 3D: every window of every test volume (and the linear resampling back, small beside it).
        let windows = windowsPerCase()
        c.flops = 2 * Double(f.macs) * samples * windows
        c.diskBytes = Int(samples * windows) * pixels  // one byte per predicted label voxel (the windows overlap: an upper bound)
        let volume = data.preprocess.volume != nil
        var wholeVolume = 0
        if volume {
            // Sliding windows hold the whole resampled volume (its channels), the weighted logit sums and the
            // weights over it, and the logits resampled back to the patient's grid (about as many voxels).
            let largest = summary.volumeSizes?.map { $0.reduce(1, *) }.max() ?? pixels
            let heads = model.heads.first { $0.name == "segmentation" }?.channels ?? 1
            wholeVolume = largest * 4 * (data.preprocess.channels + 2 * heads + 1)
        }
        c.memoryBytes = c.parameters * 4 + f.activations * 4 + MemoryPolicy.idleBytes(forStepBytes: f.activations * 4) + wholeVolume
        c.flops *= Double(1 << mirror)
        c.seconds = seconds(c.flops)
        // Measured: 2D, the test slices in batches; 3D, every window of every case, one at a time.
        let pass = MeasuredWork.forward(name, model, extent: data.preprocess.inputExtent, classes: data.classes.count, batch: volume ? 1 : WorkBatch.evaluation)
        c.work = [pass]
        if let perPass = throughput.steps[pass.key] {
            // A forward pass's time grows with its batch: a case's last, part-filled batch counts as its share of one.
            let passes = volume ? testCases * windows * Double(1 << mirror) : samples / Double(WorkBatch.evaluation)
            c.seconds = passes * perPass
            c.measured = true
        }
        if let measured = measuredMemory(c.work, mapped: samples) { c.memoryBytes = measured + wholeVolume }
        return c
    }
}

/// Human units for plans and reports.
public enum Format {
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), i = 0
        while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : "\(round1(v)) \(units[i])"
    }

    public static func flops(_ f: Double) -> String {
        let units = [(1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP")]
        for (scale, name) in units where f >= scale { return "\(round1(f / scale)) \(name)" }
        return "\(Int(f)) FLOP"
    }

    public static func duration(_ s: Double) -> String {
        if s < 60 { return "\(Int(s.rounded()))s" }
        if s < 3600 { return "\(Int(s / 60))m \(Int(s.truncatingRemainder(dividingBy: 60)))s" }
        if s < 86400 { return "\(Int(s / 3600))h \(Int(s.truncatingRemainder(dividingBy: 3600) / 60))m" }
        return "\(Int(s / 86400))d \(Int(s.truncatingRemainder(dividingBy: 86400) / 3600))h"
    }

    public static func count(_ n: Int) -> String {
        n >= 1_000_000 ? "\(round1(Double(n) / 1e6))M" : n >= 1000 ? "\(round1(Double(n) / 1e3))k" : "\(n)"
    }

    static func round1(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }
}

/// Counts remembered by key, shared by the copies of one cost model.
private final class SampleCounts: @unchecked Sendable {
    private var counts: [JSON: Int] = [:]
    private let lock = NSLock()

    func count(_ key: JSON, _ make: () -> Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        if let known = counts[key] { return known }
        let value = make()
        counts[key] = value
        return value
    }
}
