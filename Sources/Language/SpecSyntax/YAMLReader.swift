import CYAML
import Diagnostics

/// Limits that keep a hostile file from exhausting time or memory.
public struct YAMLLimits: Sendable {
    /// Largest accepted file.
    public var maxBytes = 8 << 20
    /// Deepest accepted nesting of mappings and lists.
    public var maxDepth = 64
    /// Most nodes a document may have once every alias is expanded
    /// (a billion-laughs file passes this after a few levels and is rejected).
    public var maxExpandedNodes = 200_000

    public init() {}
    public static let `default` = YAMLLimits()
}

/// The result of reading one file: a located tree (nil when nothing usable was
/// read) plus everything that was wrong. The reader never throws and never traps.
public struct YAMLDocument: Sendable {
    public var root: SyntaxNode?
    public var diagnostics: [Diagnostic]
}

/// The YAML front end over libyaml's event API.
public enum YAMLReader {
    public static func read(_ file: SourceFile, limits: YAMLLimits = .default) -> YAMLDocument {
        var diagnostics: [Diagnostic] = []
        if file.bytes.count > limits.maxBytes {
            diagnostics.append(Diagnostic(SyntaxDiagnostics.tooLarge,
                "file is \(file.bytes.count) bytes; specs are limited to \(limits.maxBytes) bytes",
                at: SourceRange(file: file, start: 0, end: 0)))
            return YAMLDocument(root: nil, diagnostics: diagnostics)
        }
        if let bad = firstInvalidUTF8(file.bytes) {
            diagnostics.append(Diagnostic(SyntaxDiagnostics.invalidUTF8,
                "invalid UTF-8 byte 0x\(String(file.bytes[bad], radix: 16, uppercase: true)); specs must be UTF-8 text",
                at: SourceRange(file: file, start: bad, end: bad + 1)))
            return YAMLDocument(root: nil, diagnostics: diagnostics)
        }
        // Tabs in indentation are reported, then read as spaces (same byte length,
        // so every offset stays valid) so that the rest of the file is still checked.
        var input = file.bytes
        for offset in indentationTabs(file.bytes) {
            diagnostics.append(Diagnostic(SyntaxDiagnostics.tab,
                "tab in indentation; YAML indents with spaces only",
                at: SourceRange(file: file, start: offset, end: offset + 1),
                fixIts: [FixIt("replace the tab with spaces", range: SourceRange(file: file, start: offset, end: offset + 1), replacement: "  ")]))
            input[offset] = UInt8(ascii: " ")
        }
        var builder = TreeBuilder(file: file, limits: limits)
        builder.run(input)
        diagnostics += builder.diagnostics
        return YAMLDocument(root: builder.root, diagnostics: diagnostics)
    }

    /// Offset of the first byte that breaks UTF-8, if any.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let length: Int
            switch b {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: return i
            }
            guard i + length <= bytes.count else { return i }
            for k in 1..<length where bytes[i + k] & 0xC0 != 0x80 { return i + k }
            if length == 3 {
                let v = (UInt32(b & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6)
                if v < 0x800 || (0xD800...0xDFFF).contains(v) { return i }
            } else if length == 4 {
                let v = (UInt32(b & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12)
                if v < 0x10000 || v > 0x10FFFF { return i }
            }
            i += length
        }
        return nil
    }

    /// Offsets of tab characters among a line's leading white space.
    static func indentationTabs(_ bytes: [UInt8]) -> [Int] {
        var tabs: [Int] = []
        var atLineStart = true
        for (i, b) in bytes.enumerated() {
            switch b {
            case UInt8(ascii: "\n"): atLineStart = true
            case UInt8(ascii: "\t") where atLineStart: tabs.append(i)
            case UInt8(ascii: " "), UInt8(ascii: "\r"): break
            default: atLineStart = false
            }
        }
        return tabs
    }
}

/// Turns libyaml's event stream into a `SyntaxNode` tree.
private struct TreeBuilder {
    let file: SourceFile
    let limits: YAMLLimits
    var diagnostics: [Diagnostic] = []
    var root: SyntaxNode?

