import Foundation
import NN
import Tensor
import Testing

/// Finite-difference checks of every differentiable op at small sizes.
///
/// L = sum(out * r) for a fixed random r, accumulated in Double; each input
/// element is moved by +-h (central differences) and the slope compared with the
/// analytic gradient: |analytic - numeric| <= 2e-2 * max(1, |numeric|) + 2e-3.
@Suite struct GradientCheckTests {
    static func check(_ shapes: [[Int]], seed: UInt64 = 1, h: Float = 1e-2, tolerance: Double = 2e-2,
                      positive: Bool = false, sourceLocation: SourceLocation = #_sourceLocation,
                      _ f: ([Variable]) -> Variable) {
        var rng = RNG(seed: seed)
        let inputs = shapes.map { s -> Variable in
            let t = positive ? rng.uniformTensor(s, 0.5, 1.5) : rng.uniformTensor(s, -1, 1)
            return Variable(t, requiresGrad: true)
        }
        let probe = Tape.noGrad { f(inputs) }
        let r = rng.uniformTensor(probe.shape, -1, 1)
        func objective() -> Double {
            let out = Tape.noGrad { f(inputs) }
            var s = 0.0
            for i in 0..<out.value.count { s += Double(out.value.pointer[i]) * Double(r.pointer[i]) }
            return s
        }
        let tape = Tape()
        let out = tape.record { f(inputs) }
        tape.backward([(out, r)])
        for (k, v) in inputs.enumerated() {
            let analytic = v.grad ?? Tensor(zeros: v.shape)
            for i in 0..<v.value.count {
                let keep = v.value.pointer[i]
                v.value.pointer[i] = keep + h
                let up = objective()
                v.value.pointer[i] = keep - h
                let down = objective()
                v.value.pointer[i] = keep
                let numeric = (up - down) / (2 * Double(h))
                let a = Double(analytic.pointer[i])
                if abs(a - numeric) > tolerance * max(1, abs(numeric)) + 2e-3 {
                    Issue.record("input \(k) element \(i): analytic \(a), numeric \(numeric)", sourceLocation: sourceLocation)
                    return
                }
            }
        }
    }

    @Test func convolutions() {
        Self.check([[2, 3, 6, 6], [4, 3, 3, 3], [4]]) { F.conv2d($0[0], $0[1], $0[2], padding: 1) }
        Self.check([[1, 2, 7, 7], [3, 2, 3, 3], [3]]) { F.conv2d($0[0], $0[1], $0[2], stride: 2, padding: 3, dilation: 3) }
        Self.check([[2, 3, 5, 5], [2, 3, 1, 1]]) { F.conv2d($0[0], $0[1], nil) }
        Self.check([[2, 4, 3, 3], [4, 2, 2, 2], [2]]) { F.convTranspose2d($0[0], $0[1], $0[2], stride: 2) }
        Self.check([[1, 2, 3, 4, 4], [3, 2, 1, 3, 3], [3]]) { F.conv3d($0[0], $0[1], $0[2], stride: [1, 2, 1], padding: [0, 1, 1]) }
        Self.check([[2, 2, 2, 2, 3], [2, 3, 1, 2, 2], [3]]) { F.convTranspose3d($0[0], $0[1], $0[2], stride: [1, 2, 2]) }
    }

    @Test func poolingAndResizing() {
        Self.check([[2, 2, 6, 6]]) { F.maxPool2d($0[0]) }
        Self.check([[2, 2, 6, 5]]) { F.avgPool2d($0[0]) }
        Self.check([[1, 2, 4, 4, 6]]) { F.maxPool3d($0[0], kernel: [2, 2, 2], stride: [2, 2, 2]) }
        Self.check([[1, 2, 3, 4, 5]]) { F.avgPool3d($0[0], kernel: [1, 2, 2], stride: [1, 2, 2]) }
        Self.check([[1, 2, 3, 4]]) { F.resizeBilinear($0[0], height: 7, width: 5) }
        Self.check([[1, 2, 3, 4]]) { F.resizeBilinear($0[0], height: 6, width: 8, alignCorners: true) }
        Self.check([[1, 2, 3, 4]]) { F.resizeNearest($0[0], height: 6, width: 8) }
    }

    @Test func normalisations() {
        let mean = Tensor(zeros: [3]), variance = Tensor(shape: [3], repeating: 1)
        Self.check([[4, 3, 3, 3], [3], [3]]) { F.batchNormTrain($0[0], $0[1], $0[2], runningMean: nil, runningVar: nil) }
        Self.check([[2, 3, 3, 3], [3], [3]]) { F.batchNormEval($0[0], $0[1], $0[2], runningMean: mean, runningVar: variance) }
        Self.check([[2, 4, 3, 3], [4], [4]]) { F.groupNorm($0[0], groups: 2, $0[1], $0[2]) }
        Self.check([[2, 3, 3, 3], [3], [3]]) { F.instanceNorm($0[0], $0[1], $0[2]) }
        Self.check([[2, 3, 6], [6], [6]]) { F.layerNorm($0[0], $0[1], $0[2]) }
    }

