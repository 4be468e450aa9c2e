// Max and average pooling, k x k windows with stride s, no padding, floor mode.
// N batch, C channels, H x W input, P x Q output (P = (H - k)/s + 1).
// Backward accumulates into dx.

public enum Pool2D {
    public static func outputSize(_ size: Int, k: Int, stride: Int) -> Int { (size - k) / stride + 1 }

    /// y = window max; argmax records the flat input index of each maximum (first in row-major order on ties).
    public static func maxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>,
                                  n: Int, c: Int, h: Int, w: Int, k: Int, stride: Int) {
        let P = outputSize(h, k: k, stride: stride), Q = outputSize(w, k: k, stride: stride)
        Parallel.forEach(n * c) { plane in
            let xp = x + plane * h * w, yp = y + plane * P * Q, ap = argmax + plane * P * Q
            for i in 0..<P {
                for j in 0..<Q {
                    var best = -Float.infinity, at = 0
                    for u in 0..<k {
                        for v in 0..<k {
                            let idx = (i * stride + u) * w + j * stride + v
                            if xp[idx] > best { best = xp[idx]; at = idx }
                        }
                    }
                    yp[i * Q + j] = best
                    ap[i * Q + j] = Int32(plane * h * w + at)
                }
            }
        }
    }

    public static func maxBackward(_ dy: UnsafePointer<Float>, _ argmax: UnsafePointer<Int32>, _ dx: UnsafeMutablePointer<Float>, outputCount: Int) {
        for i in 0..<outputCount { dx[Int(argmax[i])] += dy[i] }
    }

    public static func avgForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, c: Int, h: Int, w: Int, k: Int, stride: Int) {
        let P = outputSize(h, k: k, stride: stride), Q = outputSize(w, k: k, stride: stride)
        let scale = 1 / Float(k * k)
        Parallel.forEach(n * c) { plane in
            let xp = x + plane * h * w, yp = y + plane * P * Q
            for i in 0..<P {
                for j in 0..<Q {
                    var s: Float = 0
                    for u in 0..<k { for v in 0..<k { s += xp[(i * stride + u) * w + j * stride + v] } }
                    yp[i * Q + j] = s * scale
                }
            }
        }
    }

    public static func avgBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, n: Int, c: Int, h: Int, w: Int, k: Int, stride: Int) {
        let P = outputSize(h, k: k, stride: stride), Q = outputSize(w, k: k, stride: stride)
        let scale = 1 / Float(k * k)
        Parallel.forEach(n * c) { plane in
            let dxp = dx + plane * h * w, dyp = dy + plane * P * Q
            for i in 0..<P {
                for j in 0..<Q {
                    let g = dyp[i * Q + j] * scale
                    for u in 0..<k { for v in 0..<k { dxp[(i * stride + u) * w + j * stride + v] += g } }
                }
            }
        }
    }
}
