import ArgumentParser
import Cluster
import COpenBLAS
import Dispatch
import Foundation
import Plan

/// `distill calibrate`: measure this machine's sgemm rate for plan time estimates.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Measure this machine's matrix-multiply throughput (and, under mpirun, the allreduce between ranks) for time estimates.",
        discussion: """
            Under `mpirun -np 2` (one rank on each of two nodes) it also times allreduces of \
            gradient-sized buffers between the ranks and stores the bus bandwidth and latency \
            that `distill plan --nodes` charges data-parallel stages for.
            """)

    @Option(name: .long, help: "BLAS threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .long, help: "Measure and print, but do not store.")
    var dryRun = false

    func validate() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        let world = World.current
        defer { world.finish() }
        // The matrix products on rank 0 alone: ranks sharing a node would share its cores.
        if world.isRoot { try measureMatrixProducts() }
        world.barrier()
        guard world.isParallel else {
            print("allreduce: not measured (run `mpirun -np 2 distill calibrate` with a rank on each of two nodes)")
            return
        }
        let large = 16 << 20  // floats: 64 MiB, a 16M-parameter model's gradients
        let bigSeconds = Self.timeAllreduce(world, floats: large, repeats: 5)
        let tinySeconds = Self.timeAllreduce(world, floats: 1, repeats: 50)
        guard world.isRoot else { return }
        let fit = Interconnect.fit(largeBytes: 4 * large, largeSeconds: bigSeconds, tinySeconds: tinySeconds, ranks: world.size)
        print("allreduce over \(world.size) ranks: 64 MiB in \(String(format: "%.1f", bigSeconds * 1e3)) ms, 4 bytes in \(String(format: "%.1f", tinySeconds * 1e6)) us")
        print("bus bandwidth \(String(format: "%.2f", fit.bytesPerSecond / 1e9)) GB/s, latency \(String(format: "%.1f", fit.latency * 1e6)) us")
        if !dryRun {
            do {
                try Calibration.update(["allreduce_bytes_per_s": .number(fit.bytesPerSecond), "allreduce_latency_s": .number(fit.latency),
                                        "allreduce_ranks": .int(world.size)])
                print("stored in \(Throughput.calibrationPath)")
            } catch {
                FileHandle.standardError.write(Data("error: cannot store calibration: \(error.localizedDescription)\n".utf8))
                throw ExitStatus.usage
            }
        }
    }

    /// Median seconds of an allreduce of `floats` over the world (after one warm-up).
    static func timeAllreduce(_ world: World, floats: Int, repeats: Int) -> Double {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: floats)
        var times: [Double] = []
        for i in 0...repeats {
            world.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            world.sum(buffer, floats)
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        return times.sorted()[times.count / 2]
    }

    func measureMatrixProducts() throws {
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
