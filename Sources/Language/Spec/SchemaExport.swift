import Foundation
import StageConfig

/// Renders `SpecSchema` as JSON Schema (draft 2020-12) and as the Markdown key
/// reference of grammar/README.md. Both are generated, never written by hand.
public enum SchemaExport {
    /// The document a spec is checked against by an editor. A spec without `extends`
    /// is validated against the full language; a spec with `extends` holds only the
    /// keys it lays over its bases, so it is validated against the overlay form of the
    /// same language: the same keys, types, enumerations and ranges, nothing required,
    /// and `null` accepted wherever it deletes a key. Lists are replaced whole by an
    /// overlay, so their items are complete values.
    public static func jsonSchema() -> String {
        var defs: [String: Any] = [:]
        let full = type(.object(SpecSchema.root), .full, &defs)
        let overlay = type(.object(SpecSchema.root), .overlay, &defs)
        let doc: [String: Any] = [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://distillery.invalid/grammar/distill.schema.json",
            "title": "Distillery spec, version \(SpecSchema.version)",
            "description": SpecSchema.root.doc + " A spec with `extends` is an overlay of its bases: every key optional, `null` deletes one.",
            "if": ["required": ["extends"]], "then": overlay, "else": full,
            "$defs": defs,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys]) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// A whole spec, or an overlay laid over one by `extends`.
    enum Mode {
        case full, overlay
        func name(_ o: ObjectSchema) -> String { self == .full ? o.name : o.name + "Overlay" }
    }

    private static func objectSchema(_ o: ObjectSchema, _ mode: Mode, _ defs: inout [String: Any]) -> [String: Any] {
        var properties: [String: Any] = [:]
        var required: [String] = []
        for f in o.fields {
            properties[f.key] = property(f, in: o, mode, &defs)
            if f.required { required.append(f.key) }
        }
        var out: [String: Any] = ["type": "object", "description": o.doc, "additionalProperties": false]
        if let d = o.discriminator {
            var kind: [String: Any] = ["enum": d.cases.map(\.name), "description": d.cases.map { "\($0.name): \($0.doc)" }.joined(separator: " ")]
            if let def = d.defaultCase { kind["default"] = def } else { required.append(d.key) }
            properties[d.key] = mode == .overlay ? nullable(kind) : kind
            var branches: [[String: Any]] = []
            for c in d.cases {
                var caseRequired: [String] = []
                for f in c.fields {
                    properties[f.key] = property(f, in: o, mode, &defs)
                    if f.required { caseRequired.append(f.key) }
                }
                let allowed = Set(c.fields.map(\.key))
                let foreign = Set(d.cases.flatMap { $0.fields.map(\.key) }).subtracting(allowed).subtracting(o.fields.map(\.key)).sorted()
                var then: [String: Any] = [:]
                if !caseRequired.isEmpty, mode == .full { then["required"] = caseRequired }
                // Keys of another kind are refused (in an overlay, `key: null` still deletes one).
                if !foreign.isEmpty {
                    then["not"] = ["anyOf": foreign.map { key -> [String: Any] in
                        mode == .full ? ["required": [key]] : ["required": [key], "properties": [key: ["not": ["type": "null"]]]]
                    }]
                }
                // An overlay may leave the kind to its base: its keys are then checked against no case.
                let explicit: [String: Any] = ["properties": [d.key: ["const": c.name]], "required": [d.key]]
                let condition: [String: Any] = d.defaultCase == c.name && mode == .full
                    ? ["anyOf": [["not": ["required": [d.key]]], explicit]] : explicit
                if !then.isEmpty { branches.append(["if": condition, "then": then]) }
            }
            if !branches.isEmpty { out["allOf"] = branches }
        }
        if !o.exactlyOne.isEmpty, mode == .full { out["oneOf"] = o.exactlyOne.map { ["required": [$0]] } }
        out["properties"] = properties
        if !required.isEmpty, mode == .full { out["required"] = required }
        return out
    }

    /// In an overlay, `key: null` deletes the key from the base.
    private static func nullable(_ t: [String: Any]) -> [String: Any] {
        var out: [String: Any] = ["anyOf": [["type": "null"], t.filter { $0.key != "description" && $0.key != "default" }]]
        if let d = t["description"] { out["description"] = d }
        if let d = t["default"] { out["default"] = d }
        return out
    }

    private static func property(_ f: Field, in o: ObjectSchema, _ mode: Mode, _ defs: inout [String: Any]) -> [String: Any] {
        var p = type(f.type, mode, &defs)
        // A recipe value may be left to the data.
        if AutoRecipe.takesAuto(o.name, f.key) { p = ["anyOf": [["const": AutoRecipe.word], p]] }
        let existing = p["description"] as? String
        p["description"] = existing.map { "\(f.doc) \($0)" } ?? f.doc
        if case .object = f.type { p["description"] = f.doc }
        if let d = f.defaultValue { p["default"] = json(Value(literal: d).kind) }
        return mode == .overlay ? nullable(p) : p
    }

