import Foundation

/// Renders diagnostics like a compiler:
///
///     specs/kd.yaml:23:18: error[E0203]: unknown tap 'encoder.5' of model 's1'
///        23 |       student: encoder.5
///           |                ^~~~~~~~~
///     note: 's1' (unet, depth 2) has taps: input, encoder.0, ...
public enum DiagnosticRenderer {
    /// Text for a terminal or a log: every diagnostic with its source line and notes.
    public static func text(_ diagnostics: [Diagnostic]) -> String {
        var out = ""
        for d in diagnostics {
            out += header(d.range, "\(d.severity.rawValue)[\(d.id.code)]", d.message)
            if let r = d.range { out += snippet(r) }
            if let path = d.path, !path.isEmpty { out += "   = at \(path)\n" }
            for note in d.notes {
                out += header(note.range, "note", note.message)
                if let r = note.range { out += snippet(r) }
            }
            for fix in d.fixIts {
                out += "help: \(fix.message)\n"
            }
        }
        return out
    }

    /// One summary line: `2 errors, 1 warning in 3 files`.
    public static func summary(_ diagnostics: [Diagnostic], files: Int) -> String {
        func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        return "\(plural(diagnostics.errorCount, "error")), \(plural(diagnostics.warningCount, "warning")) in \(plural(files, "file"))"
    }

    /// Machine-readable form for editors and CI.
    public static func json(_ diagnostics: [Diagnostic], files: Int) -> String {
        func location(_ r: SourceRange?) -> [String: Any] {
            guard let r else { return [:] }
            let s = r.startPosition, e = r.endPosition
            return ["file": r.file.displayPath, "line": s.line, "column": s.column,
                    "endLine": e.line, "endColumn": e.column]
        }
        let items: [[String: Any]] = diagnostics.map { d in
            var item = location(d.range)
            item["id"] = d.id.code
            item["severity"] = d.severity.rawValue
            item["message"] = d.message
            if let p = d.path { item["path"] = p }
            item["notes"] = d.notes.map { n -> [String: Any] in
                var o = location(n.range); o["message"] = n.message; return o
            }
            item["fixits"] = d.fixIts.map { f -> [String: Any] in
                var o = location(f.range); o["message"] = f.message
                if let r = f.replacement { o["replacement"] = r }
                return o
            }
            return item
        }
        let doc: [String: Any] = ["diagnostics": items, "errors": diagnostics.errorCount,
                                  "warnings": diagnostics.warningCount, "files": files]
        guard let data = try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private static func header(_ range: SourceRange?, _ label: String, _ message: String) -> String {
        guard let r = range else { return "\(label): \(message)\n" }
        let p = r.startPosition
        return "\(r.file.displayPath):\(p.line):\(p.column): \(label): \(message)\n"
    }

    private static func snippet(_ r: SourceRange) -> String {
        let start = r.startPosition
        let line = r.file.lineText(start.line)
        let number = String(start.line)
        let gutter = String(repeating: " ", count: 3 + number.count)
        // Keep tabs in the indentation so the caret lines up with the text above it.
        let prefix = String(line.unicodeScalars.prefix(start.column - 1).map { $0 == "\t" ? "\t" : " " })
        let end = r.endPosition
        let lineLength = line.unicodeScalars.count
        let lastColumn = end.line == start.line ? end.column : lineLength + 1
        let width = max(1, min(lastColumn, lineLength + 1) - start.column)
        let marker = "^" + String(repeating: "~", count: width - 1)
        return "   \(number) | \(line)\n\(gutter) | \(prefix)\(marker)\n"
    }
}
