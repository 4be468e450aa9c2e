// Resizing of N x C planes from H x W to P x Q.
// Bilinear (align_corners false: src = max((o + 0.5) * I/O - 0.5, 0); true:
// src = o * (I - 1)/(O - 1)) and nearest (src = floor(o * I/O)). Separable;
// backward is the transpose and accumulates into dx.

public enum Resize {
    struct Tap { var i0: Int; var i1: Int; var lambda: Float }

    static func taps(input: Int, output: Int, alignCorners: Bool) -> [Tap] {
        (0..<output).map { o in
            let src: Double
            if alignCorners {
                src = output > 1 ? Double(o) * Double(input - 1) / Double(output - 1) : 0
            } else {
                src = max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0)
            }
            let i0 = min(Int(src), input - 1)
            return Tap(i0: i0, i1: min(i0 + 1, input - 1), lambda: Float(src - Double(i0)))
        }
    }

    public static func bilinearForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int,
                                       h: Int, w: Int, p: Int, q: Int, alignCorners: Bool) {
        let rows = taps(input: h, output: p, alignCorners: alignCorners), cols = taps(input: w, output: q, alignCorners: alignCorners)
        Parallel.forEach(planes) { plane in
            let xp = x + plane * h * w, yp = y + plane * p * q
            for i in 0..<p {
                let r = rows[i]
                let a = xp + r.i0 * w, b = xp + r.i1 * w
                for j in 0..<q {
                    let c = cols[j]
                    let top = a[c.i0] + c.lambda * (a[c.i1] - a[c.i0])
                    let bottom = b[c.i0] + c.lambda * (b[c.i1] - b[c.i0])
                    yp[i * q + j] = top + r.lambda * (bottom - top)
                }
            }
        }
    }

    public static func bilinearBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, planes: Int,
                                        h: Int, w: Int, p: Int, q: Int, alignCorners: Bool) {
        let rows = taps(input: h, output: p, alignCorners: alignCorners), cols = taps(input: w, output: q, alignCorners: alignCorners)
        Parallel.forEach(planes) { plane in
            let dxp = dx + plane * h * w, dyp = dy + plane * p * q
            for i in 0..<p {
                let r = rows[i]
                for j in 0..<q {
                    let c = cols[j], g = dyp[i * q + j]
                    let gt = g * (1 - r.lambda), gb = g * r.lambda
                    dxp[r.i0 * w + c.i0] += gt * (1 - c.lambda)
                    dxp[r.i0 * w + c.i1] += gt * c.lambda
                    dxp[r.i1 * w + c.i0] += gb * (1 - c.lambda)
                    dxp[r.i1 * w + c.i1] += gb * c.lambda
                }
            }
        }
    }

    static func nearestIndex(_ o: Int, input: Int, output: Int) -> Int { min(o * input / output, input - 1) }

    public static func nearestForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, h: Int, w: Int, p: Int, q: Int) {
        Parallel.forEach(planes) { plane in
            let xp = x + plane * h * w, yp = y + plane * p * q
            for i in 0..<p {
                let si = nearestIndex(i, input: h, output: p)
                for j in 0..<q { yp[i * q + j] = xp[si * w + nearestIndex(j, input: w, output: q)] }
            }
        }
    }

    public static func nearestBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, planes: Int, h: Int, w: Int, p: Int, q: Int) {
        Parallel.forEach(planes) { plane in
            let dxp = dx + plane * h * w, dyp = dy + plane * p * q
            for i in 0..<p {
                let si = nearestIndex(i, input: h, output: p)
                for j in 0..<q { dxp[si * w + nearestIndex(j, input: w, output: q)] += dyp[i * q + j] }
            }
        }
    }
}
