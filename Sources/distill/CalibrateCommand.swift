import ArgumentParser
import COpenBLAS
import Dispatch
import Foundation
import Plan

/// `distill calibrate`: measure this machine's sgemm rate for plan time estimates.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Measure this machine's matrix-multiply throughput and store it for time estimates.")

    @Option(name: .long, help: "BLAS threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .long, help: "Measure and print, but do not store.")
    var dryRun = false

    func validate() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        openblas_set_num_threads(Int32(threads))
        // Convolution-shaped products (im2col of 3x3 layers of the study's networks) and a square one.
        let shapes: [(m: Int, n: Int, k: Int, what: String)] = [
            (64, 16384, 576, "64-ch 3x3 conv at 128x128"),
            (256, 4096, 2304, "256-ch 3x3 conv at 64x64"),
            (1024, 1024, 1024, "square 1024"),
        ]
        var rates: [Double] = []
        for s in shapes {
            let rate = Self.measure(m: s.m, n: s.n, k: s.k)
            rates.append(rate)
            print("\(s.what): \(Int(rate.rounded())) GFLOP/s")
        }
        let sgemm = rates.sorted()[rates.count / 2]
        print("sgemm (median of shapes): \(Int(sgemm.rounded())) GFLOP/s at \(threads) thread\(threads == 1 ? "" : "s")")
        print("training estimate: \(Int((sgemm * Throughput.efficiency).rounded())) GFLOP/s (x \(Throughput.efficiency))")
        if !dryRun {
            do {
                try Throughput.store(sgemmGflops: sgemm, threads: threads)
                print("stored in \(Throughput.calibrationPath)")
            } catch {
                FileHandle.standardError.write(Data("error: cannot store calibration: \(error.localizedDescription)\n".utf8))
                throw ExitStatus.usage
            }
        }
    }

    /// Median GFLOP/s of repeated C = A x B with row-major float32 matrices.
    static func measure(m: Int, n: Int, k: Int) -> Double {
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        var times: [Double] = []
        for i in 0..<6 {
            let start = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
            let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if i > 0 { times.append(t) }
        }
        let median = times.sorted()[times.count / 2]
        return 2 * Double(m) * Double(n) * Double(k) / median / 1e9
    }
}
