import Foundation

/// The buffer pool as the rest of the program sees it: the bound on the memory it
/// keeps idle, which the plan counts in every stage's peak memory.
public enum BufferPool {
    /// Idle buffers kept for reuse, at most. A step must find the buffers it cycles
    /// here: S2 at batch 16 cycles about 1.3 GiB (with a 1 GiB bound `distill bench
    /// --row s2_train` ran 13-24% slower), T1 at batch 8 several GiB. With a 3 GiB
    /// bound T1's step spent 16% of its time in the kernel zeroing fresh pages
    /// (`perf`), and peaked higher (6.8 GB against 6.5 at 8 GiB: what the pool gives
    /// back, glibc keeps mapped anyway). Without a pool its peak is 5.8 GB.
    public static let idleLimitBytes = 8 << 30

    /// The most a stage's process can hold idle when a step allocates `stepBytes`
    /// (its activations and their gradients): never more than it freed, nor than the bound.
    public static func idleBytes(forStepBytes stepBytes: Int) -> Int { min(idleLimitBytes, stepBytes) }

    /// Bytes idle in the pool now.
    public static var idleBytes: Int { StoragePool.shared.idleBytes }
}

/// Recycles tensor buffers by size class.
///
/// A training step frees and re-allocates the same large buffers every step;
/// handing them back to the allocator made glibc unmap and re-map them, and the
/// page faults and zeroing cost more than the arithmetic. Buffers wait here for
/// the next request of the same size, up to `limit` bytes in all.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()

    /// Idle buffers by capacity.
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    /// The capacity of every large buffer the pool allocated (a request may be served by a larger one).
    private var capacity: [UnsafeMutableRawPointer: Int] = [:]
    private var cached = 0
    private let lock = NSLock()
    /// Bytes kept for reuse at most.
    var limit = BufferPool.idleLimitBytes

    var idleBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return cached
    }

    /// Large requests are rounded up to one of four sizes per doubling (at most 25%
    /// more), so that a freed buffer serves the next request of a similar size.
    static func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= 64 << 10 else { return bytes }
        let top = Int.bitWidth - 1 - bytes.leadingZeroBitCount
        let quantum = 1 << (top - 2)
        return (bytes + quantum - 1) / quantum * quantum
    }

    /// An idle buffer of the request's class, else the smallest idle one up to twice
    /// its size (a step frees and requests many sizes; serving one from another keeps
    /// the process from mapping and zeroing fresh pages while idle ones wait), else a
    /// new one.
    func take(bytes requested: Int) -> UnsafeMutableRawPointer {
        let bytes = Self.sizeClass(requested)
        if bytes >= 64 << 10 {
            lock.lock()
            var chosen = free[bytes]?.isEmpty == false ? bytes : nil
            if chosen == nil {
                chosen = free.keys.filter { $0 > bytes && $0 <= 2 * bytes && free[$0]?.isEmpty == false }.min()
            }
            if let c = chosen, let p = free[c]?.popLast() {
                cached -= c
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        if bytes >= 64 << 10 {
            lock.lock()
            capacity[p] = bytes
            lock.unlock()
        }
        return p
    }

    func give(_ p: UnsafeMutableRawPointer, bytes requested: Int) {
        // Small buffers are cheap for malloc; keep only those worth a page fault.
        guard Self.sizeClass(requested) >= 64 << 10 else { p.deallocate(); return }
        lock.lock()
        let size = capacity[p] ?? Self.sizeClass(requested)
        if cached + size <= limit {
            free[size, default: []].append(p)
            cached += size
            lock.unlock()
        } else {
            capacity[p] = nil
            lock.unlock()
            p.deallocate()
        }
    }
}

/// Temporary float buffers of kernels (im2col columns), recycled like tensors.
public enum Scratch {
    public static func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        StoragePool.shared.take(bytes: max(1, count) * 4).bindMemory(to: Float.self, capacity: max(1, count))
    }

    public static func release(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        StoragePool.shared.give(UnsafeMutableRawPointer(p), bytes: max(1, count) * 4)
    }
}
