import Architecture
import Foundation
import Medical
import NN
import StageConfig
import Tensor

/// The rows of ../shared/reference/perf.md, timed on this runtime.
///
/// Each row builds the study's network, runs warm-up steps, then times steps and
/// reports the median. GFLOP counts convolution MACs x 2 (x 6 for a training
/// step), as perf.md does.
public enum RuntimeBenchmark {
    public struct Row: Sendable {
        public var name: String
        public var what: String
        public var batch: Int
        public var warmup: Int
        public var repeats: Int
    }

    public static let rows: [Row] = [
        Row(name: "s1_fwd", what: "S1 forward, eval", batch: 16, warmup: 3, repeats: 10),
        Row(name: "s1_train", what: "S1 forward + Dice + backward + AdamW", batch: 16, warmup: 3, repeats: 10),
        Row(name: "s2_fwd", what: "S2 forward, eval", batch: 16, warmup: 3, repeats: 10),
        Row(name: "s2_train", what: "S2 forward + Dice + backward + AdamW", batch: 16, warmup: 3, repeats: 10),
        Row(name: "t1_fwd", what: "T1 forward (both heads), eval, no grad", batch: 8, warmup: 1, repeats: 3),
        Row(name: "t1_train", what: "T1 forward + Dice + MSE reconstruction + backward + AdamW", batch: 8, warmup: 1, repeats: 3),
        Row(name: "kd_t1_s1", what: "T1 forward + S1 KD train step (3 adapters, InfoNCE x3, binary KL, Dice, RMSprop)", batch: 8, warmup: 1, repeats: 3),
        Row(name: "kd_t1_s1_cached", what: "the same KD step reading T1's taps from the fp16 teacher-output cache", batch: 8, warmup: 1, repeats: 5),
        Row(name: "s3d_fwd", what: "3D student (S1's widths over volumes) forward, eval, 64^3 patches", batch: 2, warmup: 1, repeats: 5),
        Row(name: "s3d_train", what: "3D student forward + Dice + backward + AdamW, 64^3 patches", batch: 2, warmup: 1, repeats: 5),
        Row(name: "t3d_fwd", what: "3D teacher (nnU-Net 3d_fullres widths 32-256, bottleneck 320) forward, eval, 64^3 patches", batch: 2, warmup: 1, repeats: 3),
        Row(name: "t3d_train", what: "3D teacher forward + Dice + backward + AdamW, 64^3 patches", batch: 2, warmup: 1, repeats: 3),
        Row(name: "augment", what: "augmenting an S1 training batch, every transform drawn for every image (the worst case)", batch: 16, warmup: 2, repeats: 10),
    ]

    /// Every transform of the augmentation language at its declared defaults, certain (p = 1):
    /// the most a batch can cost.
    static func everyTransform() throws -> AugmentationSettings {
        var transforms: [String: JSON] = [:]
        for field in AugmentationSettings.declaration.fields {
            guard case .object(let transform) = field.type, case .object(var settings) = transform.canonicalDefaults else { continue }
            settings["p"] = .number(1)
            transforms[field.key] = .object(settings)
        }
        return try AugmentationSettings(json: .object(transforms), at: "augment")
    }

    public struct Result: Sendable {
        public var row: Row
        public var milliseconds: [Double]
        public var gflopPerStep: Double
        public var median: Double { milliseconds.sorted()[milliseconds.count / 2] }
        public var imagesPerSecond: Double { Double(row.batch) / (median / 1000) }
        public var gflops: Double { gflopPerStep / (median / 1000) }
    }

    /// The study's networks (THESIS.md), as specs/thesis/study.yaml declares them.
    static func unet(_ widths: [Int], bottleneck: Int, convs: Int, heads: [Head], shared: Bool) -> ModelArchitecture {
        .unet(UNetArchitecture(inChannels: 3, widths: widths, bottleneck: bottleneck, convsPerBlock: convs, norm: .batch, groups: 8,
                               upsampling: .transpose, heads: heads, sharedDecoder: shared))
    }
    static let segmentation = [Head(name: "segmentation", channels: 1)]
    public static let s1 = unet([16, 32], bottleneck: 64, convs: 1, heads: segmentation, shared: true)
    public static let s2 = unet([32, 64], bottleneck: 128, convs: 1, heads: segmentation, shared: true)
    public static let t1 = unet([64, 128, 256, 512], bottleneck: 1024, convs: 2,
                                heads: segmentation + [Head(name: "reconstruction", channels: 3)], shared: false)

