import COpenBLAS
import Dispatch
import Foundation

/// This machine's sgemm rate, measured on the shapes the study's convolutions give
/// OpenBLAS: what `distill calibrate` stores for the plan's time estimates.
public enum GEMMRate {
    public struct Shape: Sendable {
        public var m: Int, n: Int, k: Int
        public var what: String
        public init(m: Int, n: Int, k: Int, what: String) { (self.m, self.n, self.k, self.what) = (m, n, k, what) }
    }

    /// Convolution-shaped products (im2col of 3x3 layers of the study's networks) and a square one.
    public static let calibrationShapes: [Shape] = [
        Shape(m: 64, n: 16384, k: 576, what: "64-ch 3x3 conv at 128x128"),
        Shape(m: 256, n: 4096, k: 2304, what: "256-ch 3x3 conv at 64x64"),
        Shape(m: 1024, n: 1024, k: 1024, what: "square 1024"),
    ]

    /// A calibration: the machine's sgemm rate (the median over `calibrationShapes`), each
    /// shape's own rate (what `distill calibrate` prints), and why the figure may be low.
    public struct Calibration: Sendable {
        public var sgemm: Double
        public var perShape: [(Shape, Double)]
        /// Set when other processes loaded the cores the measurement used, or when a shape's
        /// repeats spread over more than `spreadBound` of their median: the rate is then not
        /// this machine's, only what it gave under that load.
        public var busy: String?
    }

    /// The largest spread (max - min over the median) of one shape's repeats that an idle machine gives.
    public static let spreadBound = 0.15

    /// Measures the calibration shapes on `threads` threads, `repeats` times each.
    public static func calibrate(threads: Int, repeats: Int = 5) -> Calibration {
        let before = otherLoad(threads: threads)
        var spreads: [(Shape, Double)] = []
        let perShape = calibrationShapes.map { shape -> (Shape, Double) in
            let m = measureWithSpread(shape, threads: threads, repeats: repeats)
            spreads.append((shape, m.spread))
            return (shape, m.rate)
        }
        let sorted = perShape.map(\.1).sorted()
        var reasons: [String] = []
        if let before, before.load > before.idle {
            reasons.append(String(format: "load average %.1f on %d cores while measuring on %d", before.load, before.cores, threads))
        }
        if let worst = spreads.max(by: { $0.1 < $1.1 }), worst.1 > spreadBound {
            reasons.append(String(format: "%@ repeats %.0f%% apart", worst.0.what, worst.1 * 100))
        }
        return Calibration(sgemm: sorted[sorted.count / 2], perShape: perShape, busy: reasons.isEmpty ? nil : reasons.joined(separator: "; "))
    }

    /// The 1-minute load average (/proc/loadavg) against what an otherwise idle machine shows
    /// while `threads` of its cores are about to be used: the other cores may hold half a
    /// process's worth of load each before the machine counts as busy. nil where not Linux.
    static func otherLoad(threads: Int) -> (load: Double, idle: Double, cores: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
              let first = text.split(separator: " ").first, let load = Double(first) else { return nil }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return (load, Double(max(0, cores - threads)) + 0.5, cores)
    }

    /// Median GFLOP/s of repeated C = A x B (row-major float32) on `threads` BLAS threads,
    /// after one warm-up product.
    public static func measure(_ shape: Shape, threads: Int, repeats: Int = 5) -> Double {
        measureWithSpread(shape, threads: threads, repeats: repeats).rate
    }

    /// The median rate and the repeats' spread (max - min time over the median time).
    static func measureWithSpread(_ shape: Shape, threads: Int, repeats: Int) -> (rate: Double, spread: Double) {
        let (m, n, k) = (shape.m, shape.n, shape.k)
        Machine.prepare()
        openblas_set_num_threads(Int32(max(1, threads)))
        defer { openblas_set_num_threads(1) }
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        var times: [Double] = []
        for i in 0...max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        return (2 * Double(m) * Double(n) * Double(k) / median / 1e9, (sorted[sorted.count - 1] - sorted[0]) / median)
    }
}
