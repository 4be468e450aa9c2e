import Foundation
import Parity
import Tensor
import Testing

/// Every op, loss, optimiser and model of the PyTorch reference (Reference/torch,
/// copied from the study's PyTorch reference set with its README) matches within its tolerances,
/// the losses and the KD step through the trainer's own objective.
@Suite struct ParityTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Reference/torch").path

    static let cases: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        .filter { $0.hasSuffix(".safetensors") }.sorted()

    @Test func referenceCasesArePresent() {
        #expect(Self.cases.count >= 51, "expected the reference cases in \(Self.directory)")
    }

    /// The cases with convolutions again, with the direct kernel (at this CPU's width) forced wherever it applies.
    @Test(.enabled(if: DirectConvolution.isAvailable, "this CPU has neither AVX2 with FMA nor AVX-512"),
          arguments: cases.filter { ReferenceParity.usesConvolutions(path: (directory as NSString).appendingPathComponent($0)) })
    func caseMatchesPyTorchWithTheDirectKernel(_ file: String) {
        let r = ReferenceParity.run(path: (Self.directory as NSString).appendingPathComponent(file), convolutions: .direct)
        let failing = r.comparisons.filter { !$0.passed }.map { "\($0.name) (max abs \($0.maxAbs))" }
        #expect(r.passed, "\(r.name) [direct]: \(r.error ?? failing.joined(separator: ", "))")
    }

    /// The cases with convolutions again, with Winograd F(2x2, 3x3) forced wherever it applies
    /// (every 3x3 stride-1 layer, the U-Nets' included).
    @Test(arguments: cases.filter { ReferenceParity.usesConvolutions(path: (directory as NSString).appendingPathComponent($0)) })
    func caseMatchesPyTorchWithWinograd(_ file: String) {
        let r = ReferenceParity.run(path: (Self.directory as NSString).appendingPathComponent(file), convolutions: .winograd)
        let failing = r.comparisons.filter { !$0.passed }.map { "\($0.name) (max abs \($0.maxAbs))" }
        #expect(r.passed, "\(r.name) [winograd]: \(r.error ?? failing.joined(separator: ", "))")
    }

    @Test(arguments: cases)
    func caseMatchesPyTorch(_ file: String) {
        let r = ReferenceParity.run(path: (Self.directory as NSString).appendingPathComponent(file))
        let failing = r.comparisons.filter { !$0.passed }.map { "\($0.name) (max abs \($0.maxAbs))" }
        #expect(r.passed, "\(r.name): \(r.error ?? failing.joined(separator: ", "))")
    }
}
