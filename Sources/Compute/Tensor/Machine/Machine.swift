import CKernels
import Foundation

/// The machine a process computes on: its CPU and the BLAS kernels it runs. Every
/// figure `distill bench` and `calibrate` print names it, calibrations are kept per
/// machine (`key`), and done records name the machine that made them.
public struct Machine: Hashable, Sendable {
    public var cpu: CPU
    /// How OpenBLAS's core was chosen, and which runs.
    public var blas: BLASCore.Decision
    /// The BLAS library and version ("OpenBLAS 0.3.21"), when it says.
    public var blasLibrary: String?

    /// This process's machine. The first use makes OpenBLAS run the CPU's best kernels
    /// (`BLASCore.configure`): `GEMM.multiply` and `Parallel.setThreads` use it before the
    /// first product, so every product of the process runs on the one kernel set.
    public static let current: Machine = {
        let cpu = CPU.current
        let decision = BLASCore.configure(cpu: cpu)
        let library = ck_blas_config().map { String(cString: $0) }.map { config in
            config.split(separator: " ").prefix(2).joined(separator: " ")
        }
        return Machine(cpu: cpu, blas: decision, blasLibrary: library)
    }()

    /// Chooses the BLAS kernels now, if not yet done.
    @inline(__always) public static func prepare() { _ = current }

    /// The BLAS as one clause: "OpenBLAS 0.3.21, core Zen (OpenBLAS's choice)".
    public var blasSummary: String { "\(blasLibrary ?? "BLAS"), \(blas.summary)" }

    /// The lines `distill bench` and `calibrate` print above their figures.
    public var description: String {
        """
        CPU: \(cpu.name)
        ISA: \(cpu.isa) (kernels: \(cpu.vectorTier); bf16: \(cpu.bf16Unit ?? "none in hardware"))
        BLAS: \(blasSummary)
        """
    }

    /// What a kept calibration must match to be used: the CPU's model, its extensions and
    /// the BLAS kernel set (a calibration measured on another of any of them is not this machine's).
    public var key: String {
        "\(cpu.vendor) family \(cpu.family) model \(cpu.model) \(cpu.brand) | \(cpu.isa) | \(blasLibrary ?? "BLAS") \(blas.core ?? "?")"
    }
}
