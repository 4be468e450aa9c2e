import Foundation
import Testing

/// The JSON Schema an editor validates specs with (grammar/distill.schema.json),
/// checked with a real JSON Schema 2020-12 validator (Debian's python3-jsonschema,
/// which `make test` installs): it accepts every spec the checker accepts, and it
/// rejects the type, enumeration, range and unknown-key errors that it can express.
@Suite struct EditorSchemaTests {
    static let python = "/usr/bin/python3"
    static let schema = (Fixtures.repository as NSString).appendingPathComponent("grammar/distill.schema.json")
    static let validator = (Fixtures.repository as NSString).appendingPathComponent("grammar/tools/validate.py")
    static let errors = (Fixtures.directory as NSString).appendingPathComponent("errors")

    /// file -> (valid, first errors), from grammar/tools/validate.py.
    static func validate(_ files: [String]) throws -> [String: (valid: Bool, errors: [String])] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [validator, schema] + files
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try #require(p.terminationStatus <= 1, "the validator did not run (`make test-deps` installs python3-jsonschema): \(problem)")
        var results: [String: (Bool, [String])] = [:]
        for line in text.split(separator: "\n") {
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let file = o["file"] as? String else { continue }
            results[file] = ((o["valid"] as? Bool) ?? false, (o["errors"] as? [String]) ?? [])
        }
        try #require(results.count == files.count, "validator output: \(text) \(problem)")
        return results
    }

    /// The spec shown in README.md's tour, written out.
    static func readmeTour() throws -> String {
        let readme = try String(contentsOfFile: (Fixtures.repository as NSString).appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "## A 30-second tour of a spec\n\n```yaml\n"))
        let end = try #require(readme[start.upperBound...].range(of: "```"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("distill-readme-tour-\(UUID().uuidString).yaml").path
        try String(readme[start.upperBound..<end.lowerBound]).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Fixtures the checker gives only warnings: valid specs, as far as any schema can tell.
    static let warningFixtures = Fixtures.files(in: "errors", ext: "yaml").filter { $0.hasPrefix("W") }

    @Test func everySpecAndEveryValidExampleValidates() throws {
        let tour = try Self.readmeTour()
        defer { try? FileManager.default.removeItem(atPath: tour) }
        let specs = ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml", "specs/reproduce-thesis-bugs.yaml"]
            .map { (Fixtures.repository as NSString).appendingPathComponent($0) }
        let files = specs + [tour] + Self.warningFixtures.map { (Self.errors as NSString).appendingPathComponent($0) }
        #expect(files.count >= 14)
        for (file, result) in try Self.validate(files) {
            #expect(result.valid, "\(file): \(result.errors.joined(separator: "; "))")
        }
    }

    /// Fixtures whose error the schema cannot express, and why (the test fails when one
    /// of them becomes expressible, so that this list stays true).
    static let checkerOnly: [String: String] = [
        "E0201-analyze-orientation-on-phantom.yaml": "a key that one of its siblings (phantom) rules out",
        "E0202-variant-value-type.yaml": "a sweep value's type depends on the path the axis writes it to",
        "E0202-yes-is-not-boolean.yaml": "YAML 1.1 readers (PyYAML, some editors) take `yes` for true; the checker reads YAML 1.2",
        "E0204-missing-key.yaml": "a spec with `extends` may take the key from its base: only the composed spec lacks it",
        "E0204-missing-kind.yaml": "likewise for a discriminator's `kind`",
        "E0206-two-channels.yaml": "1 or 3 channels: a gap inside the range",
        "E0208-exactly-one.yaml": "the base holds the other key; only the composed spec has both",
        "E0209-empty-axis.yaml": "an axis with no values is found while expanding the sweep",
        "E0201-patch-with-size.yaml": "'size' is ruled out by 'patch', and only the composed spec has both",
        "E0206-kernel-side.yaml": "odd kernel sides only: gaps inside the range",
        "E0209-volume-levels.yaml": "the counts of kernels and pools follow the length of widths",
        "E0205-slice-split-of-volumes.yaml": "'unit: slice' is ruled out by a key elsewhere ('patch')",
        "E0201-mirror-on-slices.yaml": "'evaluate.mirror' is ruled out by the absence of 'data.preprocess.patch'",
    ]

    /// The codes of type, enumeration, range, name and key errors: what a schema can see.
    static let schemaCodes = ["E0201", "E0202", "E0204", "E0205", "E0206", "E0207", "E0208", "E0209", "E0210"]

    @Test func theSchemaRejectsTheTypeEnumRangeAndKeyErrors() throws {
        let fixtures = Fixtures.files(in: "errors", ext: "yaml").filter { f in Self.schemaCodes.contains { f.hasPrefix($0) } }
        #expect(fixtures.count >= 15)
        let results = try Self.validate(fixtures.map { (Self.errors as NSString).appendingPathComponent($0) })
        for fixture in fixtures {
            let result = try #require(results[(Self.errors as NSString).appendingPathComponent(fixture)])
            if let why = Self.checkerOnly[fixture] {
                #expect(result.valid, "\(fixture) is now rejected by the schema (\(result.errors)); drop it from checkerOnly (\(why))")
            } else {
                #expect(!result.valid, "\(fixture) passes the schema although the checker rejects it")
            }
        }
    }
}
