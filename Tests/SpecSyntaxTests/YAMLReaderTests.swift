import Diagnostics
import Foundation
import SpecSyntax
import Testing

@Suite struct YAMLReaderTests {
    func read(_ text: String, limits: YAMLLimits = .default) -> YAMLDocument {
        YAMLReader.read(SourceFile(displayPath: "t.yaml", text: text), limits: limits)
    }

    @Test func scalarsKeepTheirStyle() throws {
        let root = try #require(read("a: 0.1\nb: \"0.1\"\nc: yes\nd:\n").root)
        #expect(root["a"]?.scalar == Scalar("0.1"))
        #expect(root["b"]?.scalar?.style == .doubleQuoted)
        #expect(root["c"]?.scalar?.text == "yes")
        #expect(root["d"]?.isNull == true)
    }

    @Test func nodesKnowTheirPositionInUnicodeColumns() throws {
        let root = try #require(read("name: \"µ✓\"\nkey:   value\n").root)
        let range = try #require(root["key"]?.range)
        #expect(range.startPosition == SourcePosition(line: 2, column: 8))
        #expect(range.text == "value")
        let entries = try #require(root.entries)
        #expect(entries[1].keyRange.startPosition == SourcePosition(line: 2, column: 1))
    }

    @Test func libyamlErrorsAreLocated() {
        let d = read("a: [1, 2\nb: 3\n").diagnostics
        #expect(d.first?.id == SyntaxDiagnostics.syntax)
        #expect(d.first?.range != nil)
    }

    @Test func billionLaughsIsRejectedFast() {
        var lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        for i in 1...20 {
            let name = "l\(i)", prev = i == 1 ? "a" : "l\(i - 1)"
            lines.append("\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 10).joined(separator: ", ") + "]")
        }
        let start = Date()
        let d = read(lines.joined(separator: "\n")).diagnostics
        #expect(d.contains { $0.id == SyntaxDiagnostics.aliasExpansion })
        #expect(Date().timeIntervalSince(start) < 30)  // a hang guard, not a speed claim (CI is a busy machine)
    }

    @Test func deepNestingStops() {
        let text = "a: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(read(text).diagnostics.contains { $0.id == SyntaxDiagnostics.tooDeep })
    }

    @Test func oversizedFilesAreRefused() {
        var limits = YAMLLimits()
        limits.maxBytes = 16
        #expect(read("name: a longer value than sixteen bytes", limits: limits).diagnostics.first?.id == SyntaxDiagnostics.tooLarge)
    }

    @Test func invalidUTF8IsLocated() {
        let file = SourceFile(displayPath: "t.yaml", bytes: Array("a: b\nc: ".utf8) + [0xFF, 0x0A])
        let d = YAMLReader.read(file).diagnostics
        #expect(d.first?.id == SyntaxDiagnostics.invalidUTF8)
        #expect(d.first?.range?.startPosition == SourcePosition(line: 2, column: 4))
    }

    @Test func mergeKeysSupplyMissingKeysOnly() throws {
        let root = try #require(read("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n").root)
        #expect(root["child"]?["x"]?.scalar?.text == "1")
        #expect(root["child"]?["y"]?.scalar?.text == "3")
    }

    @Test func hostileInputsNeverCrash() {
        let inputs = ["", "---", "- - - -", "{", "}", "&a *a", "a: *b", "? ? ?", "!!binary x", "%YAML 9.9\n---\na", "\u{FEFF}a: 1",
                      String(repeating: "- ", count: 500), "a: |\n  \tx\n", "[*a, &a 1]", "a: !<tag:x> 1"]
        for input in inputs { _ = read(input) }
    }
}

@Suite struct SuggestionTests {
    @Test func closeNamesAreSuggested() {
        #expect(Suggestions.closest(to: "encoder.5", in: ["encoder.0", "encoder.1", "bottleneck"]) == "encoder.0")
        #expect(Suggestions.closest(to: "optimiser", in: ["optimizer", "schedule"]) == "optimizer")
        #expect(Suggestions.closest(to: "xyz", in: ["optimizer", "schedule"]) == nil)
        #expect(Suggestions.distance("ab", "ba") == 1)
    }
}
