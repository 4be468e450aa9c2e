import Foundation

// Element-wise activations over `count` values. Forward writes y; backward
// accumulates dx += dy * f'(.), from whichever of x or y the derivative needs.

public enum Activation: Sendable, Equatable {
    case relu
    case leakyRelu(Float)
    case gelu
    case sigmoid
    case tanh

    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.chunks(count) { r in
            switch self {
            case .relu: for i in r { y[i] = x[i] > 0 ? x[i] : 0 }
            case .leakyRelu(let a): for i in r { y[i] = x[i] > 0 ? x[i] : a * x[i] }
            case .gelu: for i in r { y[i] = Float(0.5 * Double(x[i]) * (1 + erf(Double(x[i]) / 2.0.squareRoot()))) }
            case .sigmoid: for i in r { y[i] = Activation.sigmoid(x[i]) }
            case .tanh: for i in r { y[i] = Foundation.tanh(x[i]) }
            }
        }
    }

    public func backward(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.chunks(count) { r in
            switch self {
            case .relu: for i in r where x[i] > 0 { dx[i] += dy[i] }
            case .leakyRelu(let a): for i in r { dx[i] += x[i] > 0 ? dy[i] : a * dy[i] }
            case .gelu:
                for i in r {
                    let v = Double(x[i])
                    let cdf = 0.5 * (1 + erf(v / 2.0.squareRoot()))
                    let pdf = exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
                    dx[i] += dy[i] * Float(cdf + v * pdf)
                }
            case .sigmoid: for i in r { dx[i] += dy[i] * y[i] * (1 - y[i]) }
            case .tanh: for i in r { dx[i] += dy[i] * (1 - y[i] * y[i]) }
            }
        }
    }

    @inline(__always) public static func sigmoid(_ v: Float) -> Float {
        v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v))
    }

    /// log(sigmoid(v)), stable for large |v|.
    @inline(__always) public static func logSigmoid(_ v: Float) -> Float {
        v >= 0 ? -log1p(exp(-v)) : v - log1p(exp(v))
    }
}

// Softmax and log-softmax over an axis of length `c`, with `outer` x `inner`
// independent positions: element (o, k, i) is at (o * c + k) * inner + i.

public enum Softmax {
    public static func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, outer: Int, c: Int, inner: Int, log: Bool) {
        Parallel.forEach(outer) { o in
            for i in 0..<inner {
                let base = o * c * inner + i
                var m = -Float.infinity
                for k in 0..<c { m = max(m, x[base + k * inner]) }
                var s: Float = 0
                for k in 0..<c { s += exp(x[base + k * inner] - m) }
                if log {
                    let ls = Foundation.log(s) + m
                    for k in 0..<c { y[base + k * inner] = x[base + k * inner] - ls }
                } else {
                    for k in 0..<c { y[base + k * inner] = exp(x[base + k * inner] - m) / s }
                }
            }
        }
    }

    /// softmax: dx += y * (dy - sum(dy * y)); log-softmax: dx += dy - softmax * sum(dy).
    public static func backward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                outer: Int, c: Int, inner: Int, log: Bool) {
        Parallel.forEach(outer) { o in
            for i in 0..<inner {
                let base = o * c * inner + i
                var s: Float = 0
                if log {
                    for k in 0..<c { s += dy[base + k * inner] }
                    for k in 0..<c { let j = base + k * inner; dx[j] += dy[j] - exp(y[j]) * s }
                } else {
                    for k in 0..<c { s += dy[base + k * inner] * y[base + k * inner] }
                    for k in 0..<c { let j = base + k * inner; dx[j] += y[j] * (dy[j] - s) }
                }
            }
        }
    }
}

/// ReLU over memory, branch-free: after a normalisation about half the values are
/// negative, and a branch per element mispredicts half the time (the `if` loop took as
/// long as a convolution). Written as plain selects that the compiler turns into
/// vector max and blend instructions (Swift's generic SIMD types compiled to a
/// per-lane loop through the stack here, which was slower still).
public enum Rectifier {
    /// p[i] = max(p[i], 0) for i in `range`.
    public static func rectify(_ p: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        for i in range { p[i] = Swift.max(p[i], 0) }
    }

    /// g[i] = dy[i] where y[i] > 0, else 0: the gradient through a ReLU from its output.
    public static func mask(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        for i in range {
            let d = dy[i], v = y[i]
            g[i] = v > 0 ? d : 0
        }
    }

    /// The defining loops, kept as the reference the tests compare with.
    public static func rectifyNaive(_ p: UnsafeMutablePointer<Float>, _ range: Range<Int>) { for i in range where p[i] < 0 { p[i] = 0 } }
    public static func maskNaive(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        for i in range where y[i] > 0 { g[i] = dy[i] }
        for i in range where !(y[i] > 0) { g[i] = 0 }
    }
}
