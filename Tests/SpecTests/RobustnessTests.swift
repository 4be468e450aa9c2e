import Diagnostics
import Foundation
import Spec
import Testing

/// No input may crash or hang the checker: seeded random corruptions of real specs.
@Suite struct RobustnessTests {

    static let alphabet = Array(" \n\t:-[]{},&*!|>'\"#%@`?0123456789abcxyzé".utf8)

    @Test(arguments: ["specs/quickstart.yaml", "specs/thesis/study.yaml"])
    func corruptedSpecsAreDiagnosedNotCrashed(_ path: String) throws {
        let original = try Array(Data(contentsOf: URL(fileURLWithPath: (Fixtures.repository as NSString).appendingPathComponent(path))))
        var rng = SeededGenerator(state: 42)
        for _ in 0..<150 {
            var bytes = original
            for _ in 0..<(1 + rng.below(6)) {
                let at = rng.below(bytes.count)
                switch rng.below(4) {
                case 0: bytes[at] = Self.alphabet[rng.below(Self.alphabet.count)]
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(Self.alphabet[rng.below(Self.alphabet.count)], at: at)
                default:
                    let end = min(bytes.count, at + rng.below(40))
                    bytes.insert(contentsOf: bytes[at..<end], at: at)
                }
            }
            let checked = SpecChecker.check(source: SourceFile(displayPath: "fuzz.yaml", bytes: bytes))
            // Rendering touches every range: it must not trap either.
            _ = DiagnosticRenderer.text(checked.diagnostics)
        }
    }
}
