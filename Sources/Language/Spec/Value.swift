import Diagnostics
import StageConfig

/// A checked, typed value of the spec document, with defaults filled in.
///
/// The validator turns the YAML tree into this form: every scalar is already a
/// number, a boolean or a string as its schema asked, unknown keys are gone and
/// defaults are present (with no range, since the user did not write them).
public struct Value: Sendable {
    public indirect enum Kind: Sendable {
        case null
        case bool(Bool)
        case int(Int)
        case number(Double)
        case string(String)
        case list([Value])
        case object([Member])
    }

    /// One key of an object, with where the key was written.
    public struct Member: Sendable {
        public var key: String
        public var keyRange: SourceRange?
        public var value: Value
    }

    public var kind: Kind
    /// Where the user wrote this value; nil for a filled-in default.
    public var range: SourceRange?

    public init(_ kind: Kind, range: SourceRange? = nil) {
        self.kind = kind
        self.range = range
    }

    /// A declaration's literal (a default) as a value the user did not write.
    public init(literal: Literal, range: SourceRange? = nil) {
        switch literal {
        case .null: self.init(.null, range: range)
        case .bool(let b): self.init(.bool(b), range: range)
        case .int(let i): self.init(.int(i), range: range)
        case .number(let d): self.init(.number(d), range: range)
        case .string(let s): self.init(.string(s), range: range)
        case .list(let items): self.init(.list(items.map { Value(literal: $0) }), range: range)
        case .object(let members): self.init(.object(members.map { Member(key: $0.0, keyRange: nil, value: Value(literal: $0.1)) }), range: range)
        }
    }

    public subscript(key: String) -> Value? {
        if case .object(let members) = kind { return members.first { $0.key == key }?.value }
        return nil
    }

    public var members: [Member] {
        if case .object(let m) = kind { return m }
        return []
    }

    public var list: [Value] {
        if case .list(let l) = kind { return l }
        return []
    }

    public var string: String? {
        if case .string(let s) = kind { return s }
        return nil
    }

    public var int: Int? {
        if case .int(let i) = kind { return i }
        return nil
    }

    public var number: Double? {
        switch kind {
        case .number(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }

    public var bool: Bool? {
        if case .bool(let b) = kind { return b }
        return nil
    }

    public var isNull: Bool {
        if case .null = kind { return true }
        return false
    }

    /// Where the key `key` of this object was written, else where its value was,
    /// else where this object was.
    public func range(of key: String) -> SourceRange? {
        if case .object(let members) = kind, let m = members.first(where: { $0.key == key }) {
            return m.value.range ?? m.keyRange ?? range
        }
        return range
    }
}

/// A JSON-like rendering used by `--lock` output, golden tests and hashing:
/// keys in schema order, numbers in their shortest exact form.
extension Value {
    public var canonicalText: String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Written as bytes (a String appended per token cost the checker of a large grid a twentieth of its time).
    private func write(into out: inout [UInt8]) {
        switch kind {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .number(let d): out.append(contentsOf: Value.format(d).utf8)
        case .string(let s): JSON.quote(s, into: &out)
        case .list(let items):
            out.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.quote(m.key, into: &out)
                out.append(UInt8(ascii: ":"))
                m.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Shortest text that reads back as the same Double (`0.0001` as `0.0001`, `1e-05` as `1e-05`).
    public static func format(_ d: Double) -> String { JSON.format(d) }

    /// A number as a person writes it: `1`, `0.5`, `1e-05`.
    public static func plain(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return "\(d)"
    }

    public static func quote(_ s: String) -> String { JSON.quote(s) }
}
