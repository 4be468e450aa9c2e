import CMPI
import Foundation
import Tensor

/// The processes one stage runs on: this process alone, or an MPI world when the
/// command was started by `mpirun` or `srun`. Rank 0 writes every file of a stage
/// (checkpoints, metrics, the done marker); the others compute and stay silent.
public final class World: Sendable {
    public let rank: Int
    public let size: Int
    /// Whether MPI was initialised (and must be finalised before the process exits).
    public let usesMPI: Bool

    init(rank: Int, size: Int, usesMPI: Bool) { (self.rank, self.size, self.usesMPI) = (rank, size, usesMPI) }

    /// The world of this process: MPI's when a launcher set its environment, else one process.
    public static let current: World = join(ProcessInfo.processInfo.environment)

    /// The launcher's variables: Open MPI's mpirun, PMIx (srun --mpi=pmix, Open MPI 4+) and PMI-2.
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"]

    static func join(_ environment: [String: String]) -> World {
        guard launcherVariables.contains(where: { environment[$0] != nil }) else { return World(rank: 0, size: 1, usesMPI: false) }
        if distill_mpi_initialized() == 0 { _ = distill_mpi_init() }
        return World(rank: Int(distill_mpi_rank()), size: Int(distill_mpi_size()), usesMPI: true)
    }

    public var isRoot: Bool { rank == 0 }
    public var isParallel: Bool { size > 1 }

    /// Sums `count` doubles over every rank, in place.
    public func sum(_ values: UnsafeMutablePointer<Double>, _ count: Int) {
        inPieces(count) { at, n in _ = distill_mpi_allreduce_doubles(values + at, n) }
    }

    /// Sums `count` floats over every rank, in place (gradients).
    public func sum(_ values: UnsafeMutablePointer<Float>, _ count: Int) {
        inPieces(count) { at, n in _ = distill_mpi_allreduce_floats(values + at, n) }
    }

    /// MPI counts are 32-bit: larger buffers go in pieces.
    private func inPieces(_ count: Int, _ body: (Int, Int32) -> Void) {
        guard size > 1 else { return }
        var done = 0
        while done < count {
            let n = min(count - done, Int(Int32.max))
            body(done, Int32(n))
            done += n
        }
    }

    /// Rank 0's value of `value` on every rank.
    public func broadcast(_ value: Int) -> Int {
        guard size > 1 else { return value }
        var v = Int64(value)
        _ = withUnsafeMutableBytes(of: &v) { distill_mpi_broadcast($0.baseAddress, Int32($0.count), 0) }
        return Int(v)
    }

    public func barrier() { if size > 1 { _ = distill_mpi_barrier() } }

    /// Ends every rank at once: one rank's error must not leave the others waiting in a collective.
    public func abort(_ code: Int32) -> Never {
        if usesMPI { _ = distill_mpi_abort(code) }
        exit(code)
    }

    /// Finalises MPI (every rank, before exiting).
    public func finish() { if usesMPI { _ = distill_mpi_finalize() } }

    /// The sums a batch split over this world needs (nil for one process).
    public var batchGroup: BatchGroup? {
        guard size > 1 else { return nil }
        return BatchGroup(processes: size, rank: rank) { [self] values, count in sum(values, count) }
    }

    /// This rank's contiguous part of a global batch, and where it starts: sizes differ by at most one.
    public func shard<T>(_ batch: [T]) -> (items: [T], first: Int) {
        let base = batch.count / size, extra = batch.count % size
        let first = rank * base + min(rank, extra)
        let count = base + (rank < extra ? 1 : 0)
        return (Array(batch[first..<first + count]), first)
    }
}

extension World {
    /// Median seconds of an allreduce of `floats` over the world (after one warm-up).
    public func timeAllreduce(floats: Int, repeats: Int) -> Double {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: floats)
        var times: [Double] = []
        for i in 0...max(1, repeats) {
            barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            sum(buffer, floats)
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        return times.sorted()[times.count / 2]
    }
}
