import Architecture
import Dispatch
import NN
import Tensor

/// Every convolution of a network, timed pass by pass with each algorithm the
/// runtime has (`distill bench --conv`): the measurement behind
/// `ConvAlgorithm.rule`.
public enum ConvolutionBenchmark {
    public struct Timing: Sendable {
        public let pass: ConvPass
        /// Milliseconds per pass over the whole batch, by algorithm (median); absent where unsupported.
        public let milliseconds: [ConvAlgorithm: Double]
        /// What the runtime runs for this pass.
        public let chosen: ConvAlgorithm
        public let gflop: Double
    }

    /// A convolution over images or over volumes.
    public enum Geometry: Hashable, Sendable {
        case plane(ConvGeometry)
        case volume(VolumeGeometry)

        /// "n c>o hxw k" or "n c>o dxhxw k".
        public var description: String {
            switch self {
            case let .plane(g): "\(g.n) \(g.c)>\(g.o) \(g.h)x\(g.w) \(g.kh)x\(g.kw)"
            case let .volume(g): "\(g.n) \(g.c)>\(g.o) \(g.size.map(String.init).joined(separator: "x")) \(g.kernel.map(String.init).joined(separator: "x"))"
            }
        }
    }

    public struct Layer: Sendable {
        public let geometry: Geometry
        /// How many times the network runs this geometry per forward pass.
        public let count: Int
        public let timings: [Timing]
    }

    /// Every convolution of `architecture`'s forward pass on a batch of `batch` images (or volumes of `size`^3,
    /// for a 3D network), in order of first use.
    public static func geometries(_ architecture: ModelArchitecture, batch: Int, size: Int = 256) -> [(Geometry, Int)] {
        let model = ModelBuilder.build(architecture, height: size, width: size, seed: 1)
        var rng = RNG(seed: 0)
        let spatial = Array(repeating: size, count: architecture.spatialDimensions)
        let x = Variable(rng.uniformTensor([batch, architecture.inChannels] + spatial, 0, 1))
        let trace = Trace()
        _ = Tape.noGrad { trace.record { model.forward(x, training: false, taps: []) } }
        var order: [Geometry] = [], counts: [Geometry: Int] = [:]
        for node in trace.nodes {
            guard case let .convolution(stride, padding, dilation) = node.op, let input = node.inputs[0], let weight = node.inputs[1] else { continue }
            let (s, w) = (input.shape, weight.shape)
            let g: Geometry
            if s.count == 5 {
                g = .volume(VolumeGeometry(n: s[0], c: s[1], size: Array(s[2...]), o: w[0], kernel: Array(w[2...]), stride: stride, padding: padding,
                                           dilation: dilation))
            } else if s.count == 4, Set(stride).count == 1, Set(padding).count == 1, Set(dilation).count == 1 {
                // A 2D convolution the runtime runs: one stride, padding and dilation for both axes.
                g = .plane(ConvGeometry(n: s[0], c: s[1], h: s[2], w: s[3], o: w[0], kh: w[2], kw: w[3], stride: stride[0], padding: padding[0],
                                        dilation: dilation[0]))
            } else {
                continue
            }
            if counts[g] == nil { order.append(g) }
            counts[g, default: 0] += 1
        }
        return order.map { ($0, counts[$0]!) }
    }

