import Architecture
import Foundation
import Medical
import NN
import Plan
import StageConfig
import Tensor

/// Times a `MeasuredWork` on this machine through the code a stage runs: the network built
/// as training builds it, a training step of its objective and optimiser (a live teacher's
/// forward pass and the augmentation included), or a forward pass in evaluation mode, on
/// random inputs and labels of the work's shape. One warm-up call, then at least three timed
/// calls and 1.5 s of them (up to ten while they scatter); the median.
/// The memory is measured alike: the resident memory its network, inputs and calls add at their
/// peak (the idle buffer pool emptied first), what a stage of that work needs above the process.
public enum StepTimer {
    public static func seconds(_ work: MeasuredWork) throws -> Double { try measure(work).seconds }

    public static func measure(_ work: MeasuredWork) throws -> MeasuredSteps.Measurement {
        BufferPool.releaseIdle()
        let resets = PeakMemory.reset(), before = PeakMemory.currentBytes()
        let call = try prepare(work)
        try call()
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        func settled() -> Bool {
            // Three calls and 1.5 s at least; while the last three lie more than 25% apart, up to ten.
            guard times.count >= 3, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 >= 1.5 else { return false }
            let last = times.suffix(3)
            return times.count >= 10 || (last.max() ?? 0) <= 1.25 * (last.min() ?? 0)
        }
        while !settled() {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try call()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        var added: Int?
        if resets, let peak = PeakMemory.peakBytes(), let before { added = max(0, peak - before) }
        return MeasuredSteps.Measurement(seconds: times.sorted()[times.count / 2], peakBytes: added)
    }

    static func build(_ arch: ModelArchitecture, extent: [Int], seed: UInt64) -> SegmentationModel {
        ModelBuilder.build(arch, height: extent[extent.count - 2], width: extent[extent.count - 1], seed: seed)
    }

    /// The call to time, with its inputs made once.
    static func prepare(_ work: MeasuredWork) throws -> () throws -> Void {
        var rng = RNG(seed: 0)
        let shape = [work.batch, work.model.inChannels] + work.extent
        let images = rng.uniformTensor(shape, 0, 1)
        // A fifth of the voxels foreground, of every class alike.
        let classes = max(1, work.classes)
        let labels = Tensor(shape: [work.batch, 1] + work.extent, values: (0..<(work.batch * work.extent.reduce(1, *))).map { _ in
            rng.uniform() > 0.8 ? Float(1 + Int(rng.uniform() * Float(classes)) % classes) : 0
        })
        let model = build(work.model, extent: work.extent, seed: 1)
        guard work.kind == .train, let settings = work.optimizer else {
            let x = Variable(images)
            return { _ = Tape.noGrad { model.forward(x, training: false, taps: []) } }
        }
        var adapterRNG = RNG(seed: 2)
        let objective = try DistillationObjective(supervised: work.loss, distillation: work.distill, student: work.model, teacher: work.teacher, rng: &adapterRNG)
        let named = model.store.names.compactMap { model.store.parameters[$0] } + objective.trainedParameters.map(\.1)
        let step = TrainingStep(model: model, objective: objective, optimizer: Optimizer(settings, parameters: named), clipGradNorm: work.clipGradNorm.map(Float.init))
        let teacher = work.teacher.map { build($0, extent: work.extent, seed: 3) }
        let taps = objective.teacherTaps
        func teacherMaps(_ x: Variable) -> [String: Variable] {
            guard let teacher, !taps.isEmpty else { return [:] }
            let out = Tape.noGrad { teacher.forward(x, training: false, taps: Set(taps)) }
            var maps: [String: Variable] = [:]
            for n in taps { maps[n] = out.taps[n] }
            return maps
        }
        // A cached teacher's maps are read, not computed: made once here.
        let cached = work.teacherLive ? nil : teacherMaps(Variable(images))
        let augmenter = work.augment.map(Augmenter.init)
        var calls: UInt64 = 0
        return {
            calls += 1
            var (x, y) = (images, labels)
            if let augmenter { (x, y) = augmenter.apply(images: x, labels: y, seed: calls) }
            let input = Variable(x)
            var stepRNG = RNG(seed: calls)
            _ = try step.run(images: input, labels: y, teacher: cached ?? teacherMaps(input), rng: &stepRNG)
        }
    }
}
