import Diagnostics
import SpecSyntax
import StageConfig

/// A path into the spec document: `stages.kd.distill.taps.ee.weight`, `stages.kd.loss[0].weight`.
public struct SpecPath: Hashable, Sendable, CustomStringConvertible {
    public enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    public var components: [Component]

    /// Parses dotted keys with optional `[i]` indices; nil when malformed.
    public init?(_ text: String) {
        var comps: [Component] = []
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = Substring(part)
            guard let open = rest.firstIndex(of: "[") ?? Optional(rest.endIndex) else { return nil }
            let key = rest[..<open]
            guard !key.isEmpty else { return nil }
            comps.append(.key(String(key)))
            rest = rest[open...]
            while !rest.isEmpty {
                guard rest.first == "[", let close = rest.firstIndex(of: "]"),
                      let i = Int(rest[rest.index(after: rest.startIndex)..<close]), i >= 0 else { return nil }
                comps.append(.index(i))
                rest = rest[rest.index(after: close)...]
            }
        }
        guard !comps.isEmpty else { return nil }
        components = comps
    }

    public var description: String {
        var out = ""
        for c in components {
            switch c {
            case .key(let k): out += out.isEmpty ? k : ".\(k)"
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    /// Checks the path against the schema and the document it will be written into;
    /// returns a reason when it addresses nothing.
    func problem(in root: SyntaxNode) -> (message: String, suggestion: String?)? {
        var type = SchemaType.object(SpecSchema.root)
        var node: SyntaxNode? = root
        var walked: [String] = []
        for (i, c) in components.enumerated() {
            let here = walked.isEmpty ? "the spec" : "'\(walked.joined(separator: "."))'"
            switch (c, type) {
            case (.key(let k), .object(let schema)):
                if i == 0, k == "sweep" || k == "extends" { return ("a sweep cannot set '\(k)'", nil) }
                let caseName = schema.discriminator.flatMap { d in node?[d.key]?.scalar?.text ?? d.defaultCase }
                let fields = schema.fields(for: caseName)
                guard let f = fields.first(where: { $0.key == k }) else {
                    return ("\(here) has no key '\(k)'", Suggestions.closest(to: k, in: fields.map(\.key)))
                }
                type = f.type
                node = node?[k]
            case (.key(let k), .dictionary(let valueType, _)):
                let names = node?.entries?.map(\.key) ?? []
                guard names.contains(k) else {
                    let listing = names.isEmpty ? "" : " (it has \(names.joined(separator: ", ")))"
                    return ("\(here) has no entry '\(k)'\(listing)", Suggestions.closest(to: k, in: names))
                }
                type = valueType
                node = node?[k]
            case (.index(let n), .list(let item, _, _)):
                let count = node?.items?.count ?? 0
                guard n < count else { return ("\(here) has \(count) item\(count == 1 ? "" : "s"); [\(n)] is past the end", nil) }
                type = item
                node = node?.items?[n]
            default:
                return ("\(here) cannot be indexed by '\(SpecPath.describe(c))'", nil)
            }
            walked.append(SpecPath.describe(c))
        }
        return nil
    }

    static func describe(_ c: Component) -> String {
        switch c {
        case .key(let k): return k
        case .index(let i): return "[\(i)]"
        }
    }

    /// The tree with `value` written at this path; missing mapping keys are created.
    func write(_ value: SyntaxNode, into node: SyntaxNode) -> SyntaxNode {
        write(value, into: node, at: components[...])
    }

    private func write(_ value: SyntaxNode, into node: SyntaxNode, at rest: ArraySlice<Component>) -> SyntaxNode {
        guard let first = rest.first else { return value }
        var copy = node
        switch first {
        case .key(let k):
            var entries = node.entries ?? []
            if let i = entries.firstIndex(where: { $0.key == k }) {
                entries[i].value = write(value, into: entries[i].value, at: rest.dropFirst())
            } else {
                let empty = SyntaxNode(.mapping([]), range: value.range)
                entries.append(MappingEntry(key: k, keyRange: value.range, value: write(value, into: empty, at: rest.dropFirst())))
            }
            copy.kind = .mapping(entries)
        case .index(let n):
            var items = node.items ?? []
            if n < items.count { items[n] = write(value, into: items[n], at: rest.dropFirst()) }
            copy.kind = .sequence(items)
        }
        return copy
    }
}
