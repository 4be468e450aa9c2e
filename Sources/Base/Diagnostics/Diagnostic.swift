/// How bad a diagnostic is.
public enum Severity: String, Sendable, Comparable, CaseIterable {
    case note, warning, error

    private var rank: Int { switch self { case .note: 0; case .warning: 1; case .error: 2 } }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// A stable diagnostic identity, declared once in a layer's catalog and
/// documented in grammar/README.md.
public struct DiagnosticID: Hashable, Sendable {
    /// Stable code such as `E0203` or `W0401`.
    public let code: String
    public let severity: Severity
    /// A short, fixed summary used in documentation ("unknown tap").
    public let title: String

    public init(_ code: String, _ severity: Severity, _ title: String) {
        self.code = code
        self.severity = severity
        self.title = title
    }
}

/// A secondary message attached to a diagnostic, optionally with its own location.
public struct DiagnosticNote: Hashable, Sendable {
    public var message: String
    public var range: SourceRange?
    public init(_ message: String, at range: SourceRange? = nil) {
        self.message = message
        self.range = range
    }
}

/// A suggested edit: replace the text at `range` with `replacement`.
public struct FixIt: Hashable, Sendable {
    public var message: String
    public var range: SourceRange?
    public var replacement: String?
    public init(_ message: String, range: SourceRange? = nil, replacement: String? = nil) {
        self.message = message
        self.range = range
        self.replacement = replacement
    }
}

/// One finding about an input: a value, never an exception.
public struct Diagnostic: Hashable, Sendable {
    public var id: DiagnosticID
    public var severity: Severity
    public var message: String
    public var range: SourceRange?
    /// Where in the document's data the problem is, e.g. `stages.kd.distill.taps.ee.student`.
    public var path: String?
    public var notes: [DiagnosticNote]
    public var fixIts: [FixIt]

    public init(_ id: DiagnosticID, _ message: String, at range: SourceRange?, path: String? = nil,
                notes: [DiagnosticNote] = [], fixIts: [FixIt] = [], severity: Severity? = nil) {
        self.id = id
        self.severity = severity ?? id.severity
        self.message = message
        self.range = range
        self.path = path
        self.notes = notes
        self.fixIts = fixIts
    }

    public var isError: Bool { severity == .error }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.isError } }
    public var errorCount: Int { filter { $0.severity == .error }.count }
    public var warningCount: Int { filter { $0.severity == .warning }.count }

    /// Sorted by file, then position, then code; exact duplicates removed.
    public func sortedForOutput() -> [Diagnostic] {
        var seen = Set<Diagnostic>()
        let unique = filter { seen.insert($0).inserted }
        return unique.enumerated().sorted { a, b in
            let ka = a.element.sortKey, kb = b.element.sortKey
            if ka.file != kb.file { return ka.file < kb.file }
            if ka.offset != kb.offset { return ka.offset < kb.offset }
            if ka.code != kb.code { return ka.code < kb.code }
            return a.offset < b.offset
        }.map(\.element)
    }
}

extension Diagnostic {
    fileprivate var sortKey: (file: String, offset: Int, code: String) {
        (range?.file.displayPath ?? "", range?.start ?? -1, id.code)
    }
}