    private static func type(_ t: SchemaType, _ mode: Mode, _ defs: inout [String: Any]) -> [String: Any] {
        switch t {
        case .string: return ["type": "string"]
        case .identifier: return ["type": "string", "pattern": NameKind.identifier.pattern]
        case .path: return ["type": "string", "description": "(`${NAME}` and `${NAME:-default}` are expanded)"]
        case .integer(let lo, let hi):
            var o: [String: Any] = ["type": "integer"]
            if let lo { o["minimum"] = lo }
            if let hi { o["maximum"] = hi }
            return o
        case .number(let lo, let exclusive, let hi):
            var o: [String: Any] = ["type": "number"]
            if let lo { o[exclusive ? "exclusiveMinimum" : "minimum"] = lo }
            if let hi { o["maximum"] = hi }
            return o
        case .boolean: return ["type": "boolean"]
        case .enumeration(let cases): return ["enum": cases]
        case .list(let item, let lo, let hi):
            // An overlay replaces a list whole: its items are complete values.
            var o: [String: Any] = ["type": "array", "items": type(item, .full, &defs)]
            if lo > 0 { o["minItems"] = lo }
            if let hi { o["maxItems"] = hi }
            return o
        case .object(let o):
            let name = mode.name(o)
            if defs[name] == nil {
                defs[name] = [:]  // reserve the name before recursing
                defs[name] = objectSchema(o, mode, &defs)
            }
            return ["$ref": "#/$defs/\(name)"]
        case .dictionary(let value, let keys):
            let v = type(value, mode, &defs)
            return ["type": "object", "propertyNames": ["pattern": keys.pattern], "additionalProperties": mode == .overlay ? nullable(v) : v]
        case .oneOf(let alternatives):
            return ["oneOf": alternatives.map { type($0, mode, &defs) }]
        case .any:
            return [:]
        }
    }

    static func json(_ v: Value.Kind) -> Any {
        switch v {
        case .null: return NSNull()
        case .bool(let b): return b
        case .int(let i): return i
        case .number(let d): return d
        case .string(let s): return s
        case .list(let items): return items.map { json($0.kind) }
        case .object(let members): return Dictionary(members.map { ($0.key, json($0.value.kind)) }, uniquingKeysWith: { a, _ in a })
        }
    }

    // MARK: Markdown

    /// The key reference: one table per object, in the order a reader meets them.
    public static func markdown() -> String {
        var out = ""
        var seen = Set<String>()
        var queue = [SpecSchema.root]
        while !queue.isEmpty {
            let o = queue.removeFirst()
            guard seen.insert(o.name).inserted else { continue }
            out += "### \(o.name)\n\n\(o.doc)\n\n"
            out += table(o.fields, in: o, &queue)
            if let d = o.discriminator {
                out += "\n`\(d.key)` chooses the kind\(d.defaultCase.map { " (default `\($0)`)" } ?? ""):\n\n"
                for c in d.cases {
                    out += "- `\(d.key): \(c.name)`: \(c.doc)\n"
                    if !c.fields.isEmpty {
                        out += "\n" + table(c.fields, in: o, &queue).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n\n"
                    }
                }
            }
            if !o.exactlyOne.isEmpty { out += "\nExactly one of \(o.exactlyOne.map { "`\($0)`" }.joined(separator: ", ")).\n" }
            out += "\n"
        }
        return out
    }

    private static func table(_ fields: [Field], in o: ObjectSchema, _ queue: inout [ObjectSchema]) -> String {
        guard !fields.isEmpty else { return "" }
        var out = "| key | type | default | meaning |\n|---|---|---|---|\n"
        for f in fields {
            let def = f.required ? "required" : f.defaultValue.map { "`\(Value(literal: $0).canonicalText)`" } ?? "-"
            let auto = AutoRecipe.takesAuto(o.name, f.key) ? " or `\(AutoRecipe.word)`" : ""
            out += "| `\(f.key)` | \(describe(f.type, &queue))\(auto) | \(def) | \(f.doc.replacingOccurrences(of: "|", with: "\\|")) |\n"
        }
        return out
    }

    private static func describe(_ t: SchemaType, _ queue: inout [ObjectSchema]) -> String {
        switch t {
        case .string: return "string"
        case .identifier: return "name"
        case .path: return "path"
        case .integer(let lo, let hi): return "integer" + bounds(lo.map(Double.init), false, hi.map(Double.init))
        case .number(let lo, let ex, let hi): return "number" + bounds(lo, ex, hi)
        case .boolean: return "boolean"
        case .enumeration(let cases): return cases.map { "`\($0)`" }.joined(separator: " \\| ")
        case .list(let item, _, _): return "list of \(describe(item, &queue))"
        case .object(let o): queue.append(o); return "[\(o.name)](#\(o.name.lowercased()))"
        case .dictionary(let v, _): return "map of name to \(describe(v, &queue))"
        case .oneOf(let alts): return alts.map { describe($0, &queue) }.joined(separator: " or ")
        case .any: return "any"
        }
    }

    private static func bounds(_ lo: Double?, _ exclusive: Bool, _ hi: Double?) -> String {
        switch (lo, hi) {
        case (nil, nil): return ""
        case (let l?, nil): return " \(exclusive ? ">" : ">=") \(Value.plain(l))"
        case (nil, let h?): return " <= \(Value.plain(h))"
        case (let l?, let h?): return " in \(exclusive ? "(" : "[")\(Value.plain(l)), \(Value.plain(h))]"
        }
    }
}
