/// A float32 tensor: a shape and contiguous row-major (NCHW) storage.
///
/// Storage is a reference type shared by copies; operations that change values
/// write into fresh tensors or into buffers they own (`mutate`), so a tensor
/// handed to autograd never changes under it.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: TensorStorage

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
    }

    /// A tensor over `values` (row-major).
    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "Tensor: \(values.count) values for shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: values.count) }
        }
    }

    /// A tensor whose values the caller overwrites entirely before reading.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *), zeroed: false)
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(zeros: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    public static func scalar(_ v: Float) -> Tensor { Tensor(shape: [], values: [v]) }

    init(shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// The same values under another shape with the same element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) -> \(newShape)")
        return Tensor(shape: newShape, storage: storage)
    }

    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var values: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }
    public var item: Float { storage.pointer[0] }

    /// An independent copy.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Dimension `i`, counting negative indices from the end.
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// The largest absolute value (0 for an empty tensor).
    public var maxAbs: Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(pointer[i])) }
        return m
    }

    /// True when every value is finite.
    public var isFinite: Bool {
        for i in 0..<count where !pointer[i].isFinite { return false }
        return true
    }
}

/// Owned, 64-byte aligned float storage, recycled through `StoragePool`.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = StoragePool.shared.take(bytes: max(1, count) * 4)
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(1, count))
        if zeroed { pointer.update(repeating: 0, count: max(1, count)) }
    }

    deinit { StoragePool.shared.give(UnsafeMutableRawPointer(pointer), bytes: max(1, count) * 4) }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
