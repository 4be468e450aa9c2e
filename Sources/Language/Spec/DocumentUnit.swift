import Diagnostics
import SpecSyntax
import StageConfig

/// The part of a spec that a sweep override replaces and that is re-validated:
/// one model, one stage, or a whole top-level section (`data`, `evaluate`).
/// A variant re-checks only the units it touches; the rest is the base's.
public struct DocumentUnit: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var section: String
    public var entry: String?

    public init(section: String, entry: String? = nil) {
        self.section = section
        self.entry = entry
    }

    public var description: String { entry.map { "\(section).\($0)" } ?? section }
    public static func < (a: DocumentUnit, b: DocumentUnit) -> Bool { a.description < b.description }

    /// Sections whose entries are units of their own.
    static let keyed: Set<String> = ["models", "stages"]
}

extension SpecPath {
    var unit: DocumentUnit {
        guard case .key(let section)? = components.first else { return DocumentUnit(section: "") }
        if DocumentUnit.keyed.contains(section), components.count > 1, case .key(let entry) = components[1] {
            return DocumentUnit(section: section, entry: entry)
        }
        return DocumentUnit(section: section)
    }
}

/// Where a variant's overrides write below one unit, as a tree of path components.
/// A subtree no override reaches is the base's: validated, completed and compared once.
struct OverrideTrie {
    /// An override writes this whole subtree.
    private(set) var whole = false
    private var children: [(SpecPath.Component, OverrideTrie)] = []

    init() {}

    /// The trie of `paths`, each relative to the unit.
    init<S: Sequence>(_ paths: S) where S.Element == ArraySlice<SpecPath.Component> {
        for p in paths { insert(p) }
    }

    private mutating func insert(_ path: ArraySlice<SpecPath.Component>) {
        guard !whole else { return }
        guard let first = path.first else {
            whole = true
            children = []
            return
        }
        if let i = children.firstIndex(where: { $0.0 == first }) {
            children[i].1.insert(path.dropFirst())
        } else {
            var child = OverrideTrie()
            child.insert(path.dropFirst())
            children.append((first, child))
        }
    }

    /// Whether an override writes `key` or something below it.
    func reaches(_ key: String) -> Bool { whole || children.contains { $0.0 == .key(key) } }

    /// What the overrides write below `key`; nil when they leave it as the base has it.
    func below(_ key: String) -> OverrideTrie? {
        if whole { return self }
        return children.first { $0.0 == .key(key) }?.1
    }

    /// The keys the overrides write below here.
    var keys: [String] { children.compactMap { if case .key(let k) = $0.0 { return k }; return nil } }
}

/// A base's value and the overrides that change it: what the validator and the
/// builder reuse for every member the overrides do not reach.
struct Reuse {
    var trie: OverrideTrie
    var base: Value

    /// The reuse of member `key`, or nil when the whole member must be redone.
    func member(_ key: String) -> Reuse? {
        guard let t = trie.below(key), !t.whole, let b = base[key] else { return nil }
        return Reuse(trie: t, base: b)
    }

    /// The base's value of member `key` when no override reaches it.
    func untouched(_ key: String) -> Value? {
        trie.reaches(key) ? nil : base[key]
    }
}

extension Value {
    /// The value of a unit in a validated document.
    func unit(_ u: DocumentUnit) -> Value? {
        guard let section = self[u.section] else { return nil }
        return u.entry.map { section[$0] } ?? section
    }

    /// The document with one unit's value replaced.
    func replacing(_ u: DocumentUnit, with value: Value) -> Value {
        var copy = self
        guard case .object(var members) = kind, let i = members.firstIndex(where: { $0.key == u.section }) else { return self }
        if let entry = u.entry {
            var section = members[i].value
            if case .object(var inner) = section.kind {
                if let j = inner.firstIndex(where: { $0.key == entry }) {
                    inner[j].value = value
                } else {
                    inner.append(Value.Member(key: entry, keyRange: value.range, value: value))
                }
                section.kind = .object(inner)
            }
            members[i].value = section
        } else {
            members[i].value = value
        }
        copy.kind = .object(members)
        return copy
    }
}

/// A stage unit's base, for rebuilding a variant's stage: where the overrides write,
/// and the base stage's canonical form.
struct StageReuse {
    var trie: OverrideTrie
    var json: JSON
}

/// Checks variants against a base that was validated once.
struct IncrementalChecker {
    let baseTree: SyntaxNode
    let baseDocument: Value
    let environment: [String: String]
    /// Whether the base validated without errors (a variant's own validation sees only its units).
    let baseValidated: Bool
    /// The base's IR when it built without errors: a variant rebuilds only the units it touches.
    let baseSpec: Spec?
    /// The canonical form of the base's stages, computed when a variant first touches one.
    private var baseJSON: [DocumentUnit: JSON] = [:]

