import Diagnostics

/// The YAML front end's diagnostic catalog. Every id is documented in grammar/README.md.
public enum SyntaxDiagnostics {
    public static let syntax = DiagnosticID("E0101", .error, "YAML syntax error")
    public static let duplicateKey = DiagnosticID("E0102", .error, "duplicate key")
    public static let severalDocuments = DiagnosticID("E0103", .error, "several documents in one file")
    public static let tab = DiagnosticID("E0104", .error, "tab in indentation")
    public static let invalidUTF8 = DiagnosticID("E0105", .error, "invalid UTF-8")
    public static let aliasExpansion = DiagnosticID("E0106", .error, "aliases expand too far")
    public static let tooDeep = DiagnosticID("E0107", .error, "nesting too deep")
    public static let complexKey = DiagnosticID("E0108", .error, "key is not a scalar")
    public static let tooLarge = DiagnosticID("E0109", .error, "file too large")
    public static let unknownAlias = DiagnosticID("E0110", .error, "unknown alias")
    public static let badMerge = DiagnosticID("E0111", .error, "merge key needs a mapping")

    public static let all: [DiagnosticID] = [
        syntax, duplicateKey, severalDocuments, tab, invalidUTF8, aliasExpansion, tooDeep,
        complexKey, tooLarge, unknownAlias, badMerge,
    ]
}