    @Test func activationsAndSoftmax() {
        for kind in [Activation.leakyRelu(0.1), .gelu, .sigmoid, .tanh] {
            Self.check([[2, 3, 4]]) { F.activation($0[0], kind) }
        }
        Self.check([[2, 3, 4]], positive: true) { F.relu($0[0]) }
        Self.check([[2, 4, 3]]) { F.softmax($0[0], axis: 1) }
        Self.check([[2, 4, 3]]) { F.softmax($0[0], axis: 1, log: true) }
    }

    @Test func linearAlgebraAndShapes() {
        Self.check([[2, 3, 5], [4, 5], [4]]) { F.linear($0[0], $0[1], $0[2]) }
        Self.check([[2, 3, 5], [5, 4]]) { F.linear($0[0], $0[1], nil, weightIsInputMajor: true) }
        Self.check([[2, 3, 4], [2, 4, 5]]) { F.bmm($0[0], $0[1]) }
        Self.check([[2, 3, 4], [2, 5, 4]]) { F.bmm($0[0], $0[1], transposeB: true) }
        Self.check([[2, 2, 3], [2, 1, 3]]) { F.concat([$0[0], $0[1]]) }
        Self.check([[2, 3, 4]]) { F.permute($0[0], [2, 0, 1]) }
        Self.check([[2, 5, 3]]) { F.narrow($0[0], axis: 1, start: 1, length: 3) }
        Self.check([[2, 3, 4], [1, 1, 4]]) { F.prependToken($0[0], $0[1]) }
        Self.check([[2, 3], [2, 3]]) { F.mul($0[0], $0[1]) }
        Self.check([[2, 4, 6]]) { x in
            let q = F.narrow(x[0], axis: 2, start: 0, length: 2), k = F.narrow(x[0], axis: 2, start: 2, length: 2)
            return F.multiHeadAttention(q: q, k: k, v: F.narrow(x[0], axis: 2, start: 4, length: 2), heads: 2).0
        }
    }

    @Test func losses() {
        var rng = RNG(seed: 9)
        let target = Tensor(shape: [2, 1, 3, 3], values: (0..<18).map { _ in rng.uniform() > 0.5 ? 1 : 0 })
        Self.check([[2, 1, 3, 3]]) { Loss.dice($0[0], target, smooth: 1) }
        Self.check([[2, 1, 3, 3]]) { Loss.diceBCE($0[0], target, smooth: 1) }
        Self.check([[2, 1, 3, 3]]) { Loss.bceWithLogits($0[0], target) }
        let labels: [Int32] = (0..<18).map { Int32($0 % 3) }
        Self.check([[2, 3, 3, 3]]) { Loss.crossEntropy($0[0], labels, gamma: 0) }
        Self.check([[2, 3, 3, 3]]) { Loss.crossEntropy($0[0], labels, gamma: 2) }
        Self.check([[2, 3, 2, 2], [2, 3, 2, 2]]) { Loss.mse($0[0], $0[1]) }
        Self.check([[2, 3, 2, 2], [2, 3, 2, 2]]) { Loss.cosine($0[0], $0[1]) }
        Self.check([[2, 3, 2, 2], [2, 3, 2, 2]]) { Loss.klLogits($0[0], $0[1], temperature: 2) }
        Self.check([[2, 1, 2, 2], [2, 1, 2, 2]]) { Loss.binaryKL($0[0], $0[1], temperature: 2) }
        Self.check([[3, 2, 2, 2], [3, 2, 2, 2]]) { Loss.infoNCE($0[0], $0[1], temperature: 0.5) }
        Self.check([[2, 2, 2, 2], [2, 3, 2, 2]], positive: true) { Loss.attentionTransfer($0[0], $0[1], p: 2) }
        Self.check([[2, 2, 2, 2], [2, 2, 2, 2]]) { Loss.channelWise($0[0], $0[1], tau: 2) }
        Self.check([[5, 3]]) { Loss.supCon($0[0], labels: [0, 1, 0, 1, 2], temperature: 0.5) }
    }
}

