import Diagnostics
import SpecSyntax
import StageConfig

/// Checks a YAML tree against the schema and produces typed `Value`s with
/// defaults filled in. Every problem becomes a diagnostic; validation goes on
/// past it so that one run reports everything.
struct Validator {
    var diagnostics: [Diagnostic] = []
    let environment: [String: String]

    init(environment: [String: String]) {
        self.environment = environment
    }

    /// Validates `node` (nil when the key is absent) as `type`. With `reuse`, the members of
    /// objects and dictionaries that no override reaches are the base's, not validated again
    /// (what they would say the base already said).
    mutating func validate(_ node: SyntaxNode, as type: SchemaType, path: String, reusing reuse: Reuse? = nil) -> Value? {
        switch type {
        case .string, .identifier, .path:
            guard let s = scalar(node, type, path) else { return nil }
            if case .identifier = type, !NameKind.identifier.accepts(s.text) {
                invalidName(s.text, .identifier, node.range, path)
                return nil
            }
            if case .path = type {
                guard let expanded = interpolate(s.text, node.range, path) else { return nil }
                return Value(.string(expanded), range: node.range)
            }
            return Value(.string(s.text), range: node.range)
        case .integer(let lo, let hi):
            guard let s = plainScalar(node, type, path) else { return nil }
            guard let i = Int(s.text) else {
                typeError(node, type, path, note: Double(s.text) != nil ? "'\(s.text)' is not a whole number" : nil)
                return nil
            }
            if let lo, i < lo { rangeError(node, path, "\(i) is below the minimum \(lo)") ; return nil }
            if let hi, i > hi { rangeError(node, path, "\(i) is above the maximum \(hi)") ; return nil }
            return Value(.int(i), range: node.range)
        case .number(let lo, let exclusive, let hi):
            guard let s = plainScalar(node, type, path) else { return nil }
            guard let d = Double(s.text), d.isFinite else {
                typeError(node, type, path)
                return nil
            }
            if let lo, exclusive ? d <= lo : d < lo {
                rangeError(node, path, "\(s.text) must be \(exclusive ? "greater than" : "at least") \(Value.plain(lo))")
                return nil
            }
            if let hi, d > hi { rangeError(node, path, "\(s.text) must be at most \(Value.plain(hi))"); return nil }
            return Value(.number(d), range: node.range)
        case .boolean:
            guard let s = plainScalar(node, type, path) else { return nil }
            switch s.text {
            case "true", "True", "TRUE": return Value(.bool(true), range: node.range)
            case "false", "False", "FALSE": return Value(.bool(false), range: node.range)
            default:
                let yamlOne: [String: Bool] = ["yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true, "y": true,
                                               "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false, "n": false]
                if let meant = yamlOne[s.text] {
                    diagnostics.append(Diagnostic(SpecDiagnostics.wrongType,
                        "expected true or false, found '\(s.text)'", at: node.range, path: path,
                        notes: [DiagnosticNote("'\(s.text)' is a boolean only in YAML 1.1; specs read it as a string")],
                        fixIts: [FixIt("write '\(meant)'", range: node.range, replacement: String(meant))]))
                } else {
                    typeError(node, type, path)
                }
                return nil
            }
        case .enumeration(let cases):
            guard let s = scalar(node, type, path) else { return nil }
            guard cases.contains(s.text) else {
                var fixIts: [FixIt] = []
                if let guess = Suggestions.closest(to: s.text, in: cases) {
                    fixIts.append(FixIt("did you mean '\(guess)'?", range: node.range, replacement: guess))
                }
                diagnostics.append(Diagnostic(SpecDiagnostics.unknownValue,
                    "'\(s.text)' is not one of \(cases.map { "'\($0)'" }.joined(separator: ", "))",
                    at: node.range, path: path, fixIts: fixIts))
                return nil
            }
            return Value(.string(s.text), range: node.range)
        case .list(let item, let minCount, let maxCount):
            guard let items = node.items else { typeError(node, type, path); return nil }
            if items.count < minCount || (maxCount.map { items.count > $0 } ?? false) {
                let wanted = maxCount == minCount ? "exactly \(minCount)" : maxCount.map { "\(minCount) to \($0)" } ?? "at least \(minCount)"
                diagnostics.append(Diagnostic(SpecDiagnostics.listLength,
                    "expected \(wanted) item\(maxCount == 1 && minCount == 1 ? "" : "s"), found \(items.count)", at: node.range, path: path))
                return nil
            }
            var values: [Value] = []
            var ok = true
            for (i, child) in items.enumerated() {
                if let v = validate(child, as: item, path: "\(path)[\(i)]") { values.append(v) } else { ok = false }
            }
            return ok ? Value(.list(values), range: node.range) : nil
        case .object(let schema):
            // `key:` with nothing is an empty mapping: defaults fill in, required keys are reported missing.
            if node.isNull { return validateObject([], schema, node.range, path, nil) }
            guard let entries = node.entries else { typeError(node, type, path); return nil }
            return validateObject(entries, schema, node.range, path, reuse)
        case .dictionary(let valueType, let keys):
            if node.isNull { return Value(.object([]), range: node.range) }
            guard let entries = node.entries else { typeError(node, type, path); return nil }
            var members: [Value.Member] = []
            for entry in entries {
                guard keys.accepts(entry.key) else {
                    invalidName(entry.key, keys, entry.keyRange, path)
                    continue
                }
                if let same = reuse?.untouched(entry.key) {
                    members.append(Value.Member(key: entry.key, keyRange: entry.keyRange, value: same))
                    continue
                }
                // A member with errors stays as an incomplete placeholder, so that
                // references to its name do not report it as unknown as well.
                let v = validate(entry.value, as: valueType, path: join(path, entry.key), reusing: reuse?.member(entry.key))
                    ?? Value(.object([]), range: entry.value.range).markedIncomplete
                members.append(Value.Member(key: entry.key, keyRange: entry.keyRange, value: v))
            }
            return Value(.object(members), range: node.range)
        case .oneOf(let alternatives):
            let chosen = alternatives.first { alt in
                switch (alt, node.kind) {
                case (.list, .sequence), (.object, .mapping), (.dictionary, .mapping): return true
                case (.list, _), (.object, _), (.dictionary, _): return false
                case (_, .scalar): return accepts(alt, node)
                default: return false
                }
            }
            guard let alt = chosen else { typeError(node, type, path); return nil }
            return validate(node, as: alt, path: path, reusing: reuse)
        case .any:
            return Value(.string(node.scalar?.text ?? ""), range: node.range)
        }
    }

    /// Fills defaults into a value that is already typed (a schema default).
    func complete(_ value: Value, as type: SchemaType) -> Value {
        switch type {
        case .object(let schema):
            let caseName = schema.discriminator.flatMap { value[$0.key]?.string ?? $0.defaultCase }
            var members: [Value.Member] = []
            for field in schema.fields(for: caseName) {
                if let m = value.members.first(where: { $0.key == field.key }) {
                    members.append(Value.Member(key: m.key, keyRange: m.keyRange, value: complete(m.value, as: field.type)))
                } else if let d = field.defaultValue {
                    members.append(Value.Member(key: field.key, keyRange: nil, value: complete(Value(literal: d), as: field.type)))
                }
            }
            return Value(.object(members), range: value.range)
        case .dictionary(let valueType, _):
            return Value(.object(value.members.map { Value.Member(key: $0.key, keyRange: $0.keyRange, value: complete($0.value, as: valueType)) }), range: value.range)
        case .list(let item, _, _):
            return Value(.list(value.list.map { complete($0, as: item) }), range: value.range)
        default:
            return value
        }
    }

    private mutating func validateObject(_ entries: [MappingEntry], _ schema: ObjectSchema, _ range: SourceRange, _ path: String,
                                         _ reuse: Reuse?) -> Value? {
        var caseName: String?
        var caseValid = true
        if let d = schema.discriminator {
            if let entry = entries.first(where: { $0.key == d.key }) {
                if let s = entry.value.scalar, !s.isNull, d.case(s.text) != nil {
                    caseName = s.text
                } else {
                    caseValid = false
                }
            } else if let def = d.defaultCase {
                caseName = def
            } else {
                diagnostics.append(Diagnostic(SpecDiagnostics.missingKey,
                    "missing '\(d.key)' of \(schema.name.lowercased()); one of \(d.cases.map { "'\($0.name)'" }.joined(separator: ", "))",
                    at: range, path: path))
                caseValid = false
            }
        }
        let fields = schema.fields(for: caseName)
        // The base's members stand only where the object has the base's case (a case decides fields, types and defaults).
        let reuse = reuse.flatMap { r in schema.discriminator.map { r.base[$0.key]?.string == caseName } ?? true ? r : nil }
        let known = Set(fields.map(\.key))
        // Unknown keys, with the best guess among the keys this object accepts.
        for entry in entries where !known.contains(entry.key) {
            if !caseValid, schema.allKeys.contains(entry.key) { continue }
            var notes: [DiagnosticNote] = []
            var fixIts: [FixIt] = []
            if let d = schema.discriminator, schema.allKeys.contains(entry.key), let caseName {
                let owners = d.cases.filter { $0.fields.contains { $0.key == entry.key } }.map(\.name)
                notes.append(DiagnosticNote("'\(entry.key)' applies to \(d.key) \(owners.map { "'\($0)'" }.joined(separator: ", ")), not '\(caseName)'"))
            } else if let guess = Suggestions.closest(to: entry.key, in: fields.map(\.key)) {
                fixIts.append(FixIt("did you mean '\(guess)'?", range: entry.keyRange, replacement: guess))
            } else {
                notes.append(DiagnosticNote("\(schema.name.lowercased()) keys are: \(fields.map(\.key).joined(separator: ", "))"))
            }
            diagnostics.append(Diagnostic(SpecDiagnostics.unknownKey, "unknown key '\(entry.key)' in \(describe(schema, caseName))",
                                          at: entry.keyRange, path: join(path, entry.key), notes: notes, fixIts: fixIts))
        }
        if !schema.exactlyOne.isEmpty {
            let present = entries.filter { schema.exactlyOne.contains($0.key) && !$0.value.isNull }
            if present.count != 1 {
                let choices = schema.exactlyOne.map { "'\($0)'" }.joined(separator: " or ")
                let message = present.isEmpty ? "\(schema.name.lowercased()) needs one of \(choices)"
                                              : "\(schema.name.lowercased()) takes only one of \(choices), found \(present.count)"
                diagnostics.append(Diagnostic(SpecDiagnostics.exactlyOne, message,
                                              at: present.count > 1 ? present[1].keyRange : range, path: path))
            }
        }
        var members: [Value.Member] = []
        var ok = caseValid
        for field in fields {
            if let same = reuse?.untouched(field.key) {
                members.append(Value.Member(key: field.key, keyRange: entries.first { $0.key == field.key }?.keyRange, value: same))
                continue
            }
            let entry = entries.first { $0.key == field.key }
            if let entry, !entry.value.isNull || isObjectLike(field.type) {
                if let v = validate(entry.value, as: field.type, path: join(path, field.key), reusing: reuse?.member(field.key)) {
                    members.append(Value.Member(key: field.key, keyRange: entry.keyRange, value: v))
                } else if field.required {
                    ok = false
                }
            } else if let d = field.defaultValue {
                members.append(Value.Member(key: field.key, keyRange: nil, value: complete(Value(literal: d), as: field.type)))
            } else if field.required {
                let fix = FixIt("add '\(field.key): ...'")
                diagnostics.append(Diagnostic(SpecDiagnostics.missingKey,
                    "missing required key '\(field.key)' in \(describe(schema, caseName))",
                    at: entry?.value.range ?? range, path: join(path, field.key),
                    notes: [DiagnosticNote("'\(field.key)': \(field.doc)")], fixIts: [fix]))
                ok = false
            }
        }
        // A discriminated object whose kind was invalid: report the kind itself.
        if let d = schema.discriminator, let entry = entries.first(where: { $0.key == d.key }), caseName == nil {
            _ = validate(entry.value, as: .enumeration(d.cases.map(\.name)), path: join(path, d.key))
        }
        return ok ? Value(.object(members), range: range) : Value(.object(members), range: range).markedIncomplete
    }

    private func isObjectLike(_ type: SchemaType) -> Bool {
        switch type {
        case .object, .dictionary: return true
        default: return false
        }
    }

    private func describe(_ schema: ObjectSchema, _ caseName: String?) -> String {
        if let d = schema.discriminator, let caseName { return "\(schema.name.lowercased()) (\(d.key) '\(caseName)')" }
        return schema.name.lowercased()
    }

    private func accepts(_ type: SchemaType, _ node: SyntaxNode) -> Bool {
        guard let s = node.scalar, !s.isNull else { return false }
        switch type {
        case .string, .identifier, .path, .any: return true
        case .enumeration(let cases): return cases.contains(s.text)
        case .integer: return s.style == .plain && Int(s.text) != nil
        case .number: return s.style == .plain && Double(s.text) != nil
        case .boolean: return s.style == .plain && ["true", "false"].contains(s.text)
        default: return false
        }
    }

    private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private mutating func scalar(_ node: SyntaxNode, _ type: SchemaType, _ path: String) -> Scalar? {
        guard let s = node.scalar, !s.isNull else { typeError(node, type, path); return nil }
        return s
    }

    /// A scalar that must be written unquoted and untagged to be a number or boolean.
    private mutating func plainScalar(_ node: SyntaxNode, _ type: SchemaType, _ path: String) -> Scalar? {
        guard let s = scalar(node, type, path) else { return nil }
        if s.style.isQuoted || s.tag == "tag:yaml.org,2002:str" {
            diagnostics.append(Diagnostic(SpecDiagnostics.wrongType,
                "expected \(type.expectation), found \(node.kindDescription)", at: node.range, path: path,
                fixIts: [FixIt("remove the quotes: \(s.text)", range: node.range, replacement: s.text)]))
            return nil
        }
        return s
    }

    private mutating func typeError(_ node: SyntaxNode, _ type: SchemaType, _ path: String, note: String? = nil) {
        diagnostics.append(Diagnostic(SpecDiagnostics.wrongType, "expected \(type.expectation), found \(node.kindDescription)",
                                      at: node.range, path: path, notes: note.map { [DiagnosticNote($0)] } ?? []))
    }

    private mutating func rangeError(_ node: SyntaxNode, _ path: String, _ message: String) {
        diagnostics.append(Diagnostic(SpecDiagnostics.outOfRange, message, at: node.range, path: path))
    }

    private mutating func invalidName(_ name: String, _ kind: NameKind, _ range: SourceRange, _ path: String) {
        let rule = kind == .identifier ? "letters, digits, '_' and '-', starting with a letter or '_'"
                                       : "letters, digits, '_', '-', '.' and '+', starting with a letter, digit or '_'"
        diagnostics.append(Diagnostic(SpecDiagnostics.invalidName,
            "'\(name)' is not a valid name: use \(rule), at most \(NameKind.maxLength) characters",
            at: range, path: path))
    }

    /// Expands `${NAME}` and `${NAME:-default}` from the environment.
    private mutating func interpolate(_ text: String, _ range: SourceRange, _ path: String) -> String? {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                diagnostics.append(Diagnostic(SpecDiagnostics.badInterpolation, "'${' without a closing '}' in '\(text)'",
                                              at: range, path: path))
                return nil
            }
            let body = rest[open.upperBound..<close]
            let name: Substring, fallback: Substring?
            if let sep = body.range(of: ":-") {
                name = body[..<sep.lowerBound]; fallback = body[sep.upperBound...]
            } else {
                name = body; fallback = nil
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                diagnostics.append(Diagnostic(SpecDiagnostics.badInterpolation, "'${\(body)}' is not '${NAME}' or '${NAME:-default}'",
                                              at: range, path: path))
                return nil
            }
            if let v = environment[String(name)], !v.isEmpty {
                out += v
            } else if let fallback {
                out += fallback
            } else {
                diagnostics.append(Diagnostic(SpecDiagnostics.undefinedVariable,
                    "environment variable '\(name)' is not set", at: range, path: path,
                    fixIts: [FixIt("set it, or give a default: ${\(name):-PATH}")]))
                return nil
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}

extension Value {
    /// An object that lost a required member to an error: consumers skip it.
    var markedIncomplete: Value {
        var v = self
        if case .object(var m) = v.kind {
            m.append(Value.Member(key: Value.incompleteKey, keyRange: nil, value: Value(.null)))
            v.kind = .object(m)
        }
        return v
    }

    static let incompleteKey = "\u{0}incomplete"

    /// False when validation dropped a required member.
    public var isComplete: Bool { self[Value.incompleteKey] == nil }
}