    private enum Container {
        case sequence(start: Int, anchor: String?, items: [SyntaxNode], size: Int)
        case mapping(start: Int, anchor: String?, entries: [MappingEntry], pendingKey: SyntaxNode?,
                     seen: [String: SourceRange], size: Int)
    }

    private var stack: [Container] = []
    private var anchors: [String: (node: SyntaxNode, size: Int)] = [:]
    private var documents = 0
    private var stopped = false

    init(file: SourceFile, limits: YAMLLimits) {
        self.file = file
        self.limits = limits
    }

    mutating func run(_ input: [UInt8]) {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            diagnostics.append(Diagnostic(SyntaxDiagnostics.syntax, "the YAML parser could not start (out of memory)", at: nil))
            return
        }
        defer { yaml_parser_delete(parser) }
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, input.count))
        defer { buffer.deallocate() }
        _ = buffer.initialize(from: input)
        yaml_parser_set_input_string(parser, buffer.baseAddress, input.count)

        var event = yaml_event_t()
        while !stopped {
            guard yaml_parser_parse(parser, &event) == 1 else {
                reportParserError(parser.pointee)
                return
            }
            let done = event.type == YAML_STREAM_END_EVENT
            handle(event)
            yaml_event_delete(&event)
            if done { break }
        }
    }

    private func offset(_ mark: yaml_mark_t) -> Int {
        file.offset(line: Int(mark.line), scalarColumn: Int(mark.column))
    }

    private func range(_ event: yaml_event_t) -> SourceRange {
        SourceRange(file: file, start: offset(event.start_mark), end: offset(event.end_mark))
    }

    private static func string(_ p: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
        guard let p else { return nil }
        let n = length ?? strlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    private mutating func reportParserError(_ p: yaml_parser_t) {
        let problem = Self.string(UnsafeMutablePointer(mutating: p.problem.map { UnsafeRawPointer($0).assumingMemoryBound(to: yaml_char_t.self) })) ?? "malformed YAML"
        let at = offset(p.problem_mark)
        var notes: [DiagnosticNote] = []
        if let ctx = p.context {
            let context = String(cString: ctx)
            let c = offset(p.context_mark)
            notes.append(DiagnosticNote(context, at: SourceRange(file: file, start: c, end: c + 1)))
        }
        diagnostics.append(Diagnostic(SyntaxDiagnostics.syntax, problem,
                                      at: SourceRange(file: file, start: at, end: min(at + 1, file.bytes.count)), notes: notes))
    }

    private mutating func handle(_ event: yaml_event_t) {
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                diagnostics.append(Diagnostic(SyntaxDiagnostics.severalDocuments,
                    "a second YAML document starts here; a spec file holds exactly one document",
                    at: range(event), notes: [DiagnosticNote("split the documents into separate files, or combine them with 'extends:'")]))
                stopped = true
            }
        case YAML_MAPPING_START_EVENT:
            let anchor = Self.string(event.data.mapping_start.anchor)
            push(.mapping(start: offset(event.start_mark), anchor: anchor, entries: [], pendingKey: nil, seen: [:], size: 1), event)
        case YAML_SEQUENCE_START_EVENT:
            let anchor = Self.string(event.data.sequence_start.anchor)
            push(.sequence(start: offset(event.start_mark), anchor: anchor, items: [], size: 1), event)
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
            guard let top = stack.popLast() else { return }
            let end = offset(event.end_mark)
            switch top {
            case .sequence(let start, let anchor, let items, let size):
                add(SyntaxNode(.sequence(items), range: SourceRange(file: file, start: start, end: end)), size: size, anchor: anchor)
            case .mapping(let start, let anchor, let entries, _, _, let size):
                add(SyntaxNode(.mapping(applyingMergeKeys(entries)), range: SourceRange(file: file, start: start, end: end)),
                    size: size, anchor: anchor)
            }
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let text = Self.string(s.value, length: Int(s.length)) ?? ""
            let style: ScalarStyle
            switch s.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            var tag = Self.string(s.tag)
            if tag == "!" { tag = nil }  // the non-specific tag on quoted scalars
            let node = SyntaxNode(.scalar(Scalar(text, style: style, tag: tag)), range: range(event))
            add(node, size: 1, anchor: Self.string(s.anchor))
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                diagnostics.append(Diagnostic(SyntaxDiagnostics.unknownAlias, "alias '*\(name)' names no anchor defined before it",
                                              at: range(event)))
                return
            }
            var node = target.node
            node.range = range(event)
            add(node, size: target.size, anchor: nil)
        default:
            break
        }
    }

    /// YAML's merge key: `<<: *base` (or a list of aliases) supplies every key the
    /// mapping does not write itself; keys written explicitly win.
    mutating func applyingMergeKeys(_ entries: [MappingEntry]) -> [MappingEntry] {
        guard let merge = entries.first(where: { $0.key == "<<" }) else { return entries }
        var result = entries.filter { $0.key != "<<" }
        let sources = merge.value.items ?? [merge.value]
        for source in sources {
            guard let sourceEntries = source.entries else {
                diagnostics.append(Diagnostic(SyntaxDiagnostics.badMerge,
                    "'<<' merges mappings (usually '<<: *anchor'), found \(source.kindDescription)", at: source.range))
                continue
            }
            for entry in sourceEntries where !result.contains(where: { $0.key == entry.key }) {
                result.append(entry)
            }
        }
        return result
    }

    private mutating func push(_ container: Container, _ event: yaml_event_t) {
        if stack.count >= limits.maxDepth {
            diagnostics.append(Diagnostic(SyntaxDiagnostics.tooDeep,
                "nesting deeper than \(limits.maxDepth) levels; the rest of the file was not read",
                at: range(event)))
            stopped = true
            return
        }
        stack.append(container)
    }

    private mutating func add(_ node: SyntaxNode, size: Int, anchor: String?) {
        if let anchor { anchors[anchor] = (node, size) }
        guard let top = stack.popLast() else {
            if root == nil { root = node }
            return
        }
        switch top {
        case .sequence(let start, let a, var items, let total):
            items.append(node)
            stack.append(.sequence(start: start, anchor: a, items: items, size: total + size))
            checkExpansion(total + size, node)
        case .mapping(let start, let a, var entries, let pendingKey, var seen, let total):
            if let key = pendingKey {
                let keyText = key.scalar?.text ?? ""
                if let first = seen[keyText] {
                    diagnostics.append(Diagnostic(SyntaxDiagnostics.duplicateKey, "duplicate key '\(keyText)'",
                        at: key.range, notes: [DiagnosticNote("first defined here", at: first)]))
                } else {
                    seen[keyText] = key.range
                    entries.append(MappingEntry(key: keyText, keyRange: key.range, value: node))
                }
                stack.append(.mapping(start: start, anchor: a, entries: entries, pendingKey: nil, seen: seen, size: total + size))
                checkExpansion(total + size, node)
            } else {
                var key = node
                if node.scalar == nil {
                    diagnostics.append(Diagnostic(SyntaxDiagnostics.complexKey,
                        "a key must be a plain name, not \(node.kindDescription)", at: node.range))
                    key = SyntaxNode(.scalar(Scalar("<complex key>")), range: node.range)
                }
                stack.append(.mapping(start: start, anchor: a, entries: entries, pendingKey: key, seen: seen, size: total))
            }
        }
    }

    private mutating func checkExpansion(_ size: Int, _ node: SyntaxNode) {
        guard size > limits.maxExpandedNodes, !stopped else { return }
        diagnostics.append(Diagnostic(SyntaxDiagnostics.aliasExpansion,
            "aliases expand this document past \(limits.maxExpandedNodes) nodes; the rest of the file was not read",
            at: node.range))
        stopped = true
    }
}
