/// The one canonical encoding of every configuration type, and its strict reader.
///
/// A type's `json` is what the planner hashes and writes into a plan file; its
/// `init(json:at:)` is what the runtime (and the spec builder) reads it back with.
/// Reading is exact (every error thrown is a `ConfigError`): every field must be present (`null` for an absent optional),
/// no other field may be, and every value must have the type and one of the values
/// the field allows. There are no defaults here: the spec schema is the only
/// place a default is written, and it is filled in before anything is encoded.
public protocol ConfigCodable: Hashable, Sendable {
    /// The canonical encoding.
    var json: JSON { get }
    /// Reads the canonical encoding; `path` names this value in errors.
    init(json: JSON, at path: String) throws
}

extension ConfigCodable {
    public init(json: JSON) throws { try self.init(json: json, at: "") }
}

/// What was wrong with one field of an encoded configuration.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Problem: Equatable, Sendable {
        case missing
        case unknownField
        case wrongType(expected: String)
        case unknownValue(expected: [String])
        case outOfRange(String)
        case inconsistent(String)
    }

    /// Dotted path of the field inside the encoded value (`distill.taps.bb.resample`).
    public var field: String
    public var problem: Problem
    /// The offending value as canonical JSON text (nil for a missing field).
    public var value: String?

    public init(field: String, problem: Problem, value: JSON? = nil) {
        self.field = field
        self.problem = problem
        self.value = value?.canonical
    }

    public var description: String {
        let name = field.isEmpty ? "the value" : "field '\(field)'"
        let found = value ?? "nothing"
        switch problem {
        case .missing:
            return "\(name) is missing"
        case .unknownField:
            return "unknown field '\(field)' (value \(found))"
        case .wrongType(let expected):
            return "\(name) is \(found); expected \(expected)"
        case .unknownValue(let options):
            return "\(name) has the unknown value \(found); expected one of \(options.map { "'\($0)'" }.joined(separator: ", "))"
        case .outOfRange(let bound):
            return "\(name) is \(found); it must be \(bound)"
        case .inconsistent(let why):
            return "\(name) is \(found): \(why)"
        }
    }
}

/// Joins a path and a key: `optimizer` + `betas` = `optimizer.betas`.
func joinPath(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

/// Reads one encoded object field by field and, at `finish()`, refuses the fields nobody read.
public struct ConfigReader {
    public let path: String
    private let members: [String: JSON]
    /// The keys read so far, each once (an object has a handful: a list beats hashing).
    private var read: [String] = []

    public init(_ json: JSON, at path: String) throws {
        guard case .object(let members) = json else {
            throw ConfigError(field: path, problem: .wrongType(expected: "an object"), value: json)
        }
        self.path = path
        self.members = members
    }

    public func child(_ key: String) -> String { joinPath(path, key) }

    /// The raw value of a field that must be present.
    public mutating func value(_ key: String) throws -> JSON {
        guard let v = members[key] else { throw ConfigError(field: child(key), problem: .missing) }
        if !read.contains(key) { read.append(key) }
        return v
    }

    /// nil when the field is `null`; the field itself must be present.
    public mutating func optional<T>(_ key: String, _ decode: (inout ConfigReader, String) throws -> T) throws -> T? {
        if try value(key) == .null { return nil }
        return try decode(&self, key)
    }

    /// nil when the field is absent or `null`. For the fields of 3D networks and data, which
    /// the canonical form of 2D ones leaves out, so that their hashes stay what they were.
    public mutating func ifPresent<T>(_ key: String, _ decode: (inout ConfigReader, String) throws -> T) throws -> T? {
        guard members[key] != nil else { return nil }
        return try optional(key, decode)
    }

    public mutating func int(_ key: String, min: Int? = nil, max: Int? = nil) throws -> Int {
        try ConfigValue.int(try value(key), at: child(key), min: min, max: max)
    }

    public mutating func double(_ key: String, min: Double? = nil, exclusiveMin: Bool = false, max: Double? = nil) throws -> Double {
        try ConfigValue.double(try value(key), at: child(key), min: min, exclusiveMin: exclusiveMin, max: max)
    }

    public mutating func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else { throw ConfigError(field: child(key), problem: .wrongType(expected: "true or false"), value: v) }
        return b
    }

    public mutating func string(_ key: String) throws -> String {
        try ConfigValue.string(try value(key), at: child(key))
    }

    public mutating func choice<E: ConfigChoice>(_ key: String, as type: E.Type = E.self) throws -> E {
        try E(json: try value(key), at: child(key))
    }

    public mutating func decode<T: ConfigCodable>(_ key: String, as type: T.Type = T.self) throws -> T {
        try T(json: try value(key), at: child(key))
    }

    /// A list field, each element read by `element` with its index in the path.
    public mutating func list<T>(_ key: String, minCount: Int = 0,
                                 _ element: (JSON, String) throws -> T) throws -> [T] {
        let v = try value(key)
        return try ConfigValue.list(v, at: child(key), minCount: minCount, element)
    }

    /// An object field whose keys are names (tap pairs, heads), read in key order.
    public mutating func dictionary<T>(_ key: String, _ element: (String, JSON, String) throws -> T) throws -> [T] {
        let v = try value(key)
        guard case .object(let items) = v else { throw ConfigError(field: child(key), problem: .wrongType(expected: "an object"), value: v) }
        var out: [T] = []
        for name in items.keys.sorted() {
            guard let item = items[name] else { continue }
            out.append(try element(name, item, joinPath(child(key), name)))
        }
        return out
    }

    /// Throws for the first field (in key order) that no accessor read.
    public func finish() throws {
        guard read.count < members.count else { return }
        for key in members.keys.sorted() where !read.contains(key) {
            throw ConfigError(field: child(key), problem: .unknownField, value: members[key])
        }
    }

    /// Reads an object with `body` and refuses unknown fields: the usual shape of `init(json:at:)`.
    public static func read<T>(_ json: JSON, at path: String, _ body: (inout ConfigReader) throws -> T) throws -> T {
        var r = try ConfigReader(json, at: path)
        let value = try body(&r)
        try r.finish()
        return value
    }
}

