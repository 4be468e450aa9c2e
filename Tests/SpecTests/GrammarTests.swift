import Diagnostics
import Foundation
import Spec
import SpecSyntax
import Testing

/// grammar/ is generated from the Swift types and kept in step by these tests.
@Suite struct GrammarTests {
    let grammar = (Fixtures.repository as NSString).appendingPathComponent("grammar")

    @Test func committedJSONSchemaIsCurrent() throws {
        let path = (grammar as NSString).appendingPathComponent("distill.schema.json")
        let current = SchemaExport.jsonSchema()
        if Fixtures.recording {
            try current.write(toFile: path, atomically: true, encoding: .utf8)
            Issue.record("recorded \(path)")
            return
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == current, "grammar/distill.schema.json is stale: run `make schema`")
    }

    @Test func jsonSchemaIsValidJSON() throws {
        let object = try JSONSerialization.jsonObject(with: Data(SchemaExport.jsonSchema().utf8)) as? [String: Any]
        #expect(object?["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        #expect((object?["$defs"] as? [String: Any])?["TapPair"] != nil)
    }

    @Test func readmeHoldsTheGeneratedKeyReference() throws {
        let readme = try String(contentsOfFile: (grammar as NSString).appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(SchemaExport.markdown()), "grammar/README.md's key reference is stale: paste `distill schema --format markdown`")
    }

    @Test func readmeDocumentsEveryDiagnosticWithItsExample() throws {
        let readme = try String(contentsOfFile: (grammar as NSString).appendingPathComponent("README.md"), encoding: .utf8)
        for id in SyntaxDiagnostics.all + SpecDiagnostics.all {
            #expect(readme.contains("`\(id.code)`"), "\(id.code) is not documented in grammar/README.md")
        }
        // Every example output quoted in the README is what the checker prints today.
        for fixture in GoldenDiagnosticsTests.cases {
            let marker = "<!-- example: \(fixture) -->"
            guard let start = readme.range(of: marker) else { continue }
            let rest = readme[start.upperBound...]
            guard let open = rest.range(of: "```text\n"), let close = rest[open.upperBound...].range(of: "```") else {
                Issue.record("example \(fixture) has no output block"); continue
            }
            #expect(String(rest[open.upperBound..<close.lowerBound]) == GoldenDiagnosticsTests.render(fixture), "README example \(fixture) is stale")
        }
    }
}
