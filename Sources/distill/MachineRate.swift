import Foundation
import Plan
import Tensor

/// The training rate the plan's times use: this machine's kept calibration; when none is
/// kept, a quick measurement of sgemm on the calibration shapes, kept for next time (as
/// `distill calibrate` keeps it). `DISTILL_CALIBRATION=off` plans with the documented
/// default instead (reproducible output).
enum MachineRate {
    static func throughput() -> Throughput {
        let path = Throughput.calibrationPath
        if path == "off" { return .fallback }
        if let kept = Throughput.stored(from: path) { return kept }
        let threads = ProcessInfo.processInfo.activeProcessorCount
        let sgemm = GEMMRate.calibrate(threads: threads, repeats: 3).sgemm
        let kept: String
        do {
            try Throughput.store(sgemmGflops: sgemm, threads: threads, to: path)
            kept = "kept in \(path)"
        } catch {
            kept = "not kept: \(error.localizedDescription)"
        }
        return Throughput(sgemmGflops: sgemm, source: "measured now (no calibration was kept; \(kept))")
    }
}
