import Diagnostics

/// How a scalar was written. `"0.1"` (quoted) is a string; `0.1` (plain) may be a number.
public enum ScalarStyle: String, Sendable {
    case plain, singleQuoted, doubleQuoted, literal, folded

    public var isQuoted: Bool { self != .plain }
}

/// A scalar exactly as written: its text, its style and its explicit tag, if any.
/// Interpretation (number, boolean, null) is the schema's business, not the parser's,
/// so `yes`, `no` and `on` stay strings unless a field asks for a boolean.
public struct Scalar: Hashable, Sendable {
    public var text: String
    public var style: ScalarStyle
    /// The resolved explicit tag (`tag:yaml.org,2002:str` for `!!str`), nil when untagged.
    public var tag: String?

    public init(_ text: String, style: ScalarStyle = .plain, tag: String? = nil) {
        self.text = text
        self.style = style
        self.tag = tag
    }

    /// YAML's null: an empty plain scalar, `~` or `null` (any common casing).
    public var isNull: Bool {
        style == .plain && tag == nil && ["", "~", "null", "Null", "NULL"].contains(text)
    }
}

/// One key of a mapping with its value; the key keeps its own location.
public struct MappingEntry: Sendable {
    public var key: String
    public var keyRange: SourceRange
    public var value: SyntaxNode

    public init(key: String, keyRange: SourceRange, value: SyntaxNode) {
        self.key = key
        self.keyRange = keyRange
        self.value = value
    }
}

/// A located YAML node: every node knows its file and byte range.
public struct SyntaxNode: Sendable {
    public indirect enum Kind: Sendable {
        case scalar(Scalar)
        case sequence([SyntaxNode])
        case mapping([MappingEntry])
    }

    public var kind: Kind
    public var range: SourceRange

    public init(_ kind: Kind, range: SourceRange) {
        self.kind = kind
        self.range = range
    }

    public var scalar: Scalar? {
        if case .scalar(let s) = kind { return s }
        return nil
    }

    public var items: [SyntaxNode]? {
        if case .sequence(let items) = kind { return items }
        return nil
    }

    public var entries: [MappingEntry]? {
        if case .mapping(let entries) = kind { return entries }
        return nil
    }

    public var isNull: Bool { scalar?.isNull ?? false }

    /// The value under `key` in a mapping.
    public subscript(key: String) -> SyntaxNode? {
        entries?.first { $0.key == key }?.value
    }

    /// "a mapping", "a list", "the string \"0.1\"": how type errors describe what was found.
    public var kindDescription: String {
        switch kind {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s):
            if s.isNull { return "nothing (null)" }
            if s.style.isQuoted { return "the quoted string \"\(s.text)\"" }
            return "'\(s.text)'"
        }
    }
}
