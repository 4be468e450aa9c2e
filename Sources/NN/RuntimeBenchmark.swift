import Architecture
import Foundation
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
        Row(name: "kd_t1_s1", what: "T1 forward + S1 KD train step (3 adapters, InfoNCE x3, binary KL, Dice, RMSprop)", batch: 8, warmup: 1, repeats: 3),
        Row(name: "kd_t1_s1_cached", what: "the same KD step reading T1's taps from the fp16 teacher-output cache", batch: 8, warmup: 1, repeats: 5),
    ]

    public struct Result: Sendable {
        public var row: Row
        public var milliseconds: [Double]
        public var gflopPerStep: Double
        public var median: Double { milliseconds.sorted()[milliseconds.count / 2] }
        public var imagesPerSecond: Double { Double(row.batch) / (median / 1000) }
        public var gflops: Double { gflopPerStep / (median / 1000) }
    }

    static let segmentation = [Head(name: "segmentation", channels: 1)]
    public static let s1 = ModelArchitecture.unet(UNetArchitecture(inChannels: 3, widths: [16, 32], bottleneck: 64, convsPerBlock: 1, heads: segmentation, sharedDecoder: true))
    public static let s2 = ModelArchitecture.unet(UNetArchitecture(inChannels: 3, widths: [32, 64], bottleneck: 128, convsPerBlock: 1, heads: segmentation, sharedDecoder: true))
    public static let t1 = ModelArchitecture.unet(UNetArchitecture(inChannels: 3, widths: [64, 128, 256, 512], bottleneck: 1024, convsPerBlock: 2,
                                                                   heads: segmentation + [Head(name: "reconstruction", channels: 3)], sharedDecoder: false))

    public static func run(_ row: Row, size: Int = 256) -> Result {
        var rng = RNG(seed: 0)
        let x = Variable(rng.uniformTensor([row.batch, 3, size, size], 0, 1))
        let label = Tensor(shape: [row.batch, 1, size, size], values: (0..<(row.batch * size * size)).map { _ in rng.uniform() > 0.8 ? 1 : 0 })
        func macs(_ a: ModelArchitecture) -> Double { Double(a.forwardCost(height: size, width: size).macs) }
        let step: () -> Void
        let gflop: Double
        switch row.name {
        case "s1_fwd", "s2_fwd", "t1_fwd":
            let arch = row.name == "s1_fwd" ? s1 : row.name == "s2_fwd" ? s2 : t1
            let model = ModelBuilder.build(arch, seed: 1)
            step = { _ = Tape.noGrad { model.forward(x, training: false) } }
            gflop = 2 * macs(arch) * Double(row.batch) / 1e9
        case "s1_train", "s2_train":
            let arch = row.name == "s1_train" ? s1 : s2
            let model = ModelBuilder.build(arch, seed: 1)
            let opt = Optimizer(.adamw(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01), lr: 1e-3, parameters: model.store.ordered)
            step = {
                let tape = Tape()
                let loss = tape.record { Loss.dice(model.forward(x, training: true).logits["segmentation"] ?? x, label) }
                tape.backward(loss)
                opt.update()
                opt.zeroGrad()
            }
            gflop = 6 * macs(arch) * Double(row.batch) / 1e9
        default:
            let cached = row.name == "kd_t1_s1_cached"
            let teacher = ModelBuilder.build(t1, seed: 1), student = ModelBuilder.build(s1, seed: 2)
            // The cache: the teacher's taps for this batch, written once in fp16 and read back every step.
            let cachePath = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-cache-\(getpid()).safetensors").path
            var cacheFile: SafetensorsFile?
            let tapNames = ["pool.1", "bottleneck", "decoder.segmentation.3", "logits.segmentation"]
            if cached {
                let t = Tape.noGrad { teacher.forward(x, training: false) }
                var maps: [String: Tensor] = [:]
                for n in tapNames { maps[n] = t.taps[n]?.value }
                try? SafetensorsFile.write(maps, to: cachePath, half: true)
                cacheFile = try? SafetensorsFile(path: cachePath)
                try? FileManager.default.removeItem(atPath: cachePath)  // stays mapped
            }
            var arng = RNG(seed: 3)
            func adapter(_ cin: Int, _ cout: Int) -> (Variable, Variable) {
                (Variable(Initializer.uniform([cout, cin, 1, 1], fanIn: cin, rng: &arng), requiresGrad: true),
                 Variable(Initializer.uniform([cout], fanIn: cin, rng: &arng), requiresGrad: true))
            }
            let ee = adapter(128, 32), bb = adapter(1024, 64), dd = adapter(16, 64)
            let opt = Optimizer(.rmsprop(alpha: 0.99, eps: 1e-8, momentum: 0, centered: false, weightDecay: 0), lr: 1e-2,
                                parameters: student.store.ordered + [ee.0, ee.1, bb.0, bb.1, dd.0, dd.1])
            let rows = Array(0..<row.batch)
            step = {
                var t = ModelOutput()
                if let cacheFile {
                    for n in tapNames { t.taps[n] = (try? cacheFile.tensor(n, rows: rows)).map { Variable($0) } }
                    t.logits["segmentation"] = t.taps["logits.segmentation"]
                } else {
                    // As the trainer does: keep only the teacher taps the terms read.
                    let full = Tape.noGrad { teacher.forward(x, training: false) }
                    for n in tapNames { t.taps[n] = full.taps[n] }
                    t.logits["segmentation"] = full.logits["segmentation"]
                }
                let tape = Tape()
                let loss = tape.record { () -> Variable in
                    let s = student.forward(x, training: true)
                    guard let sl = s.logits["segmentation"], let tl = t.logits["segmentation"], let sp = s.taps["pool.1"], let tp = t.taps["pool.1"],
                          let sb = s.taps["bottleneck"], let tb = t.taps["bottleneck"], let sd = s.taps["decoder.1"],
                          let td = t.taps["decoder.segmentation.3"] else { return x }
                    let terms: [(Variable, Float)] = [
                        (Loss.dice(sl, label), 0.4),
                        (Loss.infoNCE(sb, F.conv2d(F.resizeBilinear(tb, height: sb.shape[2], width: sb.shape[3]), bb.0, bb.1), temperature: 0.4), 0.2),
                        (Loss.binaryKL(sl, tl, temperature: 4), 0.2),
                        (Loss.infoNCE(sp, F.conv2d(tp, ee.0, ee.1), temperature: 0.4), 0.1),
                        (Loss.infoNCE(F.conv2d(sd, dd.0, dd.1), td, temperature: 0.4), 0.1),
                    ]
                    return F.weightedSum(terms)
                }
                tape.backward(loss)
                opt.update()
                opt.zeroGrad()
            }
            gflop = ((cached ? 0 : 2 * macs(t1)) + 6 * macs(s1)) * Double(row.batch) / 1e9
        }
        for _ in 0..<row.warmup { step() }
        var times: [Double] = []
        for _ in 0..<row.repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            step()
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
