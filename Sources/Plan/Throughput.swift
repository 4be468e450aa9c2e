import Foundation
import StageConfig

/// How fast this machine trains, for time estimates.
///
/// `distill calibrate` measures the OpenBLAS sgemm rate on convolution-shaped
/// products and stores it per machine; training of the study's small-channel
/// networks reaches about a quarter of that rate (perf.md: PyTorch gets 22 to 39
/// GFLOP/s of a 147 GFLOP/s sgemm on the students, 65 to 76 on the teacher), so
/// estimates use `efficiency` x the measured rate. Without a calibration the
/// documented default of 25 GFLOP/s is used.
public struct Throughput: Hashable, Sendable {
    /// Effective training throughput in GFLOP/s.
    public var gflops: Double
    /// Where the figure comes from, shown beside every estimate.
    public var source: String

    public static let defaultGflops = 25.0
    public static let efficiency = 0.25
    public static let fallback = Throughput(gflops: defaultGflops, source: "default \(Int(defaultGflops)) GFLOP/s (run `distill calibrate`)")

    public init(gflops: Double, source: String) {
        self.gflops = gflops
        self.source = source
    }

    /// The calibration file: $DISTILL_CALIBRATION, else ~/.cache/distillery/calibration-HOST.json.
    public static var calibrationPath: String {
        if let p = ProcessInfo.processInfo.environment["DISTILL_CALIBRATION"], !p.isEmpty { return p }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        return "\(home)/.cache/distillery/calibration-\(host).json"
    }

    /// The stored calibration of this machine, or the documented default.
    public static func load(from path: String = calibrationPath) -> Throughput {
        guard let data = FileManager.default.contents(atPath: path), let json = JSON.parse(data),
              let sgemm = json["sgemm_gflops"]?.number, sgemm > 0 else { return fallback }
        let when = json["measured"]?.string ?? "?"
        return Throughput(gflops: sgemm * efficiency,
                          source: "calibrated \(when): sgemm \(Int(sgemm.rounded())) GFLOP/s x \(efficiency) = \(Int((sgemm * efficiency).rounded())) GFLOP/s")
    }

    public static func store(sgemmGflops: Double, threads: Int, to path: String = calibrationPath) throws {
        let formatter = ISO8601DateFormatter()
        let doc = JSON.object(["sgemm_gflops": .number(sgemmGflops), "threads": .int(threads),
                               "measured": .string(formatter.string(from: Date())),
                               "host": .string(ProcessInfo.processInfo.hostName)])
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let tmp = path + ".tmp"
        try Data(doc.pretty.utf8).write(to: URL(fileURLWithPath: tmp))
        // rename(2) replaces the old calibration atomically.
        guard rename(tmp, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }

    var json: JSON { .object(["gflops": .number(gflops), "source": .string(source)]) }
}
