import Foundation

/// Recycles tensor buffers by exact size.
///
/// A training step frees and re-allocates the same large buffers every step;
/// handing them back to the allocator made glibc unmap and re-map them, and the
/// page faults and zeroing cost more than the arithmetic. Buffers wait here for
/// the next request of the same size, up to `limit` bytes in all.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()

    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cached = 0
    private let lock = NSLock()
    /// Bytes kept for reuse at most.
    var limit = 1 << 30

    /// Large requests are rounded up to one of four sizes per doubling (at most 25%
    /// more), so that a freed buffer serves the next request of a similar size.
    static func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= 64 << 10 else { return bytes }
        let top = Int.bitWidth - 1 - bytes.leadingZeroBitCount
        let quantum = 1 << (top - 2)
        return (bytes + quantum - 1) / quantum * quantum
    }

    func take(bytes requested: Int) -> UnsafeMutableRawPointer {
        let bytes = Self.sizeClass(requested)
        lock.lock()
        if let p = free[bytes]?.popLast() {
            cached -= bytes
            lock.unlock()
            return p
        }
        lock.unlock()
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }

    func give(_ p: UnsafeMutableRawPointer, bytes requested: Int) {
        let bytes = Self.sizeClass(requested)
        // Small buffers are cheap for malloc; keep only those worth a page fault.
        guard bytes >= 64 << 10 else { p.deallocate(); return }
        lock.lock()
        if cached + bytes <= limit {
            free[bytes, default: []].append(p)
            cached += bytes
            lock.unlock()
        } else {
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
