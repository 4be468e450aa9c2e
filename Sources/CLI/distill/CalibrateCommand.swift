import ArgumentParser
import Cluster
import Foundation
import Plan
import Tensor

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

    @OptionGroup var threading: ThreadsOption
    var threads: Int { threading.threads }

    @Flag(name: .long, help: "Measure and print, but do not store.")
    var dryRun = false

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
        let bigSeconds = world.timeAllreduce(floats: large, repeats: 5)
        let tinySeconds = world.timeAllreduce(floats: 1, repeats: 50)
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

    func measureMatrixProducts() throws {
        let machine = Machine.current
        print(machine.description)
        let measured = GEMMRate.calibrate(threads: threads)
        for (shape, rate) in measured.perShape { print("\(shape.what): \(Int(rate.rounded())) GFLOP/s") }
        print("sgemm (median of shapes): \(Int(measured.sgemm.rounded())) GFLOP/s at \(threads) thread\(threads == 1 ? "" : "s")")
        print("training estimate: \(Int((measured.sgemm * Throughput.efficiency).rounded())) GFLOP/s (x \(Throughput.efficiency))")
        if let busy = measured.busy {
            print("warning: the machine was busy (\(busy)): this rate is what it gave under that load, not its own")
        }
        if !dryRun {
            do {
                if try Throughput.store(sgemmGflops: measured.sgemm, threads: threads, machine: machine.key, busy: measured.busy) {
                    print("stored in \(Throughput.calibrationPath)\(measured.busy == nil ? "" : ", flagged as busy")")
                } else {
                    print("not stored: \(Throughput.calibrationPath) keeps this machine's rate measured while idle")
                }
            } catch {
                FileHandle.standardError.write(Data("error: cannot store calibration: \(error.localizedDescription)\n".utf8))
                throw ExitStatus.usage
            }
        }
    }
}