    /// The 3D networks (issue 25): nnU-Net's 3d_fullres layout (instance norm, 3x3x3 kernels,
    /// 2x2x2 pooling, transposed-convolution up-sampling) on one-channel CT patches of `patch3D`.
    static func unet3D(_ widths: [Int], bottleneck: Int, convs: Int) -> ModelArchitecture {
        .unet(UNetArchitecture(inChannels: 1, widths: widths, bottleneck: bottleneck, convsPerBlock: convs, norm: .instance, groups: 1,
                               upsampling: .transpose, heads: segmentation, sharedDecoder: true,
                               volume: VolumeLevels(kernels: Array(repeating: [3, 3, 3], count: widths.count + 1),
                                                    pools: Array(repeating: [2, 2, 2], count: widths.count))))
    }

    public static let s3d = unet3D([16, 32], bottleneck: 64, convs: 1)
    public static let t3d = unet3D([32, 64, 128, 256], bottleneck: 320, convs: 2)
    public static let patch3D = [64, 64, 64]

    /// A 3D row: forward (eval, no grad) or a training step (Dice, AdamW as the 2D rows).
    static func runVolume(_ row: Row) throws -> (step: () throws -> Void, gflop: Double) {
        let arch = row.name.hasPrefix("s3d") ? s3d : t3d
        var rng = RNG(seed: 0)
        let x = Variable(rng.uniformTensor([row.batch, 1] + patch3D, 0, 1))
        let label = Tensor(shape: [row.batch, 1] + patch3D, values: (0..<(row.batch * patch3D.reduce(1, *))).map { _ in rng.uniform() > 0.8 ? 1 : 0 })
        let macs = Double(arch.forwardCost(volume: patch3D)?.macs ?? 0) * Double(row.batch)
        let model = ModelBuilder.build(arch, height: patch3D[1], width: patch3D[2], seed: 1)
        if row.name.hasSuffix("_fwd") {
            return ({ _ = Tape.noGrad { model.forward(x, training: false, taps: []) } }, 2 * macs / 1e9)
        }
        return (try trainingStep(model, arch, images: x, labels: label), 6 * macs / 1e9)
    }

    /// One supervised training step as torch_bench.py times it: Dice on the segmentation
    /// head (plus `extra` terms), backward, AdamW (0.9, 0.95), weight decay 0.05.
    static func trainingStep(_ model: SegmentationModel, _ arch: ModelArchitecture, images x: Variable, labels: Tensor,
                             extra: [SupervisedTerm] = []) throws -> () throws -> Void {
        let opt = Optimizer(.adamw(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.05), lr: 1.5e-4, parameters: model.store.ordered)
        var rng = RNG(seed: 3)
        let objective = try DistillationObjective(supervised: [SupervisedTerm(head: "segmentation", weight: 1, loss: .dice(smooth: 1))] + extra,
                                                  distillation: nil, student: arch, teacher: nil, rng: &rng)
        let training = TrainingStep(model: model, objective: objective, optimizer: opt)
        return {
            var stepRNG = RNG(seed: 0)
            try training.run(images: x, labels: labels, rng: &stepRNG)
        }
    }

    /// The study's T1 -> S1 objective (THESIS.md): Dice 0.4, B-B 0.2, PMD 0.2, E-E 0.1, D-D 0.1,
    /// InfoNCE at temperature 0.4 with trained adapters, Bernoulli KL at T = 4.
    public static let kdTerms: (supervised: [SupervisedTerm], distillation: DistillationTerms) = {
        let teacherSide = Adapter.conv1x1(side: .teacher, trainable: true, reinitEachStep: false)
        let infoNCE = FeatureLoss.infoNCE(temperature: 0.4)
        return ([SupervisedTerm(head: "segmentation", weight: 0.4, loss: .dice(smooth: 1))],
                DistillationTerms(pairs: [
                    TapPair(name: "ee", teacherTap: "pool.1", studentTap: "pool.1", adapter: teacherSide, resample: .none, loss: infoNCE, weight: 0.1),
                    TapPair(name: "bb", teacherTap: "bottleneck", studentTap: "bottleneck", adapter: teacherSide, resample: .bilinear, loss: infoNCE, weight: 0.2),
                    TapPair(name: "dd", teacherTap: "decoder.segmentation.3", studentTap: "decoder.1",
                            adapter: .conv1x1(side: .student, trainable: true, reinitEachStep: false), resample: .none, loss: infoNCE, weight: 0.1),
                ], logits: LogitTerm(head: "segmentation", temperature: 4, weight: 0.2, loss: .binaryKL), supcon: nil))
    }()