    /// Times every pass of every geometry with every supported algorithm.
    public static func run(_ architecture: ModelArchitecture, batch: Int, size: Int = 256, repeats: Int = 3) -> [Layer] {
        geometries(architecture, batch: batch, size: size).map { geometry, count in
            switch geometry {
            case let .plane(g):
                let t = Operands(n: g.n, c: g.c, o: g.o, input: [g.h, g.w], kernel: [g.kh, g.kw], output: [g.p, g.q])
                return Layer(geometry: geometry, count: count, timings: time(t, repeats: repeats, runs: { $0.runs(g, $1) }, rule: { ConvAlgorithm.rule(g, $0) }) { pass, a in
                    switch pass {
                    case .forward: Conv2D.forward(t.x.pointer, t.weight.pointer, t.bias.pointer, t.y.pointer, g, algorithm: a)
                    case .inputGradient:
                        Conv2D.backward(t.x.pointer, t.weight.pointer, t.dy.pointer, t.dx.pointer, t.dw.pointer, nil, g, inputGradient: a, weightGradient: .gemm)
                    case .weightGradient: Conv2D.backward(t.x.pointer, t.weight.pointer, t.dy.pointer, nil, t.dw.pointer, nil, g, weightGradient: a)
                    }
                })
            case let .volume(g):
                let t = Operands(n: g.n, c: g.c, o: g.o, input: g.size, kernel: g.kernel, output: g.output)
                return Layer(geometry: geometry, count: count, timings: time(t, repeats: repeats, runs: { $0.runs(g, $1) }, rule: { ConvAlgorithm.rule(g, $0) }) { pass, a in
                    switch pass {
                    case .forward: Conv3D.forward(t.x.pointer, t.weight.pointer, t.bias.pointer, t.y.pointer, g, algorithm: a)
                    case .inputGradient:
                        Conv3D.backward(t.x.pointer, t.weight.pointer, t.dy.pointer, t.dx.pointer, t.dw.pointer, nil, g, inputGradient: a, weightGradient: .gemm)
                    case .weightGradient: Conv3D.backward(t.x.pointer, t.weight.pointer, t.dy.pointer, nil, t.dw.pointer, nil, g, weightGradient: a)
                    }
                })
            }
        }
    }

    /// One convolution's tensors: input [n, c, input...], weight [o, c, kernel...], output [n, o, output...].
    private struct Operands {
        let x, weight, bias, y, dy, dx, dw: Tensor
        let gflop: Double

        init(n: Int, c: Int, o: Int, input: [Int], kernel: [Int], output: [Int]) {
            var rng = RNG(seed: 1)
            x = rng.uniformTensor([n, c] + input, -1, 1)
            weight = rng.uniformTensor([o, c] + kernel, -0.1, 0.1)
            bias = rng.uniformTensor([o], -0.1, 0.1)
            y = Tensor(zeros: [n, o] + output)
            dy = rng.uniformTensor([n, o] + output, -1, 1)
            dx = Tensor(zeros: [n, c] + input)
            dw = Tensor(zeros: [o, c] + kernel)
            gflop = 2 * Double(n * o * output.reduce(1, *)) * Double(c * kernel.reduce(1, *)) / 1e9
        }
    }

    /// Each pass with each algorithm that runs it (`pass(p, a)` runs pass p with algorithm a on the operands).
    private static func time(_ t: Operands, repeats: Int, runs: (ConvAlgorithm, ConvPass) -> Bool, rule: (ConvPass) -> ConvAlgorithm,
                             _ pass: (ConvPass, ConvAlgorithm) -> Void) -> [Timing] {
        let timings = ConvPass.allCases.map { p in
            var ms: [ConvAlgorithm: Double] = [:]
            for a in ConvAlgorithm.allCases where runs(a, p) { ms[a] = median(repeats: repeats) { pass(p, a) } }
            return Timing(pass: p, milliseconds: ms, chosen: rule(p), gflop: t.gflop)
        }
        // The input gradient is timed with the weight gradient (one call computes both, the latter by sgemm): report dx alone.
        let weightTime = timings.first { $0.pass == .weightGradient }?.milliseconds[.gemm] ?? 0
        return timings.map { t in
            t.pass != .inputGradient ? t : Timing(pass: t.pass, milliseconds: t.milliseconds.mapValues { max(0, $0 - weightTime) }, chosen: t.chosen, gflop: t.gflop)
        }
    }

    private static func median(repeats: Int, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return times.sorted()[times.count / 2]
    }
}
