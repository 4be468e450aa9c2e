import COpenBLAS
import Dispatch
import Foundation

/// Explicit threading: OpenBLAS threads plus parallel loops over the batch or
/// channels, both from one setting that defaults to all cores.
public enum Parallel {
    nonisolated(unsafe) private static var configured = ProcessInfo.processInfo.activeProcessorCount

    /// A per-task limit: stages running side by side split the cores between them.
    @TaskLocal public static var share: Int?

    /// Threads for parallel loops.
    public static var threads: Int { share ?? configured }

    /// Kernels split work across images or channels themselves and call BLAS from
    /// each worker, so OpenBLAS runs single-threaded inside them (two levels of
    /// threads would only make them wait on each other).
    public static func setThreads(_ n: Int) {
        configured = max(1, n)
        Machine.prepare()
        openblas_set_num_threads(1)
    }

    /// Runs `body(i)` for i in 0..<n on up to `threads` threads, in chunks.
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        let workers = min(threads, n)
        if workers <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let worker = ConcurrentBody(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < n {
                    worker.body(i)
                    i += workers
                }
            }
        }
    }

    /// Runs `body(range)` over `n` items split into contiguous ranges, one per thread.
    public static func chunks(_ n: Int, minimum: Int = 4096, _ body: (Range<Int>) -> Void) {
        let workers = min(threads, max(1, n / max(1, minimum)))
        if workers <= 1 {
            body(0..<n)
            return
        }
        withoutActuallyEscaping(body) { body in
            let worker = ConcurrentBody(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let lo = n * w / workers, hi = n * (w + 1) / workers
                worker.body(lo..<hi)
            }
        }
    }
}

/// A loop body that `Parallel` calls from several threads at once.
///
/// The contract of `forEach` and `chunks`: each call touches only the items of its
/// own index or range (disjoint slices of shared buffers), so running the calls
/// concurrently is safe although the closure's captures are not `Sendable`.
private struct ConcurrentBody<Argument>: @unchecked Sendable {
    let body: (Argument) -> Void
    init(_ body: @escaping (Argument) -> Void) { self.body = body }
}
