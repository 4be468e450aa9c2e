import Foundation
import Testing

/// ARCHITECTURE.md's layers, kept true: every target of Package.swift lives in the folder of a
/// layer the document lists, `Sources/<layer>/<target>`, and depends only on targets of its own
/// layer and those below, but for the upward edges listed here (each one struck when it goes).
@Suite struct LayeringTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// Edges that still point up (ARCHITECTURE.md says why): issue 49.
    static let knownUpwardEdges: Set<Edge> = [Edge(from: "Plan", to: "Medical")]

    struct Edge: Hashable, CustomStringConvertible {
        var from: String, to: String
        var description: String { "\(from) -> \(to)" }
    }

    struct Target {
        var name: String, path: String?, dependencies: [String]
    }

    /// The layers in ARCHITECTURE.md's numbered list, bottom first.
    static func layers() throws -> [String] {
        let text = try String(contentsOfFile: repository + "/ARCHITECTURE.md", encoding: .utf8)
        let item = /^\d+\. `Sources\/(\w+)`/.anchorsMatchLineEndings()
        return text.matches(of: item).map { String($0.1) }
    }

    /// Package.swift's targets: each `.target(`, `.systemLibrary(` or `.executableTarget(` call,
    /// its name, its path and the targets among its dependencies (not products of other packages).
    static func targets() throws -> [Target] {
        let text = try String(contentsOfFile: repository + "/Package.swift", encoding: .utf8)
        let call = /\.(?:target|systemLibrary|executableTarget)\(/
        return try text.matches(of: call).map { m in
            let body = try balanced(text, from: m.range.upperBound, open: "(", close: ")")
            let name = try #require(body.firstMatch(of: /name: "([^"]+)"/)).1
            let path = body.firstMatch(of: /path: "([^"]+)"/).map { String($0.1) }
            var dependencies: [String] = []
            if let list = body.range(of: "dependencies: [") {
                let inside = try balanced(body, from: list.upperBound, open: "[", close: "]")
                let targetsOnly = inside.replacing(/\.product\([^)]*\)/, with: "")
                dependencies = targetsOnly.matches(of: /"([^"]+)"/).map { String($0.1) }
            }
            return Target(name: String(name), path: path, dependencies: dependencies)
        }
    }

    struct Unbalanced: Error, CustomStringConvertible {
        var open: Character
        var description: String { "Package.swift: a '\(open)' is never closed" }
    }

    /// The text from `start` (just after an opening bracket) to its matching close.
    static func balanced(_ text: String, from start: String.Index, open: Character, close: Character) throws -> String {
        var depth = 1, i = start
        while i < text.endIndex {
            if text[i] == open { depth += 1 } else if text[i] == close { depth -= 1 }
            if depth == 0 { return String(text[start..<i]) }
            i = text.index(after: i)
        }
        throw Unbalanced(open: open)
    }

    /// The edges of `targets` that point up `layers` (bottom first), and the targets that live in no layer's folder.
    static func upwardEdges(_ targets: [Target], layers: [String]) -> (edges: Set<Edge>, misplaced: [String]) {
        let rank = Dictionary(uniqueKeysWithValues: layers.enumerated().map { ($1, $0) })
        var layerOf: [String: Int] = [:], misplaced: [String] = []
        for t in targets {
            let parts = (t.path ?? "").split(separator: "/").map(String.init)
            guard parts.count == 3, parts[0] == "Sources", parts[2] == t.name, let r = rank[parts[1]] else {
                misplaced.append("\(t.name) (path \(t.path ?? "none"))")
                continue
            }
            layerOf[t.name] = r
        }
        var edges: Set<Edge> = []
        for t in targets {
            guard let mine = layerOf[t.name] else { continue }
            for d in t.dependencies {
                guard let theirs = layerOf[d] else { misplaced.append("\(d), which \(t.name) depends on"); continue }
                if theirs > mine { edges.insert(Edge(from: t.name, to: d)) }
            }
        }
        return (edges, misplaced)
    }

    @Test func everyTargetLivesInALayerAndDependsDownward() throws {
        let layers = try Self.layers()
        #expect(layers.count >= 8, "ARCHITECTURE.md lists its layers as `1. \\`Sources/<layer>\\``: found \(layers)")
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.repository + "/Sources").filter { !$0.hasPrefix(".") }
        #expect(Set(folders) == Set(layers), "Sources/ holds one folder per layer of ARCHITECTURE.md")
        // Benchmarks/SpecBench, a developer's tool outside Sources, is not part of the layers.
        let targets = try Self.targets().filter { $0.path.map { $0.hasPrefix("Sources/") } ?? true }
        #expect(targets.count >= 20, "targets read from Package.swift: \(targets.map(\.name))")
        let (upward, misplaced) = Self.upwardEdges(targets, layers: layers)
        #expect(misplaced.isEmpty, "every target lives in Sources/<layer>/<target>: \(misplaced)")
        let unexpected = upward.subtracting(Self.knownUpwardEdges)
        #expect(unexpected.isEmpty, "dependencies that point up a layer: \(unexpected.sorted { $0.description < $1.description })")
        let gone = Self.knownUpwardEdges.subtracting(upward)
        #expect(gone.isEmpty, "no longer upward, strike them from knownUpwardEdges and ARCHITECTURE.md: \(gone)")
    }

    /// The check itself: an upward edge added to the manifest's targets is found, and a target
    /// outside a layer's folder is named.
    @Test func anEdgeThatPointsUpIsFound() throws {
        let layers = try Self.layers()
        var targets = try Self.targets().filter { $0.path.map { $0.hasPrefix("Sources/") } ?? true }
        let storage = try #require(targets.firstIndex { $0.name == "Storage" })
        #expect(targets[storage].path == "Sources/Base/Storage" && targets[storage].dependencies.isEmpty)
        #expect(!(try #require(targets.first { $0.name == "Interchange" })).dependencies.contains("SwiftProtobuf"), "products are not targets")
        targets[storage].dependencies.append("Runtime")
        targets.append(Target(name: "Loose", path: "Sources/Loose", dependencies: []))
        let (upward, misplaced) = Self.upwardEdges(targets, layers: layers)
        #expect(upward.contains(Edge(from: "Storage", to: "Runtime")))
        #expect(misplaced == ["Loose (path Sources/Loose)"])
    }
}
