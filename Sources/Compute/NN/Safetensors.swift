import Foundation
import Storage
import StageConfig
import Tensor

/// A safetensors file: 8-byte little-endian header length, a JSON header, raw
/// little-endian tensor bytes. The format PyTorch users load with
/// `safetensors.torch.load_file`.
public struct SafetensorsFile {
    public typealias Entry = SafetensorsHeader.Entry

    public let path: String
    public let header: SafetensorsHeader
    public var entries: [String: Entry] { header.entries }
    public var metadata: [String: String] { header.metadata }
    private let data: Data
    private var dataStart: Int { header.dataStart }

    public init(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { throw SafetensorsError.unreadable(path) }
        try self.init(data: data, path: path)
    }

    /// Rows of the first dimension (e.g. the cached teacher maps of a batch), widened to float.
    public func tensor(_ name: String, rows: [Int]) throws -> Tensor {
        guard let e = entries[name], let first = e.shape.first else { throw SafetensorsError.missing(path, tensor: name) }
        let row = e.shape.dropFirst().reduce(1, *)
        let t = Tensor(uninitialized: [rows.count] + Array(e.shape.dropFirst()))
        let width = e.dtype == "F16" ? 2 : 4
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress?.advanced(by: dataStart + e.range.lowerBound) else { return }
            for (k, r) in rows.enumerated() where r < first {
                let src = base + r * row * width, dst = t.pointer + k * row
                if width == 2 {
                    for i in 0..<row { dst[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
                } else {
                    for i in 0..<row { dst[i] = Float(bitPattern: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                }
            }
        }
        return t
    }

    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        header = try SafetensorsHeader(prefix: data, fileSize: data.count, path: path)
    }

    public var names: [String] { entries.keys.sorted() }

    /// A float tensor (F32, or F16 and BF16 widened).
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw SafetensorsError.missing(path, tensor: name) }
        let t = Tensor(zeros: e.shape)
        data.withUnsafeBytes { raw in
            guard let origin = raw.baseAddress else { return }
            let base = origin + dataStart + e.range.lowerBound
            switch e.dtype {
            case "F32":
                for i in 0..<t.count { t.pointer[i] = Float(bitPattern: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            case "F16":
                for i in 0..<t.count { t.pointer[i] = Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            case "BF16":
                for i in 0..<t.count { t.pointer[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
            case "I32":
                for i in 0..<t.count { t.pointer[i] = Float(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
            default:
                for i in 0..<t.count { t.pointer[i] = Float(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
            }
        }
        return t
    }

    /// An integer tensor (I64 or I32) as Int32 values, with its shape.
    public func integers(_ name: String) throws -> (shape: [Int], values: [Int32]) {
        guard let e = entries[name] else { throw SafetensorsError.missing(path, tensor: name) }
        let n = e.shape.reduce(1, *)
        var out = [Int32](repeating: 0, count: n)
        data.withUnsafeBytes { raw in
            guard let origin = raw.baseAddress else { return }
            let base = origin + dataStart + e.range.lowerBound
            for i in 0..<n {
                out[i] = e.dtype == "I64" ? Int32(truncatingIfNeeded: Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                                          : Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            }
        }
        return (e.shape, out)
    }

    /// Writes float32 tensors (sorted by name) with optional metadata, atomically.
    /// `half` stores every tensor as F16; `halfNames` only those named.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String, half: Bool = false,
                             halfNames: Set<String> = []) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            guard let t = tensors[name] else { continue }
            let isHalf = half || halfNames.contains(name)
            header[name] = ["dtype": isHalf ? "F16" : "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * (isHalf ? 2 : 4)]]
            offset += t.count * (isHalf ? 2 : 4)
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            guard let t = tensors[name] else { continue }
            if half || halfNames.contains(name) {
                var buf = [UInt16](repeating: 0, count: t.count)
                for i in 0..<t.count { buf[i] = Float16(t.pointer[i]).bitPattern.littleEndian }
                buf.withUnsafeBytes { out.append(contentsOf: $0) }
            } else {
                out.append(UnsafeBufferPointer(start: t.pointer, count: t.count))
            }
        }
        try AtomicFile.write(out, to: path)
    }
}

/// A safetensors file written piece by piece in constant memory: the header (every
/// tensor's name, dtype and shape) first, then rows of any tensor at their offsets,
/// in any order. Float rows are stored as F16 or F32; the file appears under its
/// name only when `finish()` renames it into place.
public final class SafetensorsStreamWriter {
    public struct Spec {
        public var name: String
        public var shape: [Int]
        public var half: Bool
        public init(name: String, shape: [Int], half: Bool) { (self.name, self.shape, self.half) = (name, shape, half) }
    }

    public let path: String
    private let temporary: String
    private let fd: Int32
    private var offsets: [String: (start: Int, row: Int, half: Bool, rows: Int)] = [:]
    private var finished = false

    public init(path: String, tensors: [Spec], metadata: [String: String] = [:]) throws {
        self.path = path
        temporary = AtomicFile.temporaryPath(for: path)
        try FaultInjection.point("write \(path)")
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var layout: [String: (Int, Int, Bool, Int)] = [:]
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            let width = t.half ? 2 : 4
            let count = t.shape.reduce(1, *)
            header[t.name] = ["dtype": t.half ? "F16" : "F32", "shape": t.shape, "data_offsets": [offset, offset + count * width]]
            layout[t.name] = (offset, t.shape.dropFirst().reduce(1, *) * width, t.half, t.shape.first ?? 0)
            offset += count * width
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var head = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { head.append(contentsOf: $0) }
        head.append(json)
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.system(errno, "cannot create \(temporary)") }
        let dataStart = head.count
        offsets = layout.mapValues { (dataStart + $0.0, $0.1, $0.2, $0.3) }
        // The full size at once: rows land at their offsets, and a full disk fails here, not midway.
        guard ftruncate(fd, off_t(dataStart + offset)) == 0 else {
            let code = errno
            close(fd)
            unlink(temporary)
            throw StorageError.system(code, "cannot reserve \(dataStart + offset) bytes for \(path)")
        }
        try head.withUnsafeBytes { try write($0, at: 0) }
    }

    deinit {
        if !finished {
            close(fd)
            unlink(temporary)
        }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress?.advanced(by: done), bytes.count - done, off_t(offset + done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw StorageError.system(n < 0 ? errno : EIO, "cannot write \(path)") }
            done += n
        }
    }

    /// Writes rows `first ..< first + n` of tensor `name` from `values` (n whole rows, float32).
    public func write(_ name: String, rows first: Int, _ values: UnsafePointer<Float>, count: Int) throws {
        guard let o = offsets[name] else { throw SafetensorsError.missing(path, tensor: name) }
        let perRow = o.row / (o.half ? 2 : 4)
        guard perRow > 0, count % perRow == 0, first >= 0, first + count / perRow <= o.rows else {
            throw SafetensorsError.wrongShape(path, tensor: name, expected: [o.rows, perRow], found: [first, count])
        }
        let at = o.start + first * o.row
        if o.half {
            var buffer = [UInt16](repeating: 0, count: count)
            for i in 0..<count { buffer[i] = Float16(values[i]).bitPattern.littleEndian }
            try buffer.withUnsafeBytes { try write($0, at: at) }
        } else {
            try write(UnsafeRawBufferPointer(start: values, count: count * 4), at: at)
        }
    }

    /// Flushes and renames the file into place.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        defer { close(fd) }
        do {
            try AtomicFile.flush(fd, path: path)
            guard rename(temporary, path) == 0 else { throw StorageError.system(errno, "cannot move \(temporary) to \(path)") }
        } catch {
            unlink(temporary)
            throw error
        }
        AtomicFile.flushDirectory(of: path)
    }
}

