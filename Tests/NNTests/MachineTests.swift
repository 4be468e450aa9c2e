import Foundation
@testable import Tensor
import Testing

/// The CPU's features decide which BLAS kernels run; a core set in the environment is kept.
@Suite struct MachineTests {
    static let sapphireRapids = CPU(vendor: "GenuineIntel", brand: "Intel(R) Xeon(R) Platinum", family: 6, model: 207,
                                    extensions: [.sse42, .avx, .fma, .f16c, .avx2, .avx512f, .avx512dq, .avx512bw, .avx512vl,
                                                 .avx512vnni, .avx512bf16, .amxTile, .amxBF16])
    static let zen3 = CPU(vendor: "AuthenticAMD", brand: "AMD EPYC", family: 25, model: 1, extensions: [.sse42, .avx, .fma, .f16c, .avx2])
    static let skylake = CPU(vendor: "GenuineIntel", brand: "Intel(R) Xeon(R) Gold", family: 6, model: 85,
                             extensions: [.sse42, .avx, .fma, .f16c, .avx2, .avx512f, .avx512dq, .avx512bw, .avx512vl])

    /// The Xeon that Debian's OpenBLAS 0.3.21 does not know: it reports Prescott, the features call for Cooperlake.
    @Test func anUnknownXeonGetsTheKernelsOfItsFeatures() {
        #expect(BLASCore.decide(cpu: Self.sapphireRapids, reported: "Prescott", environment: nil) == .switched(from: "Prescott", to: "Cooperlake"))
        #expect(BLASCore.decide(cpu: Self.skylake, reported: "Haswell", environment: nil) == .switched(from: "Haswell", to: "SkylakeX"))
        #expect(BLASCore.decide(cpu: Self.zen3, reported: "Sandybridge", environment: nil) == .switched(from: "Sandybridge", to: "Zen"))
        #expect(Self.sapphireRapids.vectorTier == .avx512 && Self.sapphireRapids.bf16Unit == "AMX-BF16")
    }

    @Test func aCoreThatMatchesTheFeaturesIsKept() {
        #expect(BLASCore.decide(cpu: Self.zen3, reported: "Zen", environment: nil) == .kept("Zen"))
        #expect(BLASCore.decide(cpu: Self.skylake, reported: "SkylakeX", environment: nil) == .kept("SkylakeX"))
        // A core this table does not know is OpenBLAS's business, not a guess of ours.
        #expect(BLASCore.decide(cpu: Self.zen3, reported: "Zen5", environment: nil) == .kept("Zen5"))
        #expect(BLASCore.decide(cpu: Self.zen3, reported: nil, environment: nil) == .unreported)
    }

    /// An administrator's OPENBLAS_CORETYPE stands, even a generic one on an AVX-512 CPU.
    @Test func aCoreSetInTheEnvironmentIsKept() {
        #expect(BLASCore.decide(cpu: Self.sapphireRapids, reported: "Prescott", environment: "Prescott") == .environment("Prescott"))
    }

    /// A BLAS stand-in: its core, whether a switch takes, and whether its products are right.
    final class FakeBLAS: BLASCore.Library, @unchecked Sendable {
        var current: String
        var switchTakes = true
        var wrongProductsOn: String?
        var switches: [String] = []
        init(_ core: String) { current = core }
        func core() -> String? { current }
        func switchCore(to core: String) -> Bool {
            switches.append(core)
            if switchTakes { current = core }
            return true
        }
        func reproducesReference() -> Bool { current != wrongProductsOn }
    }

    @Test func aSwitchThatTakesIsKept() {
        let blas = FakeBLAS("Prescott")
        #expect(BLASCore.configure(cpu: Self.sapphireRapids, library: blas, environment: nil) == .switched(from: "Prescott", to: "Cooperlake"))
        #expect(blas.current == "Cooperlake")
    }

    /// A core that does not take over, or that computes a wrong product, is undone.
    @Test func aSwitchThatFailsIsUndone() {
        let wrong = FakeBLAS("Prescott")
        wrong.wrongProductsOn = "Cooperlake"
        #expect(BLASCore.configure(cpu: Self.sapphireRapids, library: wrong, environment: nil) == .refused(from: "Prescott", to: "Cooperlake"))
        #expect(wrong.current == "Prescott" && wrong.switches == ["Cooperlake", "Prescott"])
        let stuck = FakeBLAS("Prescott")
        stuck.switchTakes = false
        #expect(BLASCore.configure(cpu: Self.sapphireRapids, library: stuck, environment: nil) == .refused(from: "Prescott", to: "Cooperlake"))
    }

    /// This process: on a CPU with AVX2 or better, the kernels in use are not a generic set,
    /// unless OPENBLAS_CORETYPE asked for it.
    @Test func theKernelsInUseAreNotGenericOnThisCPU() throws {
        let machine = Machine.current
        let cpu = machine.cpu
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, cpu.vectorTier >= .avx2 else { return }
        let core = try #require(machine.blas.core, "the BLAS does not report its core: \(machine.description)")
        let tier = try #require(BLASCore.tier(ofCore: core), "core \(core) is not in BLASCore's table")
        #expect(tier >= .avx2, "\(machine.description)")
        #expect(BLASCore.reproducesReference())
    }
}
