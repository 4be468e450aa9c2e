import Foundation
import Spec
import Testing

/// End-to-end: the built `distill` binary, its output and exit codes.
@Suite struct CLITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var binary: String {
        // The test bundle sits beside the products on Linux.
        let products = Bundle.main.bundleURL
        let candidate = products.appendingPathComponent("distill").path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        return (repository as NSString).appendingPathComponent(".build/debug/distill")
    }

    func run(_ arguments: [String], in directory: String = repository) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func checkSpecsPasses() throws {
        let r = try run(["check", "specs"])
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.hasSuffix("0 errors, 5 warnings in 4 files\n") || r.out.contains("0 errors"))
    }

    @Test func invalidSpecExitsOneWithLocatedErrors() throws {
        let fixtures = (Self.repository as NSString).appendingPathComponent("Tests/SpecTests/Fixtures")
        let r = try run(["check", "errors/E0203-unknown-tap.yaml"], in: fixtures)
        #expect(r.status == 1)
        #expect(r.out.hasPrefix("errors/E0203-unknown-tap.yaml:6:40: error[E0203]: unknown tap 'encoder.5' of student model 'small'\n"))
        #expect(r.out.contains("     | " + String(repeating: " ", count: 39) + "^~~~~~~~~\n"))
    }

    @Test func missingFileIsAnIOError() throws {
        let r = try run(["check", "no/such/spec.yaml"])
        #expect(r.status == 2)
        #expect(r.err.contains("no such file or directory: 'no/such/spec.yaml'"))
    }

    @Test func badFlagIsAUsageError() throws {
        let r = try run(["check", "--format", "xml", "specs"])
        #expect(r.status == 64 || r.status == 2)
        #expect(r.err.contains("xml"))
    }

    @Test func jsonOutputIsParseable() throws {
        let fixtures = (Self.repository as NSString).appendingPathComponent("Tests/SpecTests/Fixtures")
        let r = try run(["check", "--format", "json", "errors/E0301-unknown-model.yaml"], in: fixtures)
        #expect(r.status == 1)
        let doc = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let first = (doc?["diagnostics"] as? [[String: Any]])?.first
        #expect(first?["id"] as? String == "E0301")
        #expect(first?["path"] as? String == "stages.student.model")
        #expect(first?["line"] as? Int == 3)
    }

    @Test func schemaCommandPrintsTheCommittedSchema() throws {
        let r = try run(["schema"])
        #expect(r.status == 0)
        let committed = try String(contentsOfFile: (Self.repository as NSString).appendingPathComponent("grammar/distill.schema.json"), encoding: .utf8)
        #expect(r.out == committed)
    }
}
