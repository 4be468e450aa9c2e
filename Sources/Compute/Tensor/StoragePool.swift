import Architecture
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The buffer pool as the rest of the program sees it; its bound on idle memory is
/// `MemoryPolicy.idleLimitBytes`, which the plan counts in every stage's peak memory.
public enum BufferPool {
    /// Bytes idle in the pool now.
    public static var idleBytes: Int { StoragePool.shared.idleBytes }

    /// Gives every idle page back to the system: a stage that follows another in one process
    /// starts without the last one's buffers (and its peak memory is its own).
    public static func releaseIdle() { StoragePool.shared.releaseIdle() }
}

/// Large tensor buffers, carved out of one region of address space.
///
/// A training step frees and re-allocates the same large buffers every step;
/// handing them back to the allocator made glibc unmap and re-map them, and the
/// page faults and zeroing cost more than the arithmetic. So buffers of 64 KiB and
/// more live in one mapping that is reserved once (the machine's memory, without
/// committing it): a request takes the smallest free range it fits (best fit), a
/// freed range merges with its free neighbours, and the mapping grows at its end
/// only when no free range fits. The pages of freed ranges stay mapped for the
/// next step, up to `limit` bytes; beyond it they are given back (`madvise`).
///
/// Keeping buffers by size class instead held buffers of classes a step was not
/// using at its peak: T1's step peaked 1.2 GB above the most it had in use (from a
/// trace of its requests: 6.2 GB against 5.0), best fit over one range 0.3 GB.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()

    /// A free range of the region: where, how long, and how much of it may still be resident.
    private struct Hole {
        var offset: Int
        var size: Int
        var resident: Int
    }

    private let base: UnsafeMutableRawPointer?
    private let reserved: Int
    /// The end of the part of the region ever handed out.
    private var top = 0
    /// Free ranges below `top`, by offset, never adjacent (merged on release).
    private var holes: [Hole] = []
    /// Ranges in use, by offset.
    private var used: [Int: Int] = [:]
    /// Bytes of free ranges that may still be resident (an upper bound).
    private var idleResident = 0
    private let lock = NSLock()
    /// Bytes of freed ranges kept resident at most.
    var limit = MemoryPolicy.idleLimitBytes

    static let smallest = 64 << 10
    static let page = 4096

    /// `reserving` bytes of address space (default: the machine's memory); nothing is
    /// committed until it is touched. Without the mapping every buffer comes from malloc.
    init(reserving bytes: Int = StoragePool.physicalMemory) {
        let size = bytes / Self.page * Self.page
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if let p, p != MAP_FAILED {
            // Transparent huge pages (this kernel's default is "madvise": only where asked): a step streams
            // tensors of tens to hundreds of MB, whose 4 KiB pages cost a TLB miss each. T1's training step
            // ran 2-8% faster in alternating pairs; peak RSS did not change.
            madvise(p, size, MADV_HUGEPAGE)
            base = p
            reserved = size
        } else {
            base = nil
            reserved = 0
        }
    }

    static var physicalMemory: Int { sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)) }

    var idleBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return idleResident
    }

    func take(bytes requested: Int) -> UnsafeMutableRawPointer {
        guard requested >= Self.smallest, let base else { return UnsafeMutableRawPointer.allocate(byteCount: max(1, requested), alignment: 64) }
        let size = (requested + Self.page - 1) / Self.page * Self.page
        lock.lock()
        defer { lock.unlock() }
        var best: Int?
        for (i, h) in holes.enumerated() where h.size >= size && (best.map { h.size < holes[$0].size } ?? true) {
            best = i
            if h.size == size { break }
        }
        let offset: Int
        if let i = best {
            offset = carve(i, size)
        } else if let last = holes.last, last.offset + last.size == top, last.offset + size <= reserved {
            // The free range at the end grows into fresh address space.
            offset = last.offset
            idleResident -= last.resident
            holes.removeLast()
            top = offset + size
        } else if top + size <= reserved {
            offset = top
            top += size
        } else {
            return UnsafeMutableRawPointer.allocate(byteCount: requested, alignment: 64)
        }
        used[offset] = size
        return base + offset
    }

    /// Hole `i` and the next one as one, when they touch.
    private func mergeWithNext(_ i: Int) {
        guard i + 1 < holes.count, holes[i].offset + holes[i].size == holes[i + 1].offset else { return }
        holes[i].size += holes[i + 1].size
        holes[i].resident += holes[i + 1].resident
        holes.remove(at: i + 1)
    }

    /// Takes `size` bytes from the front of hole `i`.
    private func carve(_ i: Int, _ size: Int) -> Int {
        let h = holes[i]
        let rest = Hole(offset: h.offset + size, size: h.size - size, resident: min(h.resident, h.size - size))
        idleResident -= h.resident - rest.resident
        if rest.size == 0 { holes.remove(at: i) } else { holes[i] = rest }
        return h.offset
    }

    func releaseIdle() {
        guard let base else { return }
        lock.lock()
        defer { lock.unlock() }
        for j in holes.indices where holes[j].resident > 0 {
            madvise(base + holes[j].offset, holes[j].size, MADV_DONTNEED)
            holes[j].resident = 0
        }
        idleResident = 0
    }

    func give(_ p: UnsafeMutableRawPointer, bytes requested: Int) {
        guard let base, p >= base, p < base + reserved else { p.deallocate(); return }
        lock.lock()
        defer { lock.unlock() }
        let offset = p - base
        guard let size = used.removeValue(forKey: offset) else { preconditionFailure("a buffer the pool did not hand out came back") }
        // Insert by offset, then merge with the neighbours.
        var lo = 0, hi = holes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if holes[mid].offset < offset { lo = mid + 1 } else { hi = mid }
        }
        holes.insert(Hole(offset: offset, size: size, resident: size), at: lo)
        idleResident += size
        mergeWithNext(lo)
        if lo > 0 { mergeWithNext(lo - 1) }
        // Over the bound: give the pages of the largest resident free ranges back.
        while idleResident > limit, let j = holes.indices.max(by: { holes[$0].resident < holes[$1].resident }) {
            madvise(base + holes[j].offset, holes[j].size, MADV_DONTNEED)
            idleResident -= holes[j].resident
            holes[j].resident = 0
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

    /// `count` Int32 indices (max pooling's argmax).
    public static func indices(_ count: Int) -> UnsafeMutablePointer<Int32> {
        StoragePool.shared.take(bytes: max(1, count) * 4).bindMemory(to: Int32.self, capacity: max(1, count))
    }

    public static func release(_ p: UnsafeMutablePointer<Int32>, _ count: Int) {
        StoragePool.shared.give(UnsafeMutableRawPointer(p), bytes: max(1, count) * 4)
    }
}