    public static func run(_ row: Row, size: Int = 256) throws -> Result {
        if row.name.hasPrefix("s3d") || row.name.hasPrefix("t3d") {
            let (step, gflop) = try runVolume(row)
            return try time(row, gflop: gflop, step)
        }
        var rng = RNG(seed: 0)
        let x = Variable(rng.uniformTensor([row.batch, 3, size, size], 0, 1))
        let label = Tensor(shape: [row.batch, 1, size, size], values: (0..<(row.batch * size * size)).map { _ in rng.uniform() > 0.8 ? 1 : 0 })
        func macs(_ a: ModelArchitecture) -> Double { Double(a.forwardCost(height: size, width: size).macs) }
        let step: () throws -> Void
        let gflop: Double
        switch row.name {
        case "s1_fwd", "s2_fwd", "t1_fwd":
            let arch = row.name == "s1_fwd" ? s1 : row.name == "s2_fwd" ? s2 : t1
            let model = ModelBuilder.build(arch, height: size, width: size, seed: 1)
            step = { _ = Tape.noGrad { model.forward(x, training: false, taps: []) } }
            gflop = 2 * macs(arch) * Double(row.batch) / 1e9
        case "s1_train", "s2_train", "t1_train":
            // As torch_bench.py: AdamW (0.9, 0.95), weight decay 0.05; T1 adds the MSE reconstruction of its input.
            let arch = row.name == "s1_train" ? s1 : row.name == "s2_train" ? s2 : t1
            let model = ModelBuilder.build(arch, height: size, width: size, seed: 1)
            let reconstruction = row.name == "t1_train" ? [SupervisedTerm(head: "reconstruction", weight: 1, loss: .mse(target: .input))] : []
            step = try trainingStep(model, arch, images: x, labels: label, extra: reconstruction)
            gflop = 6 * macs(arch) * Double(row.batch) / 1e9
        case "augment":
            let augmenter = Augmenter(try everyTransform())
            var seed: UInt64 = 0
            step = {
                seed += 1
                _ = augmenter.apply(images: x.value, labels: label, seed: seed)
            }
            gflop = 0
        default:
            let cached = row.name == "kd_t1_s1_cached"
            let teacher = ModelBuilder.build(t1, height: size, width: size, seed: 1)
            let student = ModelBuilder.build(s1, height: size, width: size, seed: 2)
            var arng = RNG(seed: 3)
            let objective = try DistillationObjective(supervised: kdTerms.supervised, distillation: kdTerms.distillation,
                                                      student: s1, teacher: t1, rng: &arng)
            let tapNames = objective.teacherTaps
            // The cache: the teacher's taps for this batch, written once in fp16 and read back every step.
            var cacheFile: SafetensorsFile?
            if cached {
                let cachePath = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-cache-\(getpid()).safetensors").path
                let t = Tape.noGrad { teacher.forward(x, training: false, taps: Set(tapNames)) }
                var maps: [String: Tensor] = [:]
                for n in tapNames { maps[n] = t.taps[n]?.value }
                try SafetensorsFile.write(maps, to: cachePath, half: true)
                cacheFile = try SafetensorsFile(path: cachePath)
                try? FileManager.default.removeItem(atPath: cachePath)  // stays mapped
            }
            let opt = Optimizer(.rmsprop(alpha: 0.99, eps: 1e-8, momentum: 0, centered: false, weightDecay: 0), lr: 1e-2,
                                parameters: student.store.ordered + objective.trainedParameters.map(\.1))
            let rows = Array(0..<row.batch)
            let training = TrainingStep(model: student, objective: objective, optimizer: opt)
            step = {
                var t: [String: Variable] = [:]
                if let cacheFile {
                    for n in tapNames { t[n] = Variable(try cacheFile.tensor(n, rows: rows)) }
                } else {
                    // As the trainer does: keep only the teacher taps the terms read.
                    let full = Tape.noGrad { teacher.forward(x, training: false, taps: Set(tapNames)) }
                    for n in tapNames { t[n] = full.taps[n] }
                }
                var stepRNG = RNG(seed: 0)
                try training.run(images: x, labels: label, teacher: t, rng: &stepRNG)
            }
            gflop = ((cached ? 0 : 2 * macs(t1)) + 6 * macs(s1)) * Double(row.batch) / 1e9
        }
        return try time(row, gflop: gflop, step)
    }

    static func time(_ row: Row, gflop: Double, _ step: () throws -> Void) throws -> Result {
        for _ in 0..<row.warmup { try step() }
        var times: [Double] = []
        for _ in 0..<row.repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            try step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return Result(row: row, milliseconds: times, gflopPerStep: gflop)
    }

    /// Peak resident memory of this process so far, in MiB.
    public static var peakRSSMiB: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
