import Foundation
import StageConfig

/// How fast this machine trains, for time estimates.
///
/// `distill calibrate` measures the OpenBLAS sgemm rate on convolution-shaped
/// products and stores it per machine; training of the study's small-channel
/// networks reaches about a quarter of that rate (perf.md: PyTorch gets 22 to 39
/// GFLOP/s of a 147 GFLOP/s sgemm on the students, 65 to 76 on the teacher), so
/// estimates use `efficiency` x the measured rate. Without a kept calibration the
/// commands measure the rate quickly and keep it; the documented default of
/// 25 GFLOP/s is what `DISTILL_CALIBRATION=off` plans with.
public struct Throughput: Hashable, Sendable {
    /// Effective training throughput in GFLOP/s.
    public var gflops: Double
    /// Where the figure comes from, shown beside every estimate.
    public var source: String
    /// Seconds per call of work measured on this machine (`MeasuredWork.key`): where a stage's
    /// work is here, its time is built from these, not from FLOPs.
    public var steps: [String: Double] = [:]
    /// Resident memory each measured work added at its peak, by the same keys; and a
    /// process's own before any stage (`MeasuredSteps.processKey`).
    public var stepBytes: [String: Int] = [:]

    /// Keeps `measured` as this throughput's measurements.
    public mutating func adopt(_ measured: [String: MeasuredSteps.Measurement]) {
        for (key, m) in measured {
            if key != MeasuredSteps.processKey { steps[key] = m.seconds }
            if let b = m.peakBytes { stepBytes[key] = b }
        }
    }

    public static let defaultGflops = 25.0
    public static let efficiency = 0.25
    public static let fallback = Throughput(gflops: defaultGflops, source: "default \(Int(defaultGflops)) GFLOP/s (run `distill calibrate`)")

    public init(gflops: Double, source: String) {
        self.gflops = gflops
        self.source = source
    }

    /// The calibration file: $DISTILL_CALIBRATION, else ~/.cache/distillery/calibration.json
    /// (`off`: plan with the documented default and measure nothing). One file holds an entry
    /// per machine (`Calibration.Entry`): a home folder shared by nodes of several CPU kinds
    /// keeps each kind's rate.
    public static var calibrationPath: String {
        if let p = ProcessInfo.processInfo.environment["DISTILL_CALIBRATION"], !p.isEmpty { return p }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        return "\(home)/.cache/distillery/calibration.json"
    }

    /// The rate of a measured sgemm rate, its source saying how it was measured.
    public init(sgemmGflops sgemm: Double, source: String) {
        self.init(gflops: sgemm * Self.efficiency,
                  source: "\(source): sgemm \(Int(sgemm.rounded())) GFLOP/s x \(Self.efficiency) = \(Int((sgemm * Self.efficiency).rounded())) GFLOP/s")
    }

    /// The calibration kept for `machine` at `threads`, if one is: nil when the file keeps
    /// none, or only ones measured on another CPU, ISA, BLAS kernel or thread count.
    public static func stored(machine: String, threads: Int, from path: String = calibrationPath) -> Throughput? {
        guard let entry = Calibration.entry(machine: machine, at: path), entry.threads == threads, entry.sgemmGflops > 0 else { return nil }
        let busy = entry.busy.map { "; measured while the machine was busy (\($0)): rerun `distill calibrate` when it is idle" } ?? ""
        return Throughput(sgemmGflops: entry.sgemmGflops, source: "calibrated \(entry.measured)\(busy)")
    }

    /// Keeps a measurement for `machine`. A measurement taken while the machine was busy never
    /// replaces one taken while it was idle; it is kept, flagged, only where nothing better is.
    /// Returns whether it was kept.
    @discardableResult
    public static func store(sgemmGflops: Double, threads: Int, machine: String, busy: String?, to path: String = calibrationPath) throws -> Bool {
        if busy != nil, let kept = Calibration.entry(machine: machine, at: path), kept.threads == threads, kept.busy == nil { return false }
        try Calibration.update(machine: machine, Calibration.Entry(sgemmGflops: sgemmGflops, threads: threads, busy: busy,
                                                                  measured: ISO8601DateFormatter().string(from: Date())), at: path)
        return true
    }

    /// The threads the calibration of `machine` measured with (what a node of `--cores-per-node` is compared with).
    public static func calibratedThreads(machine: String, from path: String = calibrationPath) -> Int {
        Calibration.entry(machine: machine, at: path)?.threads ?? 2
    }

    var json: JSON { .object(["gflops": .number(gflops), "source": .string(source)]) }
}

/// The calibration file: one JSON object with an entry per machine under "machines" (keyed by
/// the CPU's model, its extensions and the BLAS kernel set: `Machine.key`) and the interconnect's
/// figures at the top level. Each measurement updates its own keys.
public enum Calibration {
    /// One machine's measurement.
    public struct Entry: Equatable, Sendable {
        public var sgemmGflops: Double
        public var threads: Int
        /// Why the measurement may be low (load from other processes, repeats far apart), or nil.
        public var busy: String?
        public var measured: String

