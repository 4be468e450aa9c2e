import Diagnostics
import Foundation
import Plan
import Spec
import SpecSyntax
import Testing

/// The checker never crashes or hangs, whatever a user types half-finished: seeded
/// mutants of every spec in specs/ and every golden fixture (a random node deleted,
/// duplicated, retyped, emptied or cut off), and every truncated prefix of the specs.
/// Each check ends, fast, with every error located; a mutant that checks clean also plans.
@Suite struct MutationTests {
    /// Inputs: (display name, text, directory its `extends` resolve in).
    static let inputs: [(String, String, String)] = {
        var out: [(String, String, String)] = []
        for path in ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml", "specs/reproduce-thesis-bugs.yaml"] {
            let full = (Fixtures.repository as NSString).appendingPathComponent(path)
            if let text = try? String(contentsOfFile: full, encoding: .utf8) { out.append((path, text, (full as NSString).deletingLastPathComponent)) }
        }
        let errors = (Fixtures.directory as NSString).appendingPathComponent("errors")
        for name in ["../base.yaml"] + Fixtures.files(in: "errors", ext: "yaml") {
            let full = (errors as NSString).appendingPathComponent(name)
            if let text = try? String(contentsOfFile: full, encoding: .utf8) { out.append(("errors/" + name, text, errors)) }
        }
        return out
    }()


    /// A node of the YAML tree with where it was written: the value's bytes, and for a
    /// mapping entry the span from its key to the end of its value.
    struct Site { var value: Range<Int>; var entry: Range<Int>? }

    static func sites(_ node: SyntaxNode, _ out: inout [Site]) {
        switch node.kind {
        case .mapping(let entries):
            for e in entries {
                out.append(Site(value: e.value.range.start..<e.value.range.end, entry: e.keyRange.start..<max(e.keyRange.end, e.value.range.end)))
                sites(e.value, &out)
            }
        case .sequence(let items):
            for item in items {
                out.append(Site(value: item.range.start..<item.range.end, entry: nil))
                sites(item, &out)
            }
        case .scalar:
            break
        }
    }

    static let replacements = ["[1, 2]", "{a: 1}", "42", "-1", "0", "1.5e300", "\"text\"", "true", "null", "~", "''", "[]", "{}",
                               ".nan", "-.inf", "99999999999999999999", "[[]]", "{values: {}}", "x: y", "- a\n- b", "{kind: }",
                               "stages.kd.distill", "${UNSET_VARIABLE}", "&a [*a]"]

    enum Mutation: CaseIterable { case delete, duplicate, retype, empty, truncate }

    /// One mutant of `text` (UTF-8 bytes), chosen by `rng`.
    static func mutate(_ text: String, _ sites: [Site], _ rng: inout SeededGenerator) -> (String, String) {
        var bytes = Array(text.utf8)
        guard !sites.isEmpty else { return ("truncate", String(decoding: bytes.prefix(rng.below(bytes.count + 1)), as: UTF8.self)) }
        let site = rng.pick(sites)
        let value = site.value.clamped(to: 0..<bytes.count)
        let mutation = rng.pick(Mutation.allCases)
        switch mutation {
        case .delete:
            bytes.removeSubrange((site.entry ?? site.value).clamped(to: 0..<bytes.count))
        case .duplicate:
            let span = (site.entry ?? site.value).clamped(to: 0..<bytes.count)
            // A whole line (block style) or the span itself (flow style) repeated after it.
            let lineStart = bytes[..<span.lowerBound].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let block = bytes[lineStart..<span.lowerBound].allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "-") }
            let copy = block ? [UInt8(ascii: "\n")] + Array(bytes[lineStart..<span.upperBound]) : Array(", ".utf8) + Array(bytes[span])
            bytes.insert(contentsOf: copy, at: span.upperBound)
        case .retype:
            bytes.replaceSubrange(value, with: Array(rng.pick(replacements).utf8))
        case .empty:
            bytes.replaceSubrange(value, with: Array(rng.pick(["{}", "[]", "\"\"", ""]).utf8))
        case .truncate:
            bytes = Array(bytes.prefix(value.lowerBound + rng.below(max(1, value.count))))
        }
        return ("\(mutation)", String(decoding: bytes, as: UTF8.self))
    }

    /// Checks a text as a user would (and plans it when it is clean); returns the checked spec.
    @discardableResult
    static func check(_ text: String, name: String, directory: String, what: String) -> CheckedSpec {
        let start = Date()
        let checked = SpecChecker.check(source: SourceFile(displayPath: name, text: text), directory: directory, environment: [:])
        let rendered = DiagnosticRenderer.text(checked.diagnostics)
        for d in checked.diagnostics where d.severity == .error {
            #expect(d.range != nil, "\(what): unlocated error \(d.id.code): \(d.message)")
            #expect(d.id != SpecDiagnostics.internalInconsistency, "\(what): \(d.message)")
        }
        if !checked.diagnostics.hasErrors, checked.base != nil {
            _ = Planner(throughput: .fallback, specDirectory: directory).plan(checked)
        }
        #expect(!rendered.isEmpty || !checked.diagnostics.hasErrors)
        #expect(Date().timeIntervalSince(start) < 30, "\(what) took \(Date().timeIntervalSince(start)) s")  // a hang guard, not a speed claim (CI is a busy machine)
        return checked
    }

    static let mutantsPerInput = 30

    @Test(arguments: inputs.map(\.0))
    func mutantsAreDiagnosedNeverCrashed(_ input: String) throws {
        let (name, text, directory) = try #require(Self.inputs.first { $0.0 == input })
        let document = YAMLReader.read(SourceFile(displayPath: name, text: text))
        var sites: [Site] = []
        if let root = document.root { Self.sites(root, &sites) }
        var rng = SeededGenerator(state: UInt64(bitPattern: Int64(input.utf8.reduce(0) { $0 &* 31 &+ Int($1) })))
        for i in 0..<Self.mutantsPerInput {
            let (mutation, mutant) = Self.mutate(text, sites, &rng)
            Self.check(mutant, name: (name as NSString).lastPathComponent, directory: directory, what: "\(input) mutant \(i) (\(mutation))")
        }
    }

    @Test func atLeastTwoThousandMutantsRun() {
        #expect(Self.inputs.count * Self.mutantsPerInput >= 2000, "\(Self.inputs.count) inputs")
    }

    @Test(arguments: ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml", "specs/reproduce-thesis-bugs.yaml"])
    func everyTruncatedPrefixIsDiagnosed(_ input: String) throws {
        let (name, text, directory) = try #require(Self.inputs.first { $0.0 == input })
        let bytes = Array(text.utf8)
        // Every line end, and every 11th byte in between.
        var cuts = Set(bytes.indices.filter { bytes[$0] == UInt8(ascii: "\n") })
        cuts.formUnion(stride(from: 0, to: bytes.count, by: 11))
        for cut in cuts.sorted() {
            Self.check(String(decoding: bytes.prefix(cut), as: UTF8.self), name: (name as NSString).lastPathComponent, directory: directory,
                       what: "\(input) cut at byte \(cut)")
        }
    }

    /// Exit codes: the built binary on a sample of mutants says 0, 1 or 2, never a signal.
    @Test func theCLIExitsZeroOneOrTwoOnMutants() throws {
        let binary = (Fixtures.repository as NSString).appendingPathComponent(".build/debug/distill")
        try #require(FileManager.default.fileExists(atPath: binary))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-mutants-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SeededGenerator(state: 7)
        var files: [String] = []
        for input in Self.inputs.prefix(4) {
            let document = YAMLReader.read(SourceFile(displayPath: input.0, text: input.1))
            var sites: [Site] = []
            if let root = document.root { Self.sites(root, &sites) }
            for i in 0..<15 {
                let path = "\(dir)/\((input.0 as NSString).lastPathComponent)-\(i).yaml"
                try Self.mutate(input.1, sites, &rng).1.write(toFile: path, atomically: true, encoding: .utf8)
                files.append(path)
            }
        }
        for file in files {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["check", file]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationReason == .exit && [0, 1, 2].contains(p.terminationStatus), "\(file): \(p.terminationReason) \(p.terminationStatus)")
        }
    }
}
