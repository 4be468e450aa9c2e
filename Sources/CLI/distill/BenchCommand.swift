import ArgumentParser
import Foundation
import Benchmark
import Interchange
import NN
import Storage
import Tensor

/// `distill bench`: the runtime's speed on the rows of shared/reference/perf.md.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the study's networks (the rows of shared/reference/perf.md): ms/step, images/s, GFLOP/s, peak RSS.",
        discussion: "Without --row every row runs in its own process, so that peak RSS is per row.")

    @Option(name: .long, help: "One row: \(RuntimeBenchmark.rows.map(\.name).joined(separator: ", ")).")
    var row: String?

    @OptionGroup var threading: ThreadsOption
    var threads: Int { threading.threads }

    @Option(name: .long, help: "Override the number of timed steps.")
    var repeats: Int?

    @Flag(name: .long, help: "Time the data path instead: preprocessing throughput and loading a batch of 16 slices.")
    var data = false

    @Option(name: .long, help: ArgumentHelp("Export the study's S1 and S2 to DIR/s1.onnx and DIR/s2.onnx and time their forward pass on one 256x256 slice "
                                            + "(`make bench-onnx` times the same files in ONNX Runtime).", valueName: "dir"))
    var onnx: String?

    @Flag(name: .long, help: "Time every convolution of T1, S1, S2 and the 3D S3D and T3D (only the network of --row, if given) pass by pass (forward, input gradient, weight gradient) with each algorithm (im2col + sgemm, direct), and show which one the runtime runs.")
    var conv = false

    @Flag(name: .long, help: "Print the CPU, its ISA extensions and the BLAS kernels in use, and exit.")
    var machine = false

    func validate() throws {
        if let row, !RuntimeBenchmark.rows.contains(where: { $0.name == row }) {
            throw ValidationError("unknown row '\(row)'; rows: \(RuntimeBenchmark.rows.map(\.name).joined(separator: ", "))")
        }
        if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        if machine {
            threading.apply()
            print(Machine.current.description)
            return
        }
        if let onnx {
            threading.apply()
            try FileManager.default.createDirectory(atPath: onnx, withIntermediateDirectories: true)
            print("network  params   Distillery forward, 1x3x256x256 (\(threads) threads, median of 50)")
            for (name, arch) in [("s1", RuntimeBenchmark.s1), ("s2", RuntimeBenchmark.s2)] {
                let model = ModelBuilder.build(arch, height: 256, width: 256, seed: 1)
                var rng = RNG(seed: 5)
                let x = rng.uniformTensor([1, 3, 256, 256], 0, 1)
                let result = try ONNXExport.export(model, head: "segmentation", input: x, graphName: name, metadata: [], producerVersion: "bench")
                try result.model.write(to: URL(fileURLWithPath: "\(onnx)/\(name).onnx"))
                var times: [Double] = []
                for i in 0..<60 {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = Tape.noGrad { model.forward(Variable(x), training: false, taps: []) }
                    if i >= 10 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
                }
                print(String(format: "%-8@ %6d   %.2f ms", name as NSString, model.store.parameterCount, times.sorted()[times.count / 2]))
            }
            return
        }
        if conv {
            threading.apply()
            printConvolutionTimings()
            return
        }
        if data {
            threading.apply()
            let r = try DataBenchmark.run()
            print(String(format: "preprocessing: %.0f slices/s (%d slices of 256x256 from 8 phantom volumes)", r.slicesPerSecond, r.slices))
            print(String(format: "batch of 16 slices, 3x256x256, from the memory-mapped cache: %.2f ms (median of 20)", r.batchMilliseconds))
            if let real = try DataBenchmark.realVolume() {
                print(String(format: "preprocessing a real volume (mricron ch2, 181x217x181): %.0f slices/s (%d slices)", real.slicesPerSecond, real.slices))
            }
            let scan = try DataBenchmark.headerScan()
            print(String(format: "header scan (distill check and plan): %d cases in %.2f s, %.2f ms a case (image and label, gzipped NIfTI-1)",
                         scan.cases, scan.seconds, scan.seconds * 1000 / Double(scan.cases)))
            return
        }
        if let row, var r = RuntimeBenchmark.rows.first(where: { $0.name == row }) {
            threading.apply()
            if let repeats { r.repeats = repeats }
            let result = try RuntimeBenchmark.run(r)
            print(String(format: "%@\t%.1f\t%.2f\t%.1f\t%.0f\t%.1f", r.name, result.median, result.imagesPerSecond, result.gflops,
                         RuntimeBenchmark.peakRSSMiB, result.gflopPerStep))
            return
        }
        print(Machine.current.description)
        // The share of this machine's sgemm peak each row reaches: the peak measured here, now, on the same threads.
        let peak = GEMMRate.measure(GEMMRate.Shape(m: 2048, n: 2048, k: 2048, what: "square 2048"), threads: threads)
        print(String(format: "sgemm peak: %.0f GFLOP/s (2048^3, %d threads, median of 5)", peak, threads))
        print("row        batch  GFLOP/step    ms/step   images/s    GFLOP/s  of peak   peak RSS MiB   (\(threads) threads, median)")
        for r in RuntimeBenchmark.rows {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: FilePath.absolute(CommandLine.arguments[0]))
            p.arguments = ["bench", "--row", r.name, "--threads", String(threads)] + (repeats.map { ["--repeats", String($0)] } ?? [])
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let f = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\t").map(String.init)
            guard p.terminationStatus == 0, f.count == 6 else {
                print("\(r.name): failed (exit \(p.terminationStatus))")
                continue
            }
            let share = (Double(f[3]) ?? 0) / peak * 100
            print(String(format: "%-10@ %5d  %10@  %9@  %9@  %9@  %6.0f%%  %13@", r.name as NSString, r.batch, f[5] as NSString, f[1] as NSString,
                         f[2] as NSString, f[3] as NSString, share, f[4] as NSString))
        }
    }

    private func printConvolutionTimings() {
        print(Machine.current.description)
        print("direct kernel: \(DirectConvolution.lanes.map { "\(DirectConvolution.isa(lanes: $0)), \($0) floats a vector" } ?? "not available on this CPU (needs AVX2 and FMA)")")
        print("ms per pass over the batch (median of \(repeats ?? 3)), GFLOP/s in brackets; * marks what the runtime runs (\(threads) threads)")
        print("net  layer (n c>o size k)         x  pass            gemm                direct              winograd")
        let volume = RuntimeBenchmark.patch3D[0]
        let networks = [("t1", RuntimeBenchmark.t1, 8, 256), ("s1", RuntimeBenchmark.s1, 16, 256), ("s2", RuntimeBenchmark.s2, 16, 256),
                        ("s3d", RuntimeBenchmark.s3d, 2, volume), ("t3d", RuntimeBenchmark.t3d, 2, volume)]
        for (name, arch, batch, size) in networks where row.map({ $0.hasPrefix(name) }) ?? true {
            for layer in ConvolutionBenchmark.run(arch, batch: batch, size: size, repeats: repeats ?? 3) {
                let shape = layer.geometry.description
                for t in layer.timings {
                    func cell(_ a: ConvAlgorithm) -> String {
                        guard let ms = t.milliseconds[a] else { return "-" }
                        return String(format: "%@%.1f (%.0f)", t.chosen == a ? "*" : " ", ms, t.gflop / max(ms, 1e-6) * 1000)
                    }
                    print(String(format: "%-4@ %-28@ %2d  %-14@ %-19@ %-19@ %@", name as NSString, shape as NSString, layer.count, t.pass.rawValue as NSString,
                                 cell(.gemm) as NSString, cell(.direct) as NSString, cell(.winograd) as NSString))
                }
            }
        }
    }
}