    init(baseTree: SyntaxNode, baseDocument: Value, environment: [String: String], baseValidated: Bool, baseSpec: Spec?) {
        self.baseTree = baseTree
        self.baseDocument = baseDocument
        self.environment = environment
        self.baseValidated = baseValidated
        self.baseSpec = baseValidated ? baseSpec : nil
    }

    struct Result {
        var evaluation: SpecChecker.Evaluation
        var touched: Set<DocumentUnit>
        /// Equal for two variants exactly when their documents are equal.
        var identity: String
    }

    mutating func evaluate(_ overrides: [SweepVariant.Override]) -> Result {
        var tree = baseTree
        for o in overrides { tree = o.path.write(o.value, into: tree) }
        let byUnit = Dictionary(grouping: overrides, by: \.path.unit)
        let touched = Set(byUnit.keys)
        var validator = Validator(environment: environment)
        var document = baseDocument
        var identity: [String] = []
        var stageReuse: [DocumentUnit: StageReuse] = [:]
        for u in touched.sorted() {
            guard let field = SpecSchema.root.fields.first(where: { $0.key == u.section }) else { continue }
            var type = field.type
            var node = tree[u.section]
            var path = u.section
            if let entry = u.entry, case .dictionary(let valueType, _) = field.type {
                type = valueType
                node = node?[entry]
                path += ".\(entry)"
            }
            let depth = u.entry == nil ? 1 : 2
            let trie = OverrideTrie((byUnit[u] ?? []).map { $0.path.components.dropFirst(depth) })
            let base = baseDocument.unit(u)
            let reuse = trie.whole ? nil : base.map { Reuse(trie: trie, base: $0) }
            let value: Value
            if let node {
                value = validator.validate(node, as: type, path: path, reusing: reuse) ?? Value(.object([]), range: node.range).markedIncomplete
            } else if let d = field.defaultValue {
                value = validator.complete(Value(literal: d), as: type)
            } else {
                continue
            }
            document = document.replacing(u, with: value)
            Self.differences(value, base, type, reuse == nil ? nil : trie, path: u.description, into: &identity)
            if u.section == "stages", let reuse {
                if baseJSON[u] == nil { baseJSON[u] = JSON(reuse.base, completing: type) }
                stageReuse[u] = baseJSON[u].map { StageReuse(trie: trie, json: $0) }
            }
        }
        var all = validator.diagnostics
        var builder = SpecBuilder(validated: baseValidated && !validator.diagnostics.hasErrors)
        let spec = baseSpec.map { builder.rebuild($0, document: document, touched: touched, reusing: stageReuse) } ?? builder.build(document)
        all += builder.diagnostics
        if let spec { for rule in SpecChecker.rules { all += rule(spec) } }
        return Result(evaluation: SpecChecker.Evaluation(all: all, spec: all.hasErrors ? nil : spec),
                      touched: touched, identity: identity.joined(separator: "\n"))
    }

    /// Appends where `value` differs from `base`, one `path=text` line per differing part, in a
    /// canonical form: an object or list with the base's keys (or length) is compared member by
    /// member, anything else as a whole. Two variants of one base have equal lines exactly when
    /// their values are equal. Below `trie`, only the members the overrides reach are compared:
    /// the validator left the others as the base has them.
    static func differences(_ value: Value?, _ base: Value?, _ type: SchemaType?, _ trie: OverrideTrie?, path: String,
                            into out: inout [String]) {
        switch (value?.kind, base?.kind) {
        case (nil, nil):
            return
        case (.object(let a)?, .object(let b)?) where a.count == b.count && a.indices.allSatisfy({ a[$0].key == b[$0].key }):
            if let trie, !trie.whole, let keyed = Self.memberTypes(type, value, base) {
                for key in trie.keys {
                    differences(value?[key], base?[key], keyed(key), trie.below(key), path: path + "\u{1}" + key, into: &out)
                }
            } else {
                for i in a.indices { differences(a[i].value, b[i].value, nil, nil, path: path + "\u{1}" + a[i].key, into: &out) }
            }
        case (.list(let a)?, .list(let b)?) where a.count == b.count:
            for i in a.indices { differences(a[i], b[i], nil, nil, path: path + "[\(i)]", into: &out) }
        default:
            let text = value?.canonicalText ?? "\u{0}absent"
            if text != (base?.canonicalText ?? "\u{0}absent") { out.append(path + "=" + text) }
        }
    }

    /// The type of each member of an object of `type`, when the variant's value and the
    /// base's have the same case (only then are the members the trie does not reach the base's).
    private static func memberTypes(_ type: SchemaType?, _ value: Value?, _ base: Value?) -> ((String) -> SchemaType?)? {
        switch type {
        case .object(let schema)?:
            let kind = schema.discriminator.flatMap { value?[$0.key]?.string }
            if let d = schema.discriminator, base?[d.key]?.string != kind { return nil }
            let fields = schema.fields(for: kind)
            return { key in fields.first { $0.key == key }?.type }
        case .dictionary(let item, _)?:
            return { _ in item }
        default:
            return nil
        }
    }
}