        var json: JSON {
            var o: [String: JSON] = ["sgemm_gflops": .number(sgemmGflops), "threads": .int(threads), "measured": .string(measured),
                                     "host": .string(ProcessInfo.processInfo.hostName)]
            if let busy { o["busy"] = .string(busy) }
            return .object(o)
        }

        init(sgemmGflops: Double, threads: Int, busy: String?, measured: String) {
            (self.sgemmGflops, self.threads, self.busy, self.measured) = (sgemmGflops, threads, busy, measured)
        }

        init?(_ json: JSON) {
            guard let sgemm = json["sgemm_gflops"]?.number, let threads = json["threads"]?.int else { return nil }
            self.init(sgemmGflops: sgemm, threads: threads, busy: json["busy"]?.string, measured: json["measured"]?.string ?? "?")
        }
    }

    static func document(at path: String) -> [String: JSON] {
        FileManager.default.contents(atPath: path).flatMap(JSON.parse)?.object ?? [:]
    }

    /// The entry kept for `machine`, if any.
    public static func entry(machine: String, at path: String = Throughput.calibrationPath) -> Entry? {
        document(at: path)["machines"]?.object?[machine].flatMap(Entry.init)
    }

    /// The machines the file keeps entries for (what `plan` names when none is this one).
    public static func machines(at path: String = Throughput.calibrationPath) -> [String] {
        document(at: path)["machines"]?.object.map { Array($0.keys).sorted() } ?? []
    }

    static func update(machine: String, _ entry: Entry, at path: String) throws {
        var doc = document(at: path)
        var machines = doc["machines"]?.object ?? [:]
        machines[machine] = entry.json
        doc["machines"] = .object(machines)
        try write(doc, to: path)
    }

    /// Sets top-level fields (the interconnect's).
    public static func update(_ fields: [String: JSON], at path: String = Throughput.calibrationPath) throws {
        var doc = document(at: path)
        for (k, v) in fields { doc[k] = v }
        try write(doc, to: path)
    }

    static func write(_ doc: [String: JSON], to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let tmp = path + ".tmp"
        try Data(JSON.object(doc).pretty.utf8).write(to: URL(fileURLWithPath: tmp))
        // rename(2) replaces the old calibration atomically.
        guard rename(tmp, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}

/// How fast ranks exchange gradients: the bus bandwidth and per-message latency of an
/// allreduce, for the communication term of a data-parallel stage. A ring allreduce
/// of B bytes over k ranks moves 2(k-1)/k x B bytes through each link and takes
/// 2(k-1) latencies.
public struct Interconnect: Hashable, Sendable {
    public var bytesPerSecond: Double
    public var latency: Double
    public var source: String

    /// 10 Gbit/s Ethernet with 50 us a message: a common cluster floor.
    public static let fallback = Interconnect(bytesPerSecond: 1.25e9, latency: 5e-5,
                                              source: "default 10 Gbit/s, 50 us (run `mpirun -np 2 distill calibrate` on two nodes)")

    public init(bytesPerSecond: Double, latency: Double, source: String) {
        (self.bytesPerSecond, self.latency, self.source) = (bytesPerSecond, latency, source)
    }

    public static func load(from path: String = Throughput.calibrationPath) -> Interconnect {
        guard let data = FileManager.default.contents(atPath: path), let json = JSON.parse(data),
              let bw = json["allreduce_bytes_per_s"]?.number, bw > 0 else { return fallback }
        let latency = json["allreduce_latency_s"]?.number ?? fallback.latency
        let ranks = json["allreduce_ranks"]?.int ?? 2
        return Interconnect(bytesPerSecond: bw, latency: latency,
                            source: "calibrated over \(ranks) ranks: \(Format.bytes(Int(bw)))/s, \(Int((latency * 1e6).rounded())) us")
    }

    /// Seconds of one allreduce of `bytes` over `ranks`.
    public func allreduce(bytes: Int, ranks: Int) -> Double {
        guard ranks > 1 else { return 0 }
        let k = Double(ranks)
        return 2 * (k - 1) / k * Double(bytes) / bytesPerSecond + 2 * (k - 1) * latency
    }

    /// Bus bandwidth and latency from two timed allreduces (a large and a tiny one) over `ranks`.
    public static func fit(largeBytes: Int, largeSeconds: Double, tinySeconds: Double, ranks: Int) -> (bytesPerSecond: Double, latency: Double) {
        let k = Double(max(2, ranks))
        let latency = max(0, tinySeconds / (2 * (k - 1)))
        let transfer = max(1e-9, largeSeconds - 2 * (k - 1) * latency)
        return (2 * (k - 1) / k * Double(largeBytes) / transfer, latency)
    }
}
