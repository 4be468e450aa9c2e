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

/// Checks variants against a base that was validated once.
struct IncrementalChecker {
    let baseTree: SyntaxNode
    let baseDocument: Value
    let environment: [String: String]
    /// Whether the base validated without errors (a variant's own validation sees only its units).
    let baseValidated: Bool
    /// The base's IR when it built without errors: a variant rebuilds only the units it touches.
    let baseSpec: Spec?
    private var baseTexts: [DocumentUnit: String] = [:]

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
        let touched = Set(overrides.map(\.path.unit))
        var validator = Validator(environment: environment)
        var document = baseDocument
        var identity: [String] = []
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
            let value: Value
            if let node {
                value = validator.validate(node, as: type, path: path) ?? Value(.object([]), range: node.range).markedIncomplete
            } else if let d = field.defaultValue {
                value = validator.complete(Value(literal: d), as: type)
            } else {
                continue
            }
            document = document.replacing(u, with: value)
            let text = value.canonicalText
            if baseTexts[u] == nil { baseTexts[u] = baseDocument.unit(u)?.canonicalText ?? "" }
            if text != baseTexts[u] { identity.append("\(u)=\(text)") }
        }
        var all = validator.diagnostics
        var builder = SpecBuilder(validated: baseValidated && !validator.diagnostics.hasErrors)
        let spec = baseSpec.map { builder.rebuild($0, document: document, touched: touched) } ?? builder.build(document)
        all += builder.diagnostics
        if let spec { for rule in SpecChecker.rules { all += rule(spec) } }
        return Result(evaluation: SpecChecker.Evaluation(all: all, spec: all.hasErrors ? nil : spec),
                      touched: touched, identity: identity.joined(separator: "\n"))
    }
}
