import Foundation
import Plan
import Tensor

/// The training rate the plan's times use: the calibration kept for this machine (its CPU
/// model, ISA extensions, BLAS kernels and thread count); when none is kept, a quick
/// measurement of sgemm on the calibration shapes, kept for next time (as `distill
/// calibrate` keeps it). `DISTILL_CALIBRATION=off` plans with the documented default
/// instead (reproducible output).
enum MachineRate {
    static func throughput(threads: Int = ProcessInfo.processInfo.activeProcessorCount) -> Throughput {
        let path = Throughput.calibrationPath
        if path == "off" { return .fallback }
        let machine = Machine.current.key
        if let kept = Throughput.stored(machine: machine, threads: threads, from: path) { return kept }
        let others = Calibration.machines(at: path)
        let why = others.isEmpty ? "no calibration was kept"
            : "no calibration was kept for this machine at \(threads) threads; kept for: \(others.joined(separator: "; "))"
        let measured = GEMMRate.calibrate(threads: threads, repeats: 3)
        var kept: String
        do {
            kept = try Throughput.store(sgemmGflops: measured.sgemm, threads: threads, machine: machine, busy: measured.busy, to: path)
                ? "kept in \(path)" : "not kept: an idle machine's calibration is kept"
        } catch {
            kept = "not kept: \(error.localizedDescription)"
        }
        if let busy = measured.busy { kept += "; the machine was busy: \(busy)" }
        return Throughput(sgemmGflops: measured.sgemm, source: "measured now (\(why); \(kept))")
    }
}
