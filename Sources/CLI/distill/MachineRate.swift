import Foundation
import Hashing
import Plan
import Runtime
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
        if var kept = Throughput.stored(machine: machine, threads: threads, from: path) {
            kept.adopt(MeasuredSteps.kept(machine: machine, threads: threads, build: build, at: path))
            return kept
        }
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
        var rate = Throughput(sgemmGflops: measured.sgemm, source: "measured now (\(why); \(kept))")
        rate.adopt(MeasuredSteps.kept(machine: machine, threads: threads, build: build, at: path))
        return rate
    }

    /// A plan whose stage times come from work measured on this machine: `make` plans with a
    /// throughput; with `measure`, the plan's work not yet measured here (each distinct
    /// training step and forward pass) is timed now (StepTimer), kept in the calibration file
    /// for the next plan, and the plan made again. `DISTILL_CALIBRATION=off` measures nothing.
    static func plan(measure: Bool, threads: Int = ProcessInfo.processInfo.activeProcessorCount, _ make: (Throughput) -> ExecutionPlan) -> ExecutionPlan {
        var rate = throughput(threads: threads)
        let first = make(rate)
        guard measure, Throughput.calibrationPath != "off" else { return first }
        #if DEBUG
        // A debug build's steps run many times slower than the release build that trains: not this machine's times.
        status("note: a debug build measures no steps (its times are not a release build's); stage times are planned from FLOPs\n")
        return first
        #else
        var seen = Set<String>(), missing: [MeasuredWork] = []
        for s in first.stages { for w in s.cost.work where rate.steps[w.key] == nil && seen.insert(w.key).inserted { missing.append(w) } }
        guard !missing.isEmpty else { return first }
        Parallel.setThreads(threads)
        var measured: [(work: MeasuredWork, measurement: MeasuredSteps.Measurement)] = []
        let started = Date()
        // The process as a stage finds it: the runtime loaded (BLAS's buffers too, which its
        // first product allocates), no stage's memory yet.
        let n = 512, ones = [Float](repeating: 1, count: n * n)
        var product = [Float](repeating: 0, count: n * n)
        ones.withUnsafeBufferPointer { a in
            product.withUnsafeMutableBufferPointer { c in
                guard let a = a.baseAddress, let c = c.baseAddress else { return }
                GEMM.multiply(a, transposeA: false, a, transposeB: false, c, m: n, n: n, k: n)
            }
        }
        BufferPool.releaseIdle()
        let process = PeakMemory.currentBytes()
        for w in missing {
            status("measuring the \(w.description) on \(threads) thread\(threads == 1 ? "" : "s"): ")
            do {
                let m = try StepTimer.measure(w)
                measured.append((w, m))
                status(String(format: "%.3f s", m.seconds) + (m.peakBytes.map { ", \(Format.bytes($0))" } ?? "") + "\n")
            } catch {
                status("not measured (\(error)); its stage is planned from FLOPs\n")
            }
        }
        do {
            try MeasuredSteps.keep(measured, process: process, machine: Machine.current.key, threads: threads, build: build)
        } catch {
            status("the measurements are not kept: \(error.localizedDescription)\n")
        }
        status(String(format: "measured %d kinds of work in %.0f s, kept for the next plan on this machine\n", measured.count, Date().timeIntervalSince(started)))
        var all = Dictionary(uniqueKeysWithValues: measured.map { ($0.work.key, $0.measurement) })
        if let process { all[MeasuredSteps.processKey] = MeasuredSteps.Measurement(seconds: 0, peakBytes: process) }
        rate.adopt(all)
        return make(rate)
        #endif
    }

    static func status(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    /// This build of the runtime: the first 16 hex digits of the SHA-256 of the running executable
    /// (read once per process, by the first plan, submit or status that reads or keeps step measurements;
    /// never with DISTILL_CALIBRATION=off). Step times belong to the code
    /// that measured them.
    static let build: String = {
        guard let file = FileHandle(forReadingAtPath: "/proc/self/exe") ?? FileHandle(forReadingAtPath: CommandLine.arguments[0]) else {
            return "unknown"
        }
        defer { try? file.close() }
        var hash = SHA256()
        while let chunk = try? file.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hash.update($0) }
        }
        return String(hash.finalize().prefix(16))
    }()
}
