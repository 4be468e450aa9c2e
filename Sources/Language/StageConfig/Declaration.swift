/// The spec language described as data: one declaration per field (key, type, range,
/// enum values, default, doc) drives the checker (unknown keys, types, ranges,
/// defaults), the JSON Schema (`distill schema`), the key reference in
/// grammar/README.md, the check of sweep paths, and the typed configuration's
/// readers (ConfigReader checks each field against the same declaration).
public indirect enum SchemaType: Sendable {
    /// Free text.
    case string
    /// A name that may become a folder name: letters, digits, `_`, `-`, starting with a letter.
    case identifier
    /// A file-system path; `${NAME}` and `${NAME:-default}` are expanded from the environment.
    case path
    case integer(min: Int?, max: Int?)
    /// A number; `exclusiveMin` makes `min` a strict bound.
    case number(min: Double?, exclusiveMin: Bool, max: Double?)
    case boolean
    case enumeration([String])
    case list(SchemaType, minCount: Int, maxCount: Int?)
    case object(ObjectSchema)
    /// A mapping whose keys the user names (models, stages, subsets).
    case dictionary(SchemaType, keys: NameKind)
    /// Alternatives chosen by the node's kind (scalar, list or mapping), in order.
    case oneOf([SchemaType])
    /// Anything; checked later against the path it is written to (sweep values).
    case any

    public static let positiveNumber = SchemaType.number(min: 0, exclusiveMin: true, max: nil)
    public static let nonNegativeNumber = SchemaType.number(min: 0, exclusiveMin: false, max: nil)
    public static let fraction = SchemaType.number(min: 0, exclusiveMin: true, max: 1)
    public static let positiveInteger = SchemaType.integer(min: 1, max: nil)
    public static let nonNegativeInteger = SchemaType.integer(min: 0, max: nil)

    /// An integer in a range the typed configuration declares (its reader checks the same one).
    public static func integer(_ range: ClosedRange<Int>) -> SchemaType { .integer(min: range.lowerBound, max: range.upperBound) }

    /// How type errors name what was expected.
    public var expectation: String {
        switch self {
        case .string: return "a string"
        case .identifier: return "a name"
        case .path: return "a path"
        case .integer: return "an integer"
        case .number: return "a number"
        case .boolean: return "true or false"
        case .enumeration(let cases): return "one of " + cases.map { "'\($0)'" }.joined(separator: ", ")
        case .list(let item, _, _): return "a list of \(item.pluralExpectation)"
        case .object: return "a mapping"
        case .dictionary: return "a mapping of names"
        case .oneOf(let alternatives): return alternatives.map(\.expectation).joined(separator: " or ")
        case .any: return "a value"
        }
    }

    var pluralExpectation: String {
        switch self {
        case .integer: return "integers"
        case .number: return "numbers"
        case .string, .identifier: return "strings"
        case .object, .dictionary: return "mappings"
        default: return "values (\(expectation))"
        }
    }
}

