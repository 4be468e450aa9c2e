import CKernels
import Foundation

/// Which of OpenBLAS's kernel sets runs, and why.
///
/// Debian's OpenBLAS picks its kernels at start-up from the CPU's model number, and an
/// OpenBLAS older than the CPU does not know the model: on a Xeon of family 6 model 207
/// (AVX-512, AMX), 0.3.21 falls back to its generic Prescott kernels and runs sgemm at a
/// fifth of the SkylakeX kernels' rate. So the choice here reads the CPU's features instead:
/// when the core OpenBLAS chose needs less than the CPU has, the core for the CPU's vector
/// tier replaces it, before the first product. A core type set in the environment
/// (OPENBLAS_CORETYPE, perhaps set by an administrator because a kernel misbehaves on the
/// CPU) is always kept.
public enum BLASCore {
    /// How the core in use came to be chosen.
    public enum Decision: Hashable, Sendable {
        /// OPENBLAS_CORETYPE was set when the process started: OpenBLAS ran that core.
        case environment(String)
        /// OpenBLAS's own choice, which matches the CPU's features (or is a core this table does not know).
        case kept(String)
        /// OpenBLAS chose `from`; the CPU's features call for `to`, which now runs.
        case switched(from: String, to: String)
        /// `to` was tried and did not reproduce a reference product, so `from` runs.
        case refused(from: String, to: String)
        /// The BLAS linked in does not report a core (not a dynamic-architecture OpenBLAS).
        case unreported

        /// The core whose kernels run, when the BLAS says.
        public var core: String? {
            switch self {
            case .environment(let c), .kept(let c): c
            case .switched(_, let to): to
            case .refused(let from, _): from
            case .unreported: nil
            }
        }

        /// One clause for the machine line: "core Zen (OpenBLAS's choice)".
        public var summary: String {
            switch self {
            case .environment(let c): "core \(c) (set by OPENBLAS_CORETYPE)"
            case .kept(let c): "core \(c) (OpenBLAS's choice)"
            case .switched(let from, let to): "core \(to) (chosen from the CPU's features; OpenBLAS chose \(from))"
            case .refused(let from, let to): "core \(from) (\(to) was tried and gave a wrong product)"
            case .unreported: "core not reported by this BLAS"
            }
        }
    }

    /// The vector tier each of OpenBLAS's x86-64 cores (as `openblas_get_corename` names
    /// them) needs; nil for a name this table does not know.
    public static func tier(ofCore name: String) -> CPU.VectorTier? {
        switch name.lowercased() {
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
             "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat":
            return .sse
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator":
            return .avx
        case "haswell", "zen":
            return .avx2
        case "skylakex", "cooperlake", "sapphirerapids":
            return .avx512
        default:
            return nil
        }
    }

    /// The core for a CPU's features: Cooperlake where AVX-512 comes with BF16 (it adds bf16
    /// GEMM kernels to SkylakeX's), SkylakeX with AVX-512, Zen or Haswell with AVX2 (the same
    /// kernels, blocked for each vendor's caches), Sandybridge with AVX. Later OpenBLAS
    /// releases map the CPUs they know (Zen 4 among them) by the same features.
    public static func best(for cpu: CPU) -> String? {
        switch cpu.vectorTier {
        case .avx512: cpu.has(.avx512bf16) ? "Cooperlake" : "SkylakeX"
        case .avx2: cpu.vendor == "AuthenticAMD" ? "Zen" : "Haswell"
        case .avx: "Sandybridge"
        case .sse: nil
        }
    }

    /// What to do, given the CPU, the core OpenBLAS reports and OPENBLAS_CORETYPE.
    /// `switched` here is a proposal: `configure` tries it and may refuse it.
    public static func decide(cpu: CPU, reported: String?, environment: String?) -> Decision {
        guard let reported else { return .unreported }
        if let environment, !environment.isEmpty { return .environment(reported) }
        guard let have = tier(ofCore: reported), let best = best(for: cpu), have < cpu.vectorTier else { return .kept(reported) }
        return .switched(from: reported, to: best)
    }

    /// Decides and carries out the decision in this process. Runs once, before the first
    /// product (`Machine.current`).
    static func configure(cpu: CPU) -> Decision {
        configure(cpu: cpu, library: OpenBLAS(), environment: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"])
    }

    /// What `configure` needs of the BLAS: its core, a way to switch it, and a check that a
    /// product is right (the tests give a stand-in that misbehaves on demand).
    protocol Library {
        func core() -> String?
        func switchCore(to core: String) -> Bool
        func reproducesReference() -> Bool
    }

    /// The OpenBLAS linked into this process.
    struct OpenBLAS: Library {
        func core() -> String? { ck_blas_core().map { String(cString: $0) } }
        func switchCore(to core: String) -> Bool { ck_blas_switch_core(core) != 0 }
        func reproducesReference() -> Bool { BLASCore.reproducesReference() }
    }

    /// Carries out `decide`'s proposal: the proposed core must take over (the library reads it
    /// back) and reproduce a reference product, else the library's own choice is restored.
    static func configure(cpu: CPU, library: some Library, environment: String?) -> Decision {
        let decision = decide(cpu: cpu, reported: library.core(), environment: environment)
        guard case .switched(let from, let to) = decision else { return decision }
        guard library.switchCore(to: to), library.core()?.lowercased() == to.lowercased(), library.reproducesReference() else {
            _ = library.switchCore(to: from)
            return .refused(from: from, to: to)
        }
        return decision
    }

    /// Whether sgemm reproduces the naive product on a shape that takes the kernels' main
    /// and edge paths (within float rounding of a 67-term sum).
    static func reproducesReference() -> Bool {
        let (m, n, k) = (37, 53, 67)
        let a = (0..<(m * k)).map { Float(($0 * 7) % 13) / 13 - 0.5 }
        let b = (0..<(k * n)).map { Float(($0 * 5) % 11) / 11 - 0.5 }
        var fast = [Float](repeating: 0, count: m * n), slow = fast
        GEMM.sgemm(a, transposeA: false, b, transposeB: false, &fast, m: m, n: n, k: k)
        GEMM.multiplyNaive(a, transposeA: false, b, transposeB: false, &slow, m: m, n: n, k: k)
        return zip(fast, slow).allSatisfy { abs($0 - $1) <= 1e-4 }
    }
}