/// The normalisation with its ReLU fused gives the same values and gradients as the two ops.
@Suite struct FusedNormalizationTests {
    @Test func fusedEqualsNormalisationThenReLU() {
        var rng = RNG(seed: 11)
        let x0 = rng.uniformTensor([3, 4, 5, 5], -1, 1), w0 = rng.uniformTensor([4], 0.5, 1.5), b0 = rng.uniformTensor([4], -0.5, 0.5)
        let dy = rng.uniformTensor([3, 4, 5, 5], -1, 1)
        let mean = rng.uniformTensor([4], -0.2, 0.2), variance = rng.uniformTensor([4], 0.5, 1.5)
        let variants: [(String, (Variable, Variable, Variable, Bool) -> Variable)] = [
            ("batch train", { x, w, b, r in F.batchNormTrain(x, w, b, runningMean: nil, runningVar: nil, relu: r) }),
            ("batch eval", { x, w, b, r in F.batchNormEval(x, w, b, runningMean: mean, runningVar: variance, relu: r) }),
            ("group", { x, w, b, r in F.groupNorm(x, groups: 2, w, b, relu: r) }),
            ("instance", { x, w, b, r in F.instanceNorm(x, w, b, relu: r) }),
        ]
        // x's gradient is written first by the normalisation, or (with the skip, y = norm(x) + x) added to the skip's.
        for (name, op) in variants {
            for skip in [false, true] {
                var results: [[Tensor]] = []
                for fused in [true, false] {
                    let (x, w, b) = (Variable(x0.copy(), requiresGrad: true), Variable(w0.copy(), requiresGrad: true), Variable(b0.copy(), requiresGrad: true))
                    let tape = Tape()
                    let y = tape.record {
                        let normalised = fused ? op(x, w, b, true) : F.relu(op(x, w, b, false))
                        return skip ? F.add(normalised, x) : normalised
                    }
                    let value = y.value.copy()
                    tape.backward([(y, dy)])
                    results.append([value, x.grad ?? Tensor(zeros: [1]), w.grad ?? Tensor(zeros: [1]), b.grad ?? Tensor(zeros: [1])])
                }
                for (a, b) in zip(results[0], results[1]) {
                    var worst: Float = 0
                    for i in 0..<a.count {
                        let difference = abs(a.pointer[i] - b.pointer[i])
                        worst = difference.isNaN ? .infinity : max(worst, difference)
                    }
                    #expect(worst < 1e-5, "\(name)\(skip ? " with a skip" : ""): fused and unfused differ by \(worst)")
                }
            }
        }
    }
}

@Suite struct FusedJoinTests {
    /// The decoder's up-sampling written straight into the joined map equals the transposed convolution
    /// followed by concat, in value and in every gradient: the blockwise kernel (2x2, stride 2) and the
    /// general one (3x3, stride 2), with the skip's gradient written first or added to another use's.
    @Test func joinedEqualsTransposedConvolutionThenConcat() {
        var rng = RNG(seed: 12)
        for kernel in [2, 3] {
            let (n, cin, cout, cs, h) = (2, 5, 3, 4, 6)
            let out = ConvTranspose2D.outputSize(h, k: kernel, stride: 2, padding: 0)
            let x0 = rng.uniformTensor([n, cin, h, h], -1, 1), w0 = rng.uniformTensor([cin, cout, kernel, kernel], -1, 1)
            let b0 = rng.uniformTensor([cout], -1, 1), s0 = rng.uniformTensor([n, cs, out, out], -1, 1)
            let dy = rng.uniformTensor([n, cout + cs, out, out], -1, 1), dz = rng.uniformTensor([n, cs, out, out], -1, 1)
            for skipUsedAfter in [false, true] {
                var results: [[Tensor]] = []
                for fused in [true, false] {
                    let x = Variable(x0.copy(), requiresGrad: true), w = Variable(w0.copy(), requiresGrad: true)
                    let b = Variable(b0.copy(), requiresGrad: true), skip = Variable(s0.copy(), requiresGrad: true)
                    let tape = Tape()
                    let (y, z) = tape.record {
                        let y = fused ? F.convTranspose2dJoined(x, w, b, stride: 2, skip: skip)
                                      : F.concat([F.convTranspose2d(x, w, b, stride: 2), skip])
                        // Another use of the skip after the join: its gradient reaches the skip first.
                        return (y, skipUsedAfter ? F.scale(skip, 3) : nil)
                    }
                    let value = y.value.copy()
                    tape.backward([(y, dy)] + (z.map { [($0, dz)] } ?? []))
                    results.append([value] + [x, w, b, skip].map { $0.grad ?? Tensor(zeros: [1]) })
                }
                for (index, (a, c)) in zip(results[0], results[1]).enumerated() {
                    var worst: Float = a.count == c.count ? 0 : .infinity
                    for i in 0..<min(a.count, c.count) {
                        let difference = abs(a.pointer[i] - c.pointer[i])
                        worst = difference.isNaN ? .infinity : max(worst, difference)
                    }
                    #expect(worst < 1e-5, "kernel \(kernel)\(skipUsedAfter ? ", skip used after" : ""): output \(index) differs by \(worst)")
                }
            }
        }
    }
}
