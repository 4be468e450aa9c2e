import Diagnostics
import Foundation
import SpecSyntax
import Storage

/// Reads a spec file and everything it `extends`, and merges them into one tree.
///
/// Later files override earlier ones key by key; a `null` deletes a key. Every
/// node keeps the range it was written at, so a diagnostic on a merged value
/// points into the file that wrote it.
public struct SpecLoader {
    /// Where relative display paths start (the user's working directory).
    public var workingDirectory: String
    public var limits: YAMLLimits = .default

    public init(workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.workingDirectory = workingDirectory
    }

    public struct Result {
        public var root: SyntaxNode?
        public var files: [SourceFile]
        public var diagnostics: [Diagnostic]
    }

    /// Loads `path`; an unreadable top-level file is an I/O error for the caller (nil).
    public func load(path: String) -> Result? {
        let absolute = absolutePath(path)
        guard let bytes = FileManager.default.contents(atPath: absolute) else { return nil }
        let file = SourceFile(displayPath: displayPath(absolute), bytes: Array(bytes), path: absolute)
        var result = Result(root: nil, files: [], diagnostics: [])
        result.root = compose(file, absolute: absolute, chain: [], into: &result)
        return result
    }

    /// Loads an in-memory spec (tests, editors); `extends` resolves against `directory`.
    public func load(file: SourceFile, directory: String) -> Result {
        var result = Result(root: nil, files: [], diagnostics: [])
        result.root = compose(file, absolute: (directory as NSString).appendingPathComponent(file.displayPath), chain: [], into: &result)
        return result
    }

    private func compose(_ file: SourceFile, absolute: String, chain: [String], into result: inout Result) -> SyntaxNode? {
        result.files.append(file)
        let doc = YAMLReader.read(file, limits: limits)
        result.diagnostics += doc.diagnostics
        guard var root = doc.root else { return nil }
        guard let entries = root.entries, let ext = entries.first(where: { $0.key == "extends" }) else { return root }
        root.kind = .mapping(entries.filter { $0.key != "extends" })

        var bases: [SyntaxNode] = []
        switch ext.value.kind {
        case .scalar(let s) where !s.isNull: bases = [ext.value]
        case .sequence(let items): bases = items
        default:
            result.diagnostics.append(Diagnostic(SpecDiagnostics.wrongType, "expected a path or a list of paths, found \(ext.value.kindDescription)",
                                                 at: ext.value.range, path: "extends"))
        }
        var merged: SyntaxNode?
        let directory = (absolute as NSString).deletingLastPathComponent
        for base in bases {
            guard let s = base.scalar, !s.isNull else {
                result.diagnostics.append(Diagnostic(SpecDiagnostics.wrongType, "expected a path, found \(base.kindDescription)",
                                                     at: base.range, path: "extends"))
                continue
            }
            // Relative to the extending file's folder; an absolute path as written.
            let target = FilePath.resolve(s.text, against: directory, standardized: true)
            if target == absolute || chain.contains(target) {
                let cycle = (chain + [absolute, target]).map { displayPath($0) }
                result.diagnostics.append(Diagnostic(SpecDiagnostics.extendsCycle,
                    "'\(s.text)' extends itself: \(cycle.joined(separator: " -> "))", at: base.range, path: "extends"))
                continue
            }
            // Only a spec is read: a YAML file (by its name) that is a regular file. Anything else
            // (a system file, a device) is refused unread, so no error quotes its lines.
            let isYAML = target.hasSuffix(".yaml") || target.hasSuffix(".yml")
            var info = stat()
            if !isYAML || (stat(target, &info) == 0 && info.st_mode & S_IFMT != S_IFREG) {
                result.diagnostics.append(Diagnostic(SpecDiagnostics.extendsNotASpec,
                    "'\(s.text)' is not a spec file: extends reads only .yaml and .yml files", at: base.range, path: "extends",
                    notes: [DiagnosticNote("it was not read")]))
                continue
            }
            guard let bytes = FileManager.default.contents(atPath: target) else {
                result.diagnostics.append(Diagnostic(SpecDiagnostics.unreadable, "cannot read '\(s.text)' (looked for \(displayPath(target)))",
                                                     at: base.range, path: "extends"))
                continue
            }
            let baseFile = SourceFile(displayPath: displayPath(target), bytes: Array(bytes), path: target)
            guard let baseRoot = compose(baseFile, absolute: target, chain: chain + [absolute], into: &result) else { continue }
            merged = merged.map { Self.merge($0, baseRoot) } ?? baseRoot
        }
        return merged.map { Self.merge($0, root) } ?? root
    }

    /// `over` laid on `base`: mappings merge key by key, anything else replaces; `null` deletes.
    public static func merge(_ base: SyntaxNode, _ over: SyntaxNode) -> SyntaxNode {
        guard let baseEntries = base.entries, let overEntries = over.entries else { return over }
        var entries = baseEntries
        for o in overEntries {
            if let i = entries.firstIndex(where: { $0.key == o.key }) {
                if o.value.isNull {
                    entries.remove(at: i)
                } else {
                    entries[i] = MappingEntry(key: o.key, keyRange: o.keyRange, value: merge(entries[i].value, o.value))
                }
            } else if !o.value.isNull {
                entries.append(o)
            }
        }
        return SyntaxNode(.mapping(entries), range: over.range)
    }

    func absolutePath(_ path: String) -> String {
        FilePath.resolve(path, against: workingDirectory, standardized: true)
    }

    /// A path relative to the working directory when it lies below it.
    func displayPath(_ absolute: String) -> String {
        let base = workingDirectory.hasSuffix("/") ? workingDirectory : workingDirectory + "/"
        return absolute.hasPrefix(base) ? String(absolute.dropFirst(base.count)) : absolute
    }
}
