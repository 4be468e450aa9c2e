import COpenBLAS
import Dispatch

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

    /// The machine's sgemm rate as calibration states it: the median over `calibrationShapes`,
    /// with each shape's own rate (what `distill calibrate` prints).
    public static func calibrate(threads: Int, repeats: Int = 5) -> (sgemm: Double, perShape: [(Shape, Double)]) {
        let perShape = calibrationShapes.map { ($0, measure($0, threads: threads, repeats: repeats)) }
        let sorted = perShape.map(\.1).sorted()
        return (sorted[sorted.count / 2], perShape)
    }

    /// Median GFLOP/s of repeated C = A x B (row-major float32) on `threads` BLAS threads,
    /// after one warm-up product.
    public static func measure(_ shape: Shape, threads: Int, repeats: Int = 5) -> Double {
        let (m, n, k) = (shape.m, shape.n, shape.k)
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
        let median = times.sorted()[times.count / 2]
        return 2 * Double(m) * Double(n) * Double(k) / median / 1e9
    }
}
