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

    /// The offsets of a window's values from its first, in row-major (d, h, w) order.
    var taps: [Int] {
        let (H, W) = (size[1], size[2])
        return (0..<kernel[0]).flatMap { a in (0..<kernel[1]).flatMap { u in (0..<kernel[2]).map { v in (a * H + u) * W + v } } }
    }
}

public enum Pooling {
    /// Calls body(outputIndex, firstInputIndex) for each window of one plane; the window's
    /// values are at firstInputIndex + each of `g.taps`.
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
        let inCount = g.inputCount, outCount = g.outputCount, taps = g.taps
        Parallel.forEach(g.planes) { plane in
            let xp = x + plane * inCount, yp = y + plane * outCount, ap = argmax + plane * outCount
            forEachWindow(g) { o, first in
                var best = -Float.infinity, at = first
                for t in taps {
                    let idx = first + t
                    if xp[idx] > best { best = xp[idx]; at = idx }
                }
                yp[o] = best
                ap[o] = Int32(plane * inCount + at)
            }
        }
    }

    public static func maxBackward(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<Int32>, _ dx: UnsafeMutablePointer<Float>, outputCount: Int) {
        for i in 0..<outputCount { dx[Int(argmax[i])] += dy[i] }
    }

    public static func avgForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: PoolGeometry) {
        let inCount = g.inputCount, outCount = g.outputCount, taps = g.taps, scale = 1 / Float(taps.count)
        Parallel.forEach(g.planes) { plane in
            let xp = x + plane * inCount, yp = y + plane * outCount
            forEachWindow(g) { o, first in
                var s: Float = 0
                for t in taps { s += xp[first + t] }
                yp[o] = s * scale
            }
        }
    }

    public static func avgBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: PoolGeometry) {
        let inCount = g.inputCount, outCount = g.outputCount, taps = g.taps, scale = 1 / Float(taps.count)
        Parallel.forEach(g.planes) { plane in
            let dxp = dx + plane * inCount, dyp = dy + plane * outCount
            forEachWindow(g) { o, first in
                let d = dyp[o] * scale
                for t in taps { dxp[first + t] += d }
            }
        }
    }
}