/// Checks on single values, shared by the reader and by list elements.
public enum ConfigValue {
    // The path is an autoclosure: it is only written out for an error, and a plan reads thousands of fields.
    public static func int(_ v: JSON, at path: @autoclosure () -> String, min: Int? = nil, max: Int? = nil) throws -> Int {
        let i: Int
        switch v {
        case .int(let x): i = x
        case .number(let d) where d == d.rounded() && abs(d) < 1e15: i = Int(d)
        default: throw ConfigError(field: path(), problem: .wrongType(expected: "an integer"), value: v)
        }
        if let min, i < min { throw ConfigError(field: path(), problem: .outOfRange(max.map { "between \(min) and \($0)" } ?? "at least \(min)"), value: v) }
        if let max, i > max { throw ConfigError(field: path(), problem: .outOfRange(min.map { "between \($0) and \(max)" } ?? "at most \(max)"), value: v) }
        return i
    }

    public static func double(_ v: JSON, at path: @autoclosure () -> String, min: Double? = nil, exclusiveMin: Bool = false, max: Double? = nil) throws -> Double {
        guard let d = v.number, d.isFinite else { throw ConfigError(field: path(), problem: .wrongType(expected: "a finite number"), value: v) }
        if let min, exclusiveMin ? !(d > min) : !(d >= min) {
            throw ConfigError(field: path(), problem: .outOfRange((exclusiveMin ? "greater than " : "at least ") + JSON.format(min)), value: v)
        }
        if let max, !(d <= max) { throw ConfigError(field: path(), problem: .outOfRange("at most " + JSON.format(max)), value: v) }
        return d
    }

    public static func string(_ v: JSON, at path: @autoclosure () -> String) throws -> String {
        guard case .string(let s) = v else { throw ConfigError(field: path(), problem: .wrongType(expected: "a string"), value: v) }
        return s
    }

    public static func list<T>(_ v: JSON, at path: String, minCount: Int = 0,
                               _ element: (JSON, String) throws -> T) throws -> [T] {
        guard case .array(let items) = v else { throw ConfigError(field: path, problem: .wrongType(expected: "a list"), value: v) }
        guard items.count >= minCount else {
            throw ConfigError(field: path, problem: .outOfRange("a list of at least \(minCount) item\(minCount == 1 ? "" : "s")"), value: v)
        }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() { out.append(try element(item, "\(path)[\(i)]")) }
        return out
    }
}

/// A closed set of names (`resample: bilinear`): the enumeration's raw values are
/// the only spellings, in the spec and in a plan alike.
public protocol ConfigChoice: RawRepresentable, CaseIterable, Hashable, Sendable where RawValue == String {}

extension ConfigChoice {
    public var json: JSON { .string(rawValue) }

    public init(json: JSON, at path: String) throws {
        let s = try ConfigValue.string(json, at: path)
        guard let value = Self(rawValue: s) else {
            throw ConfigError(field: path, problem: .unknownValue(expected: Self.names), value: json)
        }
        self = value
    }

    /// Every spelling, in declaration order (the schema's enumerations read this).
    public static var names: [String] { allCases.map(\.rawValue) }
}

/// A discriminated value (`kind: infonce` with its own fields): the kind picks the case.
extension ConfigReader {
    /// Reads the `kind` field against `names`.
    /// The value of a discriminating key as one of `K`'s cases (an unknown one is an error
    /// naming every known one): switching over it leaves no case to a `default:`.
    public mutating func kind<K: CaseIterable & RawRepresentable>(_ key: String = "kind", as type: K.Type) throws -> K where K.RawValue == String {
        let name = try kind(key, among: K.allCases.map(\.rawValue))
        guard let k = K(rawValue: name) else { throw ConfigError(field: child(key), problem: .unknownValue(expected: K.allCases.map(\.rawValue)), value: .string(name)) }
        return k
    }

