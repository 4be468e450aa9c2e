import Foundation
import Tensor

/// What can be wrong with a safetensors file; every case names the file.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case truncated(String, detail: String)
    case badHeader(String, detail: String)
    case unsupportedDType(String, tensor: String, dtype: String)
    case missing(String, tensor: String)
    case wrongShape(String, tensor: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .unreadable(let f): return "\(f): cannot read the file"
        case .truncated(let f, let d): return "\(f): truncated safetensors file: \(d)"
        case .badHeader(let f, let d): return "\(f): not a safetensors file: \(d)"
        case .unsupportedDType(let f, let t, let d): return "\(f): tensor '\(t)' has dtype \(d); F32, F16, I64 and I32 are supported"
        case .missing(let f, let t): return "\(f): no tensor '\(t)'"
        case .wrongShape(let f, let t, let e, let s): return "\(f): tensor '\(t)' has shape \(s), expected \(e)"
        }
    }
}

/// A safetensors file: 8-byte little-endian header length, a JSON header, raw
/// little-endian tensor bytes. The format PyTorch users load with
/// `safetensors.torch.load_file`.
public struct SafetensorsFile {
    public struct Entry {
        public var dtype: String
        public var shape: [Int]
        public var range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

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
        guard data.count >= 8 else { throw SafetensorsError.truncated(path, detail: "\(data.count) bytes, no header length") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8) else {
            throw SafetensorsError.truncated(path, detail: "header of \(n) bytes but only \(data.count - 8) follow")
        }
        dataStart = 8 + Int(n)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart)) as? [String: Any] else {
            throw SafetensorsError.badHeader(path, detail: "the header is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let payload = data.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                for (k, v) in value as? [String: Any] ?? [:] { metadata[k] = v as? String }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String, let shape = e["shape"] as? [Int],
                  let offsets = e["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw SafetensorsError.badHeader(path, detail: "entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw SafetensorsError.badHeader(path, detail: "entry '\(name)' has a negative dimension") }
            guard offsets[1] <= payload else {
                throw SafetensorsError.truncated(path, detail: "tensor '\(name)' ends at byte \(offsets[1]) of \(payload)")
            }
            let width: Int
            switch dtype {
            case "F32", "I32": width = 4
            case "F16": width = 2
            case "I64": width = 8
            default: throw SafetensorsError.unsupportedDType(path, tensor: name, dtype: dtype)
            }
            let elements = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
            guard elements * width == offsets[1] - offsets[0] else {
                throw SafetensorsError.badHeader(path, detail: "tensor '\(name)' of shape \(shape) \(dtype) needs \(elements * width) bytes, has \(offsets[1] - offsets[0])")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.metadata = metadata
    }

    public var names: [String] { entries.keys.sorted() }

    /// A float tensor (F32, or F16 widened).
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
        let tmp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        try out.write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw SafetensorsError.unreadable(path)
        }
    }
}
