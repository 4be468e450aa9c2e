import Diagnostics
import Foundation
import Spec
import Testing

/// No input may crash or hang the checker: seeded random corruptions of real specs.
@Suite struct RobustnessTests {
    /// SplitMix64: a tiny seeded generator so failures reproduce.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
    }

    static let alphabet = Array(" \n\t:-[]{},&*!|>'\"#%@`?0123456789abcxyzé".utf8)

    @Test(arguments: ["specs/quickstart.yaml", "specs/thesis/study.yaml"])
    func corruptedSpecsAreDiagnosedNotCrashed(_ path: String) throws {
        let original = try Array(Data(contentsOf: URL(fileURLWithPath: (Fixtures.repository as NSString).appendingPathComponent(path))))
        var rng = Generator(state: 42)
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
