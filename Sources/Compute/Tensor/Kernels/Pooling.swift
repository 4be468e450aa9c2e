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
            if g.kernel == [1, 2, 2] && g.stride == [1, 2, 2] {
                return maxForward2x2(xp, yp, ap, g, base: Int32(plane * inCount))
            }
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

    /// The U-Net's 2x2 window with stride 2, 16 windows at a time: the window's four values (as the
    /// even and odd lanes of two rows) taken in row-major order with the same strict comparison as
    /// the general loop, as selects instead of branches.
    @inline(__always) static func maxForward2x2(_ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>, _ ap: UnsafeMutablePointer<Int32>,
                                                _ g: PoolGeometry, base: Int32) {
        let (W, out) = (g.size[2], g.output)
        for depth in 0..<out[0] {
            for i in 0..<out[1] {
                let row = (depth * g.size[1] + 2 * i) * W, o0 = (depth * out[1] + i) * out[2]
                let (top, bottom) = (xp + row, xp + row + W)
                var l = 0
                while l + 16 <= out[2] {
                    let t = UnsafeRawPointer(top + 2 * l).loadUnaligned(as: SIMD32<Float>.self)
                    let b = UnsafeRawPointer(bottom + 2 * l).loadUnaligned(as: SIMD32<Float>.self)
                    var best = SIMD16<Float>(repeating: -.infinity), at = SIMD16<Int32>(repeating: 0)
                    @inline(__always) func take(_ value: SIMD16<Float>, _ tap: Int32) {
                        let better = value .> best
                        best.replace(with: value, where: better)
                        at.replace(with: SIMD16(repeating: tap), where: better)
                    }
                    take(t.evenHalf, 0); take(t.oddHalf, 1); take(b.evenHalf, Int32(W)); take(b.oddHalf, Int32(W + 1))
                    UnsafeMutableRawPointer(yp + o0 + l).storeBytes(of: best, as: SIMD16<Float>.self)
                    let first = SIMD16<Int32>(0..<16) &* 2 &+ Int32(row + 2 * l) &+ base
                    UnsafeMutableRawPointer(ap + o0 + l).storeBytes(of: first &+ at, as: SIMD16<Int32>.self)
                    l += 16
                }
                while l < out[2] {
                    var best = -Float.infinity, at = 0
                    for tap in 0..<4 {
                        let offset = tap / 2 * W + tap % 2
                        if top[2 * l + offset] > best { best = top[2 * l + offset]; at = offset }
                    }
                    yp[o0 + l] = best
                    ap[o0 + l] = base + Int32(row + 2 * l + at)
                    l += 1
                }
            }
        }
    }

    /// dx[argmax[o]] += dy[o], plane by plane in parallel (a plane's maxima lie in that plane).
    public static func maxBackward(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<Int32>, _ dx: UnsafeMutablePointer<Float>, _ g: PoolGeometry) {
        let outCount = g.outputCount
        Parallel.forEach(g.planes) { plane in
            for o in (plane * outCount)..<((plane + 1) * outCount) { dx[Int(argmax[o])] += dy[o] }
        }
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
