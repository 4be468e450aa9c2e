import Diagnostics
import Foundation
import Plan
import Spec
import SpecSyntax
import Testing

/// One bad spec beside its expected output (apple/pkl's input/errors + output/errors).
@Suite struct GoldenDiagnosticsTests {
    static let cases = Fixtures.files(in: "errors", ext: "yaml")

    static func render(_ name: String) -> String {
        let loader = SpecLoader(workingDirectory: Fixtures.directory)
        guard let checked = SpecChecker.checkWithData(path: "errors/\(name)", loader: loader, environment: ["DATA": "/data"]) else {
            return "unreadable\n"
        }
        return DiagnosticRenderer.text(checked.diagnostics) + DiagnosticRenderer.summary(checked.diagnostics, files: 1) + "\n"
    }

    @Test(arguments: cases)
    func fixtureMatchesItsGoldenOutput(_ name: String) throws {
        let actual = Self.render(name)
        let expectedPath = (Fixtures.directory as NSString).appendingPathComponent("errors/" + name.replacingOccurrences(of: ".yaml", with: ".err"))
        if Fixtures.recording {
            try actual.write(toFile: expectedPath, atomically: true, encoding: .utf8)
            Issue.record("recorded \(expectedPath); unset DISTILL_RECORD to test")
            return
        }
        let expected = try String(contentsOfFile: expectedPath, encoding: .utf8)
        #expect(actual == expected, "golden output differs for \(name); rerun with DISTILL_RECORD=1 if the change is intended")
    }

    @Test(arguments: cases)
    func fixtureProducesTheDiagnosticItIsNamedFor(_ name: String) {
        let code = String(name.prefix(5))
        #expect(Self.render(name).contains("[\(code)]"), "\(name) does not produce \(code)")
    }

    @Test func everyDiagnosticHasAFixture() {
        let covered = Set(Self.cases.map { String($0.prefix(5)) })
        // E0109 (file too large) needs an 8 MiB file; YAMLReaderTests covers it. E0001 is a
        // bug report no spec can provoke; StageConfigTests shows every checked spec decodes.
        // E0807 and E0808 need the voxels, read when the data is prepared: RealDataCLITests runs them.
        let ids = (SyntaxDiagnostics.all + SpecDiagnostics.all + DataDiagnostics.all).map(\.code).filter { !["E0109", "E0001", "E0807", "E0808"].contains($0) }
        let missing = ids.filter { !covered.contains($0) }
        #expect(missing.isEmpty, "no golden fixture for \(missing)")
        #expect(Self.cases.count >= 40)
    }

    @Test func diagnosticCodesAreUnique() {
        let codes = (SyntaxDiagnostics.all + SpecDiagnostics.all + DataDiagnostics.all).map(\.code)
        #expect(Set(codes).count == codes.count)
    }
}
