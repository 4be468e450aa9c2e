import Foundation
import Hashing

/// A JSON value with one canonical text: keys sorted, no white space, numbers
/// in their shortest round-trip form. Stage identities hash this text, so key
/// order and formatting in the spec can never change a hash.
public indirect enum JSON: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int? { if case .int(let i) = self { return i }; return nil }
    public var number: Double? {
        switch self {
        case .number(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSON]? { if case .object(let o) = self { return o }; return nil }

    /// The canonical, compact text.
    public var canonical: String { String(decoding: canonicalBytes, as: UTF8.self) }

    /// The canonical text's UTF-8 bytes (what a stage's hash reads).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        write(&out, indent: nil, level: 0)
        return out
    }

    /// Indented text with sorted keys, for files people read and diff.
    public var pretty: String {
        var out: [UInt8] = []
        write(&out, indent: "  ", level: 0)
        out.append(UInt8(ascii: "\n"))
        return String(decoding: out, as: UTF8.self)
    }

    /// One writer for both forms, into bytes (appending to a String per token cost a
    /// planner a tenth of its time on a grid of 10,000 variants).
    private func write(_ out: inout [UInt8], indent: String?, level: Int) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .number(let d): out.append(contentsOf: (d.isFinite ? JSON.format(d) : "null").utf8)
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let items):
            if items.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent, level + 1)
                item.write(&out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            if members.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, indent, level + 1)
                JSON.quote(key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(UInt8(ascii: " ")) }
                value.write(&out, indent: indent, level: level + 1)
            }
            newline(&out, indent, level)
            out.append(UInt8(ascii: "}"))
        }
    }

    private func newline(_ out: inout [UInt8], _ indent: String?, _ level: Int) {
        guard let indent else { return }
        out.append(UInt8(ascii: "\n"))
        for _ in 0..<level { out.append(contentsOf: indent.utf8) }
    }

    /// `quote(s)` appended to `out`.
    public static func quote(_ s: String, into out: inout [UInt8]) {
        var s = s
        let plain = s.withUTF8 { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\""))
            return true
        }
        if !plain { out.append(contentsOf: quote(s).utf8) }
    }

    /// Integral values keep a `.0` so that a number never reads back as an integer.
    public static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) + ".0" }
        return "\(d)"
    }

    /// A string as a JSON literal: quotes, backslashes and control characters escaped.
    public static func quote(_ s: String) -> String {
        // Most names and values need no escaping: copy them whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + s + "\""
        }
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// The hash of the canonical text.
    public var sha256: String {
        var h = SHA256()
        h.update(canonicalBytes)
        return h.finalize()
    }

    /// Parses JSON text (a plan file); nil when malformed.
    public static func parse(_ data: Data) -> JSON? {
        var reader = JSONReader(bytes: Array(data))
        guard let value = reader.value(depth: 0) else { return nil }
        reader.skipSpace()
        return reader.at == reader.bytes.count ? value : nil
    }
}

/// A small strict JSON reader: integers stay integers, depth is bounded.
private struct JSONReader {
    let bytes: [UInt8]
    var at = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[at]) { at += 1 }
    }

    mutating func literal(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard at + w.count <= bytes.count, Array(bytes[at..<at + w.count]) == w else { return false }
        at += w.count
        return true
    }

    mutating func value(depth: Int) -> JSON? {
        guard depth < 256 else { return nil }
        skipSpace()
        guard at < bytes.count else { return nil }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            at += 1
            var members: [String: JSON] = [:]
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
            while true {
                skipSpace()
                guard let key = string(), expect(":"), let v = value(depth: depth + 1) else { return nil }
                members[key] = v
                skipSpace()
                if expect(",") { continue }
                return expect("}") ? .object(members) : nil
            }
        case UInt8(ascii: "["):
            at += 1
            var items: [JSON] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
            while true {
                guard let v = value(depth: depth + 1) else { return nil }
                items.append(v)
                skipSpace()
                if expect(",") { continue }
                return expect("]") ? .array(items) : nil
            }
        case UInt8(ascii: "\""):
            return string().map(JSON.string)
        case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default:
            return number()
        }
    }

    mutating func expect(_ c: Character) -> Bool {
        skipSpace()
        guard at < bytes.count, bytes[at] == c.asciiValue else { return false }
        at += 1
        return true
    }

    mutating func number() -> JSON? {
        let start = at
        var integral = true
        while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) {
            if [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[at]) { integral = false }
            at += 1
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        if integral, let i = Int(text) { return .int(i) }
        return Double(text).map(JSON.number)
    }

    mutating func string() -> String? {
        skipSpace()
        guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { return nil }
        at += 1
        var out = [UInt8]()
        while at < bytes.count {
            let b = bytes[at]
            at += 1
            switch b {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard at < bytes.count else { return nil }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard at + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(v) else { return nil }
                    at += 4
                    out += Array(String(Character(scalar)).utf8)
                default: out.append(e)
                }
            default: out.append(b)
            }
        }
        return nil
    }
}
