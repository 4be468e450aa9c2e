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
            case let .plane(g): Layer(geometry: geometry, count: count, timings: time(g, repeats: repeats))
            case let .volume(g): Layer(geometry: geometry, count: count, timings: time(g, repeats: repeats))
            }
        }
    }

    private static func time(_ g: ConvGeometry, repeats: Int) -> [Timing] {
        var rng = RNG(seed: 1)
        let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1)
        let weight = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -0.1, 0.1)
        let bias = rng.uniformTensor([g.o], -0.1, 0.1)
        let y = Tensor(zeros: [g.n, g.o, g.p, g.q])
        let dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1)
        let dx = Tensor(zeros: [g.n, g.c, g.h, g.w])
        let dw = Tensor(zeros: [g.o, g.c, g.kh, g.kw])
        let gflop = 2 * Double(g.n * g.o * g.p * g.q) * Double(g.c * g.kh * g.kw) / 1e9
        let timings = ConvPass.allCases.map { pass in
            var ms: [ConvAlgorithm: Double] = [:]
            for algorithm in ConvAlgorithm.allCases where algorithm.runs(g, pass) {
                let run: () -> Void
                switch pass {
                case .forward: run = { Conv2D.forward(x.pointer, weight.pointer, bias.pointer, y.pointer, g, algorithm: algorithm) }
                case .inputGradient:
                    // Timed with the weight gradient (one call computes both); its time is subtracted below.
                    run = { Conv2D.backward(x.pointer, weight.pointer, dy.pointer, dx.pointer, dw.pointer, nil, g, inputGradient: algorithm, weightGradient: .gemm) }
                case .weightGradient: run = { Conv2D.backward(x.pointer, weight.pointer, dy.pointer, nil, dw.pointer, nil, g, weightGradient: algorithm) }
                }
                ms[algorithm] = median(repeats: repeats, run)
            }
            return Timing(pass: pass, milliseconds: ms, chosen: ConvAlgorithm.rule(g, pass), gflop: gflop)
        }
        return inputGradientAlone(timings)
    }

    private static func time(_ g: VolumeGeometry, repeats: Int) -> [Timing] {
        var rng = RNG(seed: 1)
        let x = rng.uniformTensor([g.n, g.c] + g.size, -1, 1)
        let weight = rng.uniformTensor([g.o, g.c] + g.kernel, -0.1, 0.1)
        let bias = rng.uniformTensor([g.o], -0.1, 0.1)
        let y = Tensor(zeros: [g.n, g.o] + g.output)
        let dy = rng.uniformTensor([g.n, g.o] + g.output, -1, 1)
        let dx = Tensor(zeros: [g.n, g.c] + g.size)
        let dw = Tensor(zeros: [g.o, g.c] + g.kernel)
        let gflop = 2 * Double(g.n * g.o * g.output.reduce(1, *)) * Double(g.c * g.kernel.reduce(1, *)) / 1e9
        return inputGradientAlone(ConvPass.allCases.map { pass in
            var ms: [ConvAlgorithm: Double] = [:]
            for algorithm in ConvAlgorithm.allCases where algorithm.runs(g, pass) {
                let run: () -> Void
                switch pass {
                case .forward: run = { Conv3D.forward(x.pointer, weight.pointer, bias.pointer, y.pointer, g, algorithm: algorithm) }
                case .inputGradient:
                    run = { Conv3D.backward(x.pointer, weight.pointer, dy.pointer, dx.pointer, dw.pointer, nil, g, inputGradient: algorithm, weightGradient: .gemm) }
                case .weightGradient: run = { Conv3D.backward(x.pointer, weight.pointer, dy.pointer, nil, dw.pointer, nil, g, weightGradient: algorithm) }
                }
                ms[algorithm] = median(repeats: repeats, run)
            }
            return Timing(pass: pass, milliseconds: ms, chosen: ConvAlgorithm.rule(g, pass), gflop: gflop)
        })
    }

    /// Input-gradient rows timed dx + dw together (one call computes both); report dx alone.
    private static func inputGradientAlone(_ timings: [Timing]) -> [Timing] {
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
