import Foundation
import Plan
import Testing

/// Every results document in docs/results says which code produced it (the runtime
/// format of its stages and the commit) and how to produce it again, so that a
/// reader can tell a stale number from a current one.
@Suite struct ResultsDocumentsTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var documents: [String] {
        let dir = repository + "/docs/results"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".md") }.sorted().map { dir + "/" + $0 }
    }

    @Test func thereAreResults() {
        #expect(Self.documents.count >= 2, "\(Self.documents)")
    }

    @Test(arguments: documents)
    func aResultNamesItsRuntimeCommitAndCommands(_ path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let name = (path as NSString).lastPathComponent
        let formats = text.matches(of: /runtime format (\d+)/).compactMap { Int($0.1) }
        #expect(!formats.isEmpty, "\(name) does not say which runtime format its stages have")
        #expect(formats.allSatisfy { $0 == RuntimeFormat.version },
                "\(name) was produced with runtime format \(formats), this code writes \(RuntimeFormat.version): regenerate it")
        #expect(text.contains(/at commit `[0-9a-f]{7,40}`/), "\(name) does not name the commit that produced it")
        #expect(text.contains("distill sweep specs/"), "\(name) does not give the command that trains it")
        #expect(text.contains("distill report specs/"), "\(name) does not give the command that writes its report")
    }
}