/// A value written in a declaration (a default): JSON whose objects keep their key
/// order, since an order can mean something (a model's heads are its output order).
public indirect enum Literal: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case list([Literal])
    case object([(String, Literal)])

    public var json: JSON {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .number(let d): return .number(d)
        case .string(let s): return .string(s)
        case .list(let items): return .array(items.map(\.json))
        case .object(let members): return .object(Dictionary(members.map { ($0.0, $0.1.json) }, uniquingKeysWith: { a, _ in a }))
        }
    }

    public static func == (a: Literal, b: Literal) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.list(let x), .list(let y)): return x == y
        case (.object(let x), .object(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

/// What a user-chosen name may look like.
public enum NameKind: Sendable {
    /// Models, stages, subsets, tap pairs, axes: `[A-Za-z_][A-Za-z0-9_-]*`, so that
    /// a sweep path `stages.kd.distill.taps.ee.weight` is unambiguous.
    case identifier
    /// Sweep value and variant names, which become folder names: `[A-Za-z0-9_][A-Za-z0-9_.+-]*`.
    case label

    public static let maxLength = 64

    public func accepts(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= Self.maxLength else { return false }
        func isAlnum(_ c: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
        }
        switch self {
        case .identifier:
            guard first == "_" || (isAlnum(first) && !("0"..."9").contains(first)) else { return false }
            return name.unicodeScalars.allSatisfy { isAlnum($0) || $0 == "_" || $0 == "-" }
        case .label:
            guard isAlnum(first) || first == "_" else { return false }
            return name.unicodeScalars.allSatisfy { isAlnum($0) || "_-.+".unicodeScalars.contains($0) }
        }
    }

    public var pattern: String {
        switch self {
        case .identifier: return "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
        case .label: return "^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$"
        }
    }
}

/// One key of an object schema.
public struct Field: Sendable {
    public var key: String
    public var type: SchemaType
    public var required: Bool
    /// The value used when the key is absent (nil: absent stays absent).
    public var defaultValue: Literal?
    public var doc: String
    /// Values at which the canonical encoding leaves the key out: keys added for a new mode
    /// (3D networks and data), so that what was written before them keeps its hash.
    public var omittedAt: [Literal]

    public init(_ key: String, _ type: SchemaType, required: Bool = false, default defaultValue: Literal? = nil,
                omittedAt: [Literal] = [], _ doc: String) {
        self.key = key
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
        self.omittedAt = omittedAt
        self.doc = doc
    }
}

/// An object whose fields depend on the value of one key (`kind:`, `arch:`).
public struct Discriminator: Sendable {
    public struct Case: Sendable {
        public var name: String
        public var doc: String
        public var fields: [Field]
        public init(_ name: String, _ doc: String, _ fields: [Field] = []) {
            self.name = name
            self.doc = doc
            self.fields = fields
        }
    }

    public var key: String
    public var defaultCase: String?
    public var cases: [Case]

    public init(key: String, default defaultCase: String? = nil, _ cases: [Case]) {
        self.key = key
        self.defaultCase = defaultCase
        self.cases = cases
    }

    public func `case`(_ name: String) -> Case? { cases.first { $0.name == name } }
}

/// A mapping with declared keys.
public struct ObjectSchema: Sendable {
    /// The definition's name in the JSON Schema (`$defs`) and in grammar/README.md.
    public let name: String
    public let doc: String
    public let fields: [Field]
    public let discriminator: Discriminator?
    /// Exactly one of these keys must be present (`source: {msd: ...}` or `{phantom: ...}`).
    public let exactlyOne: [String]
    /// `fields(for:)` of every case, and of no case (the validator asks per object it reads).
    private let byCase: [String: [Field]]
    private let withoutCase: [Field]

    public init(_ name: String, _ doc: String, fields: [Field], discriminator: Discriminator? = nil,
                exactlyOne: [String] = []) {
        self.name = name
        self.doc = doc
        self.fields = fields
        self.discriminator = discriminator
        self.exactlyOne = exactlyOne
        guard let d = discriminator else {
            withoutCase = fields
            byCase = [:]
            return
        }
        let common = fields + [Field(d.key, .enumeration(d.cases.map(\.name)), required: d.defaultCase == nil,
                                     default: d.defaultCase.map { .string($0) }, "Which kind of \(name) this is.")]
        withoutCase = common
        byCase = Dictionary(d.cases.map { ($0.name, common + $0.fields) }, uniquingKeysWith: { a, _ in a })
    }

    /// The fields that apply when the discriminator has the value `caseName`.
    public func fields(for caseName: String?) -> [Field] {
        guard let caseName else { return withoutCase }
        return byCase[caseName] ?? withoutCase
    }

    /// Every field's default as JSON (what `key: {}` means in a spec): one place for
    /// the values that tools outside a spec (`distill data phantom`) start from.
    public var defaults: JSON {
        .object(Dictionary(fields.compactMap { f in f.defaultValue.map { (f.key, $0.json) } }, uniquingKeysWith: { a, _ in a }))
    }

    /// `key: {}` in canonical form (as `JSON(_:completing:)` gives it): the defaults,
    /// and every optional field without one as `null`.
    public var canonicalDefaults: JSON {
        .object(Dictionary(fields.compactMap { f in f.required && f.defaultValue == nil ? nil : (f.key, f.defaultValue?.json ?? .null) },
                           uniquingKeysWith: { a, _ in a }))
    }

    /// Every key that any case accepts, for did-you-mean.
    public var allKeys: [String] {
        var keys = fields.map(\.key)
        if let d = discriminator {
            keys.append(d.key)
            for c in d.cases { keys += c.fields.map(\.key) }
        }
        var seen = Set<String>()
        return keys.filter { seen.insert($0).inserted }
    }
}