    public mutating func kind(_ key: String = "kind", among names: [String]) throws -> String {
        let v = try value(key)
        let s = try ConfigValue.string(v, at: child(key))
        guard names.contains(s) else { throw ConfigError(field: child(key), problem: .unknownValue(expected: names), value: v) }
        return s
    }
}

// MARK: reading against the declaration

extension SchemaType {
    /// Checks an encoded value against this type: what the declaration allows, as the
    /// reader sees it (the spec checker checks the written YAML against the same type,
    /// with its locations). Nested objects are checked against their own declarations.
    public func check(_ v: JSON, at path: String) throws {
        switch self {
        case .string, .path:
            _ = try ConfigValue.string(v, at: path)
        case .identifier:
            let s = try ConfigValue.string(v, at: path)
            guard NameKind.identifier.accepts(s) else { throw ConfigError(field: path, problem: .wrongType(expected: expectation), value: v) }
        case .integer(let min, let max):
            _ = try ConfigValue.int(v, at: path, min: min, max: max)
        case .number(let min, let exclusiveMin, let max):
            _ = try ConfigValue.double(v, at: path, min: min, exclusiveMin: exclusiveMin, max: max)
        case .boolean:
            guard case .bool = v else { throw ConfigError(field: path, problem: .wrongType(expected: expectation), value: v) }
        case .enumeration(let names):
            let s = try ConfigValue.string(v, at: path)
            guard names.contains(s) else { throw ConfigError(field: path, problem: .unknownValue(expected: names), value: v) }
        case .list(let item, let minCount, let maxCount):
            let items = try ConfigValue.list(v, at: path, minCount: minCount) { x, _ in x }
            if let maxCount, items.count > maxCount {
                throw ConfigError(field: path, problem: .outOfRange("a list of at most \(maxCount) item\(maxCount == 1 ? "" : "s")"), value: v)
            }
            for (i, x) in items.enumerated() { try item.check(x, at: "\(path)[\(i)]") }
        case .object(let declaration):
            guard case .object(let members) = v else { throw ConfigError(field: path, problem: .wrongType(expected: "an object"), value: v) }
            let caseName: String? = declaration.discriminator.flatMap { d in members[d.key].flatMap { if case .string(let s) = $0 { return s } else { return nil } } }
            for field in declaration.fields(for: caseName) {
                guard let x = members[field.key] else { continue }  // the reader names a missing field
                if x == .null, !field.required, field.defaultValue == nil { continue }
                try field.type.check(x, at: joinPath(path, field.key))
            }
        case .dictionary(let valueType, let keys):
            guard case .object(let members) = v else { throw ConfigError(field: path, problem: .wrongType(expected: "an object"), value: v) }
            for (k, x) in members.sorted(by: { $0.key < $1.key }) {
                guard keys.accepts(k) else { throw ConfigError(field: joinPath(path, k), problem: .wrongType(expected: "a name"), value: .string(k)) }
                try valueType.check(x, at: joinPath(path, k))
            }
        case .oneOf(let alternatives):
            // The alternatives are told apart by the value's kind (as the checker tells them apart by the
            // node's): the first of that kind decides, and no error is built for the others.
            guard let chosen = alternatives.first(where: { $0.accepts(kindOf: v) }) else {
                throw ConfigError(field: path, problem: .wrongType(expected: expectation), value: v)
            }
            try chosen.check(v, at: path)
        case .any:
            return
        }
    }
}

extension SchemaType {
    /// Whether a value of `v`'s kind (string, number, list, object, boolean) can be of this type.
    func accepts(kindOf v: JSON) -> Bool {
        switch (self, v) {
        case (.any, _): return true
        case (.string, .string), (.identifier, .string), (.path, .string), (.enumeration, .string): return true
        case (.integer, .int), (.integer, .number), (.number, .int), (.number, .number): return true
        case (.boolean, .bool): return true
        case (.list, .array): return true
        case (.object, .object), (.dictionary, .object): return true
        case (.oneOf(let alternatives), _): return alternatives.contains { $0.accepts(kindOf: v) }
        default: return false
        }
    }
}

extension ConfigReader {
    /// True while a reader reads values the spec checker has just validated against these same
    /// declarations (the spec builder sets it for a document without errors): the readers then
    /// skip checking them a second time. Everything else (a plan file, a test) is checked.
    @TaskLocal public static var checkedBySpecChecker = false

    /// Reads an object declared by `declaration` with `body`: every field present is first
    /// checked against its declared type, range and values (an optional field without a
    /// default may be `null`), so that `body` states no bound of its own; fields nobody
    /// reads are refused, as by `read(_:at:_:)`.
    public static func read<T>(_ json: JSON, at path: String, declaration: ObjectSchema, _ body: (inout ConfigReader) throws -> T) throws -> T {
        if !checkedBySpecChecker { try SchemaType.object(declaration).check(json, at: path) }
        return try read(json, at: path, body)
    }
}
