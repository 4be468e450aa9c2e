// Max and average pooling over planes (2D) and volumes (3D): one implementation,
// a 2D pooling being a volume of depth 1 with a window of depth 1.
// Windows of kernel[a] values with stride[a] along each axis a = (d, h, w), no
// padding, floor mode. Backward accumulates into dx.

/// The geometry of one pooling: `planes` = N x C independent volumes of `size`.
public struct PoolGeometry: Hashable, Sendable {
    public var planes: Int
    public var size: [Int]
    public var kernel: [Int]
    public var stride: [Int]

    /// Per-axis [d, h, w] lists (2D callers pass depth 1).
    public init(planes: Int, size: [Int], kernel: [Int], stride: [Int]) {
        precondition(size.count == 3 && kernel.count == 3 && stride.count == 3, "PoolGeometry: [d, h, w] lists")
        (self.planes, self.size, self.kernel, self.stride) = (planes, size, kernel, stride)
    }

    public static func outputSize(_ size: Int, k: Int, stride: Int) -> Int { (size - k) / stride + 1 }
    public var output: [Int] { (0..<3).map { Self.outputSize(size[$0], k: kernel[$0], stride: stride[$0]) } }
    var inputCount: Int { size.reduce(1, *) }
    var outputCount: Int { output.reduce(1, *) }
}

public enum Pooling {
    /// Calls body(outputIndex, firstInputIndex) for each window of one plane; the window's
    /// values are at firstInputIndex + (a * H + u) * W + v.
    @inline(__always) static func forEachWindow(_ g: PoolGeometry, _ body: (Int, Int) -> Void) {
        let (H, W) = (g.size[1], g.size[2]), out = g.output
        var o = 0
        for i in 0..<out[0] {
            for j in 0..<out[1] {
                for l in 0..<out[2] {
                    body(o, (i * g.stride[0] * H + j * g.stride[1]) * W + l * g.stride[2])
                    o += 1
                }
            }
        }
    }

    /// y = window max; argmax records the flat input index of each maximum (first in row-major order on ties).
    public static func maxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>, _ g: PoolGeometry) {
        let (H, W) = (g.size[1], g.size[2]), (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let inCount = g.inputCount, outCount = g.outputCount
        Parallel.forEach(g.planes) { plane in
            let xp = x + plane * inCount, yp = y + plane * outCount, ap = argmax + plane * outCount
            forEachWindow(g) { o, first in
                var best = -Float.infinity, at = first
                for a in 0..<kd { for u in 0..<kh { for v in 0..<kw {
                    let idx = first + (a * H + u) * W + v
                    if xp[idx] > best { best = xp[idx]; at = idx }
                } } }
                yp[o] = best
                ap[o] = Int32(plane * inCount + at)
            }
        }
    }

    public static func maxBackward(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<Int32>, _ dx: UnsafeMutablePointer<Float>, outputCount: Int) {
        for i in 0..<outputCount { dx[Int(argmax[i])] += dy[i] }
    }

    public static func avgForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: PoolGeometry) {
        let (H, W) = (g.size[1], g.size[2]), (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let inCount = g.inputCount, outCount = g.outputCount, scale = 1 / Float(kd * kh * kw)
        Parallel.forEach(g.planes) { plane in
            let xp = x + plane * inCount, yp = y + plane * outCount
            forEachWindow(g) { o, first in
                var s: Float = 0
                for a in 0..<kd { for u in 0..<kh { for v in 0..<kw { s += xp[first + (a * H + u) * W + v] } } }
                yp[o] = s * scale
            }
        }
    }

    public static func avgBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: PoolGeometry) {
        let (H, W) = (g.size[1], g.size[2]), (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let inCount = g.inputCount, outCount = g.outputCount, scale = 1 / Float(kd * kh * kw)
        Parallel.forEach(g.planes) { plane in
            let dxp = dx + plane * inCount, dyp = dy + plane * outCount
            forEachWindow(g) { o, first in
                let d = dyp[o] * scale
                for a in 0..<kd { for u in 0..<kh { for v in 0..<kw { dxp[first + (a * H + u) * W + v] += d } } }
            }
        }
    }
}
