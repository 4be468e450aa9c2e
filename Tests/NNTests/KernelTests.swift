import Architecture
import Foundation
import NN
import Tensor
import Testing

/// Fast kernels against their naive references (llm.c's `*_naive` algorithmic references).
@Suite struct KernelTests {
    static let geometries = [
        ConvGeometry(n: 2, c: 3, h: 9, w: 7, o: 5, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 3, c: 2, h: 11, w: 10, o: 4, kh: 3, kw: 3, stride: 2, padding: 3, dilation: 3),
        ConvGeometry(n: 2, c: 3, h: 16, w: 16, o: 6, kh: 7, kw: 7, stride: 2, padding: 3),
        ConvGeometry(n: 2, c: 8, h: 5, w: 6, o: 3, kh: 1, kw: 1),
        ConvGeometry(n: 1, c: 4, h: 6, w: 6, o: 2, kh: 3, kw: 3, stride: 1, padding: 2, dilation: 2),
        // Odd sizes: a 1x1 map under a 3x3 kernel, and rows shorter than the kernel's reach.
        ConvGeometry(n: 1, c: 3, h: 1, w: 1, o: 2, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 2, c: 1, h: 2, w: 17, o: 3, kh: 3, kw: 3, stride: 1, padding: 1),
    ]

    /// The branch-free ReLU and its mask, and the vector sum, against their defining loops
    /// over lengths around the vector width (tails of every size, and none).
    @Test func vectorKernelsMatchTheirLoops() {
        var rng = RNG(seed: 41)
        for count in [0, 1, 15, 16, 17, 31, 33, 100] {
            let y = rng.uniformTensor([max(1, count)], -1, 1), dy = rng.uniformTensor([max(1, count)], -1, 1)
            let a = Tensor(shape: y.shape, values: y.values), b = Tensor(shape: y.shape, values: y.values)
            Rectifier.rectify(a.pointer, 0..<count)
            Rectifier.rectifyNaive(b.pointer, 0..<count)
            #expect(a.values == b.values, "rectify \(count)")
            let g1 = Tensor(zeros: y.shape), g2 = Tensor(zeros: y.shape)
            Rectifier.mask(y.pointer, dy.pointer, g1.pointer, 0..<count)
            Rectifier.maskNaive(y.pointer, dy.pointer, g2.pointer, 0..<count)
            #expect(g1.values == g2.values, "mask \(count)")
            let exact = (0..<count).reduce(0.0) { $0 + Double(dy.pointer[$1]) }
            #expect(abs(Double(Reduction.sum(dy.pointer, count: count)) - exact) < 1e-5, "sum \(count)")
        }
        // Normalisation sums over eight accumulators against the left-to-right Double sums.
        for count in [0, 1, 7, 8, 9, 100, 1001] {
            let x = rng.uniformTensor([max(1, count)], -3, 3), dy = rng.uniformTensor([max(1, count)], -1, 1)
            let (mean, rstd): (Float, Float) = (0.25, 1.5)
            var s = 0.0, sq = 0.0, a = 0.0, b = 0.0
            for i in 0..<count {
                s += Double(x.pointer[i]); sq += (Double(x.pointer[i]) - 0.1) * (Double(x.pointer[i]) - 0.1)
                a += Double(dy.pointer[i]); b += Double(dy.pointer[i]) * Double((x.pointer[i] - mean) * rstd)
            }
            #expect(abs(Sums.sum(x.pointer, count: count) - s) < 1e-9, "sum \(count)")
            #expect(abs(Sums.squaredDeviations(x.pointer, count: count, from: 0.1) - sq) < 1e-9, "squares \(count)")
            let m = Sums.shiftedMoments(x.pointer, count: count, shift: 0.1)
            #expect(abs(m.0 - (s - 0.1 * Double(count))) < 1e-9 && abs(m.1 - sq) < 1e-9, "shifted moments \(count)")
            let g = Sums.gradientSums(dy.pointer, x.pointer, count: count, mean: mean, rstd: rstd)
            #expect(abs(g.0 - a) < 1e-9 && abs(g.1 - b) < 1e-9, "gradient sums \(count)")
        }
        // A range that starts inside the buffer.
        let z = Tensor(shape: [40], values: (0..<40).map { Float($0 % 3) - 1 })
        Rectifier.rectify(z.pointer, 5..<38)
        #expect((0..<40).allSatisfy { i in z.pointer[i] == ((5..<38).contains(i) ? max(0, Float(i % 3) - 1) : Float(i % 3) - 1) })
    }

    /// The one-pass statistics keep the variance of values far from zero: instance norm over
    /// planes at 1e6 + multiples of 1/16 (exact in Float), against two passes in Double. Moments
    /// about zero would lose it: E[x^2] ~ 1e12 carries about 1e-4 of rounding per term.
    @Test func normalisationStatisticsSurviveALargeMean() {
        let (planes, inner) = (3, 1000)
        let x = Tensor(shape: [1, planes, inner], values: (0..<(planes * inner)).map { i in 1e6 + Float((i * 7 + i / inner) % 5) / 16 })
        let y = Tensor(zeros: x.shape), stats = Tensor(zeros: [2 * planes])
        Normalization.forward(x.pointer, nil, nil, y.pointer, stats.pointer,
                              NormLayout(outer: 1, channels: planes, inner: inner, acrossBatch: false, channelsPerGroup: 1), eps: 0)
        for p in 0..<planes {
            let values = (0..<inner).map { Double(x.pointer[p * inner + $0]) }
            let mean = values.reduce(0, +) / Double(inner)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(inner)
            #expect(abs(Double(stats.pointer[2 * p]) - mean) <= 0.0625, "mean of plane \(p)")
            #expect(abs(Double(stats.pointer[2 * p + 1]) * variance.squareRoot() - 1) < 1e-6, "rstd of plane \(p)")
        }
    }

    @Test(arguments: 0..<geometries.count)
    func convolutionMatchesItsNaiveReference(_ index: Int) {
        let g = Self.geometries[index]
        var rng = RNG(seed: UInt64(index))
        let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1), w = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -1, 1)
        let b = rng.uniformTensor([g.o], -1, 1), dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1)
        let fast = Tensor(zeros: dy.shape), slow = Tensor(zeros: dy.shape)
        Conv2D.forward(x.pointer, w.pointer, b.pointer, fast.pointer, g)
        Conv2D.forwardNaive(x.pointer, w.pointer, b.pointer, slow.pointer, g)
        expectClose(fast, slow)
        let (dx1, dw1, db1) = (Tensor(zeros: x.shape), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        let (dx2, dw2, db2) = (Tensor(zeros: x.shape), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        Conv2D.backward(x.pointer, w.pointer, dy.pointer, dx1.pointer, dw1.pointer, db1.pointer, g)
        Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx2.pointer, dw2.pointer, db2.pointer, g)
        expectClose(dx1, dx2)
        expectClose(dw1, dw2)
        expectClose(db1, db2)
    }

    /// 3D shapes: anisotropic kernels, strides and paddings, dilation, a 1x1x1 kernel, a
    /// volume thinner than the kernel's reach, strides along w (the strided copy), and a
    /// layer whose column matrix takes several bands (K x Q = 432 x 128: 18 of its 24 rows in the first band).
    static let volumeGeometries = [
        VolumeGeometry(n: 2, c: 3, size: [4, 5, 6], o: 4, kernel: [3, 3, 3], padding: [1, 1, 1]),
        VolumeGeometry(n: 1, c: 2, size: [3, 7, 6], o: 3, kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1]),
        VolumeGeometry(n: 2, c: 2, size: [7, 6, 9], o: 2, kernel: [3, 3, 3], stride: [2, 1, 3], padding: [2, 2, 2], dilation: [2, 2, 2]),
        VolumeGeometry(n: 2, c: 5, size: [3, 4, 5], o: 3, kernel: [1, 1, 1]),
        VolumeGeometry(n: 1, c: 2, size: [1, 2, 9], o: 2, kernel: [3, 3, 3], padding: [1, 1, 1]),
        VolumeGeometry(n: 1, c: 16, size: [3, 8, 128], o: 2, kernel: [3, 3, 3], padding: [1, 1, 1]),
    ]

    /// Conv3D against the defining sum, and ConvTranspose3D against the same sum read
    /// as its adjoint (its forward is the convolution's input gradient, its input gradient the convolution).
    @Test(arguments: 0..<volumeGeometries.count)
    func volumeConvolutionMatchesItsNaiveReference(_ index: Int) {
        let g = Self.volumeGeometries[index]
        var rng = RNG(seed: UInt64(100 + index))
        let x = rng.uniformTensor([g.n, g.c] + g.size, -1, 1), w = rng.uniformTensor([g.o, g.c] + g.kernel, -1, 1)
        let b = rng.uniformTensor([g.o], -1, 1), dy = rng.uniformTensor([g.n, g.o] + g.output, -1, 1)
        let fast = Tensor(zeros: dy.shape), slow = Tensor(zeros: dy.shape)
        Conv3D.forward(x.pointer, w.pointer, b.pointer, fast.pointer, g)
        Conv3D.forwardNaive(x.pointer, w.pointer, b.pointer, slow.pointer, g)
        expectClose(fast, slow)
        // Backward accumulates: start from non-zero gradients.
        let start = rng.uniformTensor(x.shape, -1, 1)
        let (dx1, dw1, db1) = (start.copy(), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        let (dx2, dw2, db2) = (start.copy(), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        Conv3D.backward(x.pointer, w.pointer, dy.pointer, dx1.pointer, dw1.pointer, db1.pointer, g)
        Conv3D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx2.pointer, dw2.pointer, db2.pointer, g)
        expectClose(dx1, dx2)
        // The naive weight gradient sums up to 3,000 terms in Float.
        expectClose(dw1, dw2, atol: 5e-4)
        expectClose(db1, db2)

        // Transposed: input dy (the convolution's output space), output in x's space, bias per output channel g.c.
        let tb = rng.uniformTensor([g.c], -1, 1), ty = Tensor(zeros: x.shape), tref = Tensor(zeros: x.shape)
        ConvTranspose3D.forward(dy.pointer, w.pointer, tb.pointer, ty.pointer, g)
        let unused = Tensor(zeros: w.shape)
        withExtendedLifetime(unused) { Conv3D.backwardNaive(x.pointer, w.pointer, dy.pointer, tref.pointer, unused.pointer, nil, g) }
        for ch in 0..<(g.n * g.c) { for i in 0..<g.size.reduce(1, *) { tref.pointer[ch * g.size.reduce(1, *) + i] += tb.pointer[ch % g.c] } }
        expectClose(ty, tref)
        let (tdx1, tdw1, tdb1) = (Tensor(zeros: dy.shape), Tensor(zeros: w.shape), Tensor(zeros: [g.c]))
        ConvTranspose3D.backward(dy.pointer, w.pointer, x.pointer, tdx1.pointer, tdw1.pointer, tdb1.pointer, g)
        let (tdx2, tdw2) = (Tensor(zeros: dy.shape), Tensor(zeros: w.shape))
        Conv3D.forwardNaive(x.pointer, w.pointer, nil, tdx2.pointer, g)
        Conv3D.backwardNaive(x.pointer, w.pointer, dy.pointer, nil, tdw2.pointer, nil, g)
        expectClose(tdx1, tdx2)
        expectClose(tdw1, tdw2, atol: 5e-4)
        let sums = (0..<g.c).map { ch in (0..<g.n).reduce(0.0) { acc, n in
            acc + (0..<g.size.reduce(1, *)).reduce(0.0) { $0 + Double(x.pointer[(n * g.c + ch) * g.size.reduce(1, *) + $1]) } } }
        expectClose(tdb1, Tensor(shape: [g.c], values: sums.map { Float($0) }))
    }

    /// The up-sampling transposed convolution (kernel = stride, no padding: each input pixel writes its own
    /// block, the output permuted from one product) against the defining sum read as a convolution's
    /// adjoint, as for 3D above: a 2x2 and a 3x3 block, and a layer whose product takes two bands
    /// (K x Q = 256 x 64, 64 of its 100 rows in the first). Its input gradient overwrites a NaN-filled
    /// buffer (any element it failed to write shows) or adds into one that holds another share.
    @Test func blockwiseTransposedConvolutionMatchesTheAdjointSum() {
        let geometries = [
            ConvGeometry(n: 2, c: 5, h: 12, w: 10, o: 7, kh: 2, kw: 2, stride: 2),
            ConvGeometry(n: 1, c: 3, h: 9, w: 6, o: 4, kh: 3, kw: 3, stride: 3),
            ConvGeometry(n: 1, c: 64, h: 200, w: 128, o: 3, kh: 2, kw: 2, stride: 2),
        ]
        for (index, g) in geometries.enumerated() {
            #expect(g.isBlockwise)
            var rng = RNG(seed: UInt64(500 + index))
            let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1), w = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -1, 1)
            let dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1), tb = rng.uniformTensor([g.c], -1, 1)
            // Forward: input dy's space, output x's space, with a bias per output channel.
            let ty = Tensor(shape: x.shape, repeating: .nan), tref = Tensor(zeros: x.shape), unused = Tensor(zeros: w.shape)
            ConvTranspose2D.forward(dy.pointer, w.pointer, tb.pointer, ty.pointer, g)
            withExtendedLifetime(unused) { Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, tref.pointer, unused.pointer, nil, g) }
            let plane = g.h * g.w
            for ch in 0..<(g.n * g.c) { for i in 0..<plane { tref.pointer[ch * plane + i] += tb.pointer[ch % g.c] } }
            expectClose(ty, tref)
            // Backward, its input gradient overwriting a fresh buffer: the convolution, and the weight and bias gradients.
            let (tdx1, tdw1, tdb1) = (Tensor(shape: dy.shape, repeating: .nan), Tensor(zeros: w.shape), Tensor(zeros: [g.c]))
            ConvTranspose2D.backward(dy.pointer, w.pointer, x.pointer, tdx1.pointer, tdw1.pointer, tdb1.pointer, g, dxAccumulates: false)
            let (tdx2, tdw2) = (Tensor(zeros: dy.shape), Tensor(zeros: w.shape))
            Conv2D.forwardNaive(x.pointer, w.pointer, nil, tdx2.pointer, g)
            Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, nil, tdw2.pointer, nil, g)
            expectClose(tdx1, tdx2)
            expectClose(tdw1, tdw2, atol: 5e-4)
            let sums = (0..<g.c).map { ch in (0..<g.n).reduce(0.0) { acc, n in (0..<plane).reduce(acc) { $0 + Double(x.pointer[(n * g.c + ch) * plane + $1]) } } }
            expectClose(tdb1, Tensor(shape: [g.c], values: sums.map { Float($0) }))
            // Accumulating: onto another share.
            let start = rng.uniformTensor(dy.shape, -1, 1), tdx3 = start.copy(), tdw3 = Tensor(zeros: w.shape)
            ConvTranspose2D.backward(dy.pointer, w.pointer, x.pointer, tdx3.pointer, tdw3.pointer, nil, g)
            for i in 0..<start.count { tdx2.pointer[i] += start.pointer[i] }
            expectClose(tdx3, tdx2)
        }
    }

    /// The same over volumes: 2x2x2 blocks, nnU-Net's 1x2x2, a 3x2x1 one (no interleaving along rows), and
    /// a layer whose product takes several bands of rows, against the naive 3D convolution read as its adjoint.
    @Test func blockwiseTransposedVolumeConvolutionMatchesTheAdjointSum() {
        let geometries = [
            VolumeGeometry(n: 2, c: 3, size: [8, 6, 10], o: 5, kernel: [2, 2, 2], stride: [2, 2, 2]),
            VolumeGeometry(n: 1, c: 4, size: [3, 8, 6], o: 2, kernel: [1, 2, 2], stride: [1, 2, 2]),
            VolumeGeometry(n: 1, c: 2, size: [6, 4, 5], o: 3, kernel: [3, 2, 1], stride: [3, 2, 1]),
            VolumeGeometry(n: 1, c: 16, size: [40, 40, 64], o: 3, kernel: [2, 2, 2], stride: [2, 2, 2]),
        ]
        for (index, g) in geometries.enumerated() {
            #expect(g.isBlockwise)
            var rng = RNG(seed: UInt64(700 + index))
            let x = rng.uniformTensor([g.n, g.c] + g.size, -1, 1), w = rng.uniformTensor([g.o, g.c] + g.kernel, -1, 1)
            let dy = rng.uniformTensor([g.n, g.o] + g.output, -1, 1), tb = rng.uniformTensor([g.c], -1, 1)
            // Forward: input dy's space, output x's space, with a bias per output channel, over a NaN-filled output.
            let ty = Tensor(shape: x.shape, repeating: .nan), tref = Tensor(zeros: x.shape), unused = Tensor(zeros: w.shape)
            ConvTranspose3D.forward(dy.pointer, w.pointer, tb.pointer, ty.pointer, g)
            withExtendedLifetime(unused) { Conv3D.backwardNaive(x.pointer, w.pointer, dy.pointer, tref.pointer, unused.pointer, nil, g) }
            let voxels = g.size.reduce(1, *)
            for ch in 0..<(g.n * g.c) { for i in 0..<voxels { tref.pointer[ch * voxels + i] += tb.pointer[ch % g.c] } }
            expectClose(ty, tref)
            // Backward, adding into dx: the convolution, and the weight and bias gradients.
            let start = rng.uniformTensor(dy.shape, -1, 1), tdx = start.copy()
            let (tdw, tdb) = (Tensor(zeros: w.shape), Tensor(zeros: [g.c]))
            ConvTranspose3D.backward(dy.pointer, w.pointer, x.pointer, tdx.pointer, tdw.pointer, tdb.pointer, g)
            let (rdx, rdw) = (Tensor(zeros: dy.shape), Tensor(zeros: w.shape))
            Conv3D.forwardNaive(x.pointer, w.pointer, nil, rdx.pointer, g)
            Conv3D.backwardNaive(x.pointer, w.pointer, dy.pointer, nil, rdw.pointer, nil, g)
            for i in 0..<start.count { rdx.pointer[i] += start.pointer[i] }
            expectClose(tdx, rdx)
            expectClose(tdw, rdw, atol: 5e-4)
            let sums = (0..<g.c).map { ch in (0..<g.n).reduce(0.0) { acc, n in (0..<voxels).reduce(acc) { $0 + Double(x.pointer[(n * g.c + ch) * voxels + $1]) } } }
            expectClose(tdb, Tensor(shape: [g.c], values: sums.map { Float($0) }))
        }
    }

    /// A convolution's input gradient that overwrites a fresh (NaN-filled) buffer instead of adding
    /// into it (the first gradient an input receives), on each algorithm, against the naive sum.
    @Test func inputGradientOverwritesAFreshBuffer() {
        let g = ConvGeometry(n: 2, c: 8, h: 19, w: 33, o: 7, kh: 3, kw: 3, stride: 1, padding: 1)
        var rng = RNG(seed: 600)
        let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1), w = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -1, 1)
        let dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1)
        let (reference, weights) = (Tensor(zeros: x.shape), Tensor(zeros: w.shape))
        Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, reference.pointer, weights.pointer, nil, g)
        let algorithms: [ConvAlgorithm] = [.gemm, .winograd] + (DirectConvolution.isAvailable ? [.direct] : [])
        for algorithm in algorithms {
            let (dx, dw) = (Tensor(shape: x.shape, repeating: .nan), Tensor(zeros: w.shape))
            Conv2D.backward(x.pointer, w.pointer, dy.pointer, dx.pointer, dw.pointer, nil, g, dxAccumulates: false,
                            inputGradient: algorithm, weightGradient: .gemm)
            expectClose(dx, reference)
            expectClose(dw, weights)
        }
    }

    /// 3D pooling against its defining loops, and 2D pooling (the same kernel at depth 1) against a 2D loop;
    /// the 2x2 window's vector path over rows of 37 windows (two vectors and a tail), its values also
    /// drawn from {-1, 0, 1} so that most windows tie (the first maximum in row-major order wins).
    @Test func poolingMatchesItsDefiningLoops() {
        var rng = RNG(seed: 77)
        for (size, kernel, stride, ties) in [([5, 6, 7], [2, 2, 2], [2, 2, 2], false), ([3, 6, 5], [1, 2, 2], [1, 2, 2], false),
                                             ([4, 5, 6], [2, 3, 2], [1, 2, 3], false), ([1, 9, 8], [1, 2, 2], [1, 2, 2], false),
                                             ([2, 5, 75], [1, 2, 2], [1, 2, 2], false), ([1, 4, 74], [1, 2, 2], [1, 2, 2], true)] {
            let g = PoolGeometry(planes: 3, size: size, kernel: kernel, stride: stride)
            let x = rng.uniformTensor([3] + size, -1, 1), dy = rng.uniformTensor([3] + g.output, -1, 1)
            if ties { for i in 0..<x.count { x.pointer[i] = x.pointer[i].rounded() } }
            let (ymax, yavg) = (Tensor(zeros: dy.shape), Tensor(zeros: dy.shape))
            let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: dy.count)
            defer { argmax.deallocate() }
            Pooling.maxForward(x.pointer, ymax.pointer, argmax, g)
            Pooling.avgForward(x.pointer, yavg.pointer, g)
            let (dmax, davg) = (Tensor(zeros: x.shape), Tensor(zeros: x.shape))
            Pooling.maxBackward(dy.pointer, argmax, dmax.pointer, g)
            Pooling.avgBackward(dy.pointer, davg.pointer, g)
            let (refMax, refAvg, refDmax, refDavg) = (Tensor(zeros: dy.shape), Tensor(zeros: dy.shape), Tensor(zeros: x.shape), Tensor(zeros: x.shape))
            let out = g.output, (D, H, W) = (size[0], size[1], size[2])
            for p in 0..<3 { for i in 0..<out[0] { for j in 0..<out[1] { for l in 0..<out[2] {
                let o = ((p * out[0] + i) * out[1] + j) * out[2] + l
                var best = -Float.infinity, at = 0, sum = 0.0
                for a in 0..<kernel[0] { for u in 0..<kernel[1] { for v in 0..<kernel[2] {
                    let idx = ((p * D + i * stride[0] + a) * H + j * stride[1] + u) * W + l * stride[2] + v
                    sum += Double(x.pointer[idx])
                    if x.pointer[idx] > best { best = x.pointer[idx]; at = idx }
                } } }
                let volume = kernel.reduce(1, *)
                refMax.pointer[o] = best
                refAvg.pointer[o] = Float(sum / Double(volume))
                refDmax.pointer[at] += dy.pointer[o]
                for a in 0..<kernel[0] { for u in 0..<kernel[1] { for v in 0..<kernel[2] {
                    refDavg.pointer[((p * D + i * stride[0] + a) * H + j * stride[1] + u) * W + l * stride[2] + v] += dy.pointer[o] / Float(volume)
                } } }
            } } } }
            #expect(ymax.values == refMax.values, "max \(size) \(kernel) \(stride)")
            #expect(dmax.values == refDmax.values, "max backward \(size) \(kernel) \(stride)")
            expectClose(yavg, refAvg, atol: 1e-6)
            expectClose(davg, refDavg, atol: 1e-6)
        }
    }

    /// Shapes for the direct kernel's edges: rows of 1 to 5 vectors with tails,
    /// output channels not a multiple of its block of 6, 5x5 and unpadded kernels,
    /// a single image (split into bands of rows across threads), one input channel;
    /// deep layers whose forward pass (c 256) or input gradient (o 256) stages the image
    /// in several bands of rows; output rows in pairs for the weight gradient, with an odd
    /// row left over, and with no padding; a weight gradient in two bands of rows (32 rows, then
    /// 5), each staging its own input rows.
    static let directGeometries = [
        ConvGeometry(n: 2, c: 3, h: 9, w: 70, o: 7, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 1, c: 5, h: 12, w: 37, o: 13, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 3, c: 4, h: 6, w: 16, o: 6, kh: 3, kw: 3, stride: 1, padding: 0),
        ConvGeometry(n: 2, c: 2, h: 11, w: 90, o: 5, kh: 5, kw: 5, stride: 1, padding: 2),
        ConvGeometry(n: 1, c: 1, h: 3, w: 5, o: 2, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 2, c: 7, h: 8, w: 8, o: 1, kh: 7, kw: 7, stride: 1, padding: 3),
        ConvGeometry(n: 2, c: 3, h: 5, w: 20, o: 3, kh: 3, kw: 3, stride: 1, padding: 2),
        ConvGeometry(n: 1, c: 256, h: 20, w: 32, o: 8, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 1, c: 8, h: 19, w: 32, o: 256, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 2, c: 9, h: 8, w: 20, o: 4, kh: 3, kw: 3, stride: 1, padding: 0),
        ConvGeometry(n: 2, c: 3, h: 37, w: 64, o: 64, kh: 3, kw: 3, stride: 1, padding: 1),
    ]

    /// The direct kernels, forced for every pass they support, against the naive reference: at every
    /// width this CPU runs (AVX-512 and AVX2 on a CPU with AVX-512).
    @Test(.enabled(if: DirectConvolution.isAvailable, "this CPU has neither AVX2 with FMA nor AVX-512"),
          arguments: 0..<directGeometries.count, DirectConvolution.widths)
    func directConvolutionMatchesItsNaiveReference(_ index: Int, lanes: Int) {
        DirectConvolution.$lanesOverride.withValue(lanes) { directConvolutionMatchesItsNaiveReference(index) }
    }

    private func directConvolutionMatchesItsNaiveReference(_ index: Int) {
        let g = Self.directGeometries[index]
        var rng = RNG(seed: UInt64(100 + index))
        let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1), w = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -1, 1)
        let b = rng.uniformTensor([g.o], -1, 1), dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1)
        let fast = Tensor(zeros: dy.shape), slow = Tensor(zeros: dy.shape)
        #expect(DirectConvolution.supports(g, .forward) && DirectConvolution.supports(g, .inputGradient))
        Conv2D.forward(x.pointer, w.pointer, b.pointer, fast.pointer, g, algorithm: .direct)
        Conv2D.forwardNaive(x.pointer, w.pointer, b.pointer, slow.pointer, g)
        expectClose(fast, slow)
        // Backward accumulates: start from non-zero gradients on both sides.
        let start = rng.uniformTensor(x.shape, -1, 1)
        let (dx1, dw1, db1) = (start.copy(), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        let (dx2, dw2, db2) = (start.copy(), Tensor(zeros: w.shape), Tensor(zeros: b.shape))
        // The weight gradient's kernel is 3x3 only.
        #expect(DirectConvolution.supports(g, .weightGradient) == (g.kh == 3))
        Conv2D.backward(x.pointer, w.pointer, dy.pointer, dx1.pointer, dw1.pointer, db1.pointer, g, inputGradient: .direct,
                        weightGradient: g.kh == 3 ? .direct : .gemm)
        Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx2.pointer, dw2.pointer, db2.pointer, g)
        expectClose(dx1, dx2)
        expectClose(dw1, dw2)
        expectClose(db1, db2)
    }

    /// Shapes for Winograd's edges: odd heights and widths (the last tile row and column cut),
    /// padding 0, 1 and 2, a 1x1 and a 2x3 image, one channel, bands of tile rows (a deep layer
    /// whose band is one tile row; a layer of 128 channels whose band, held in L2 whole, is 6 of
    /// its 10 tile rows), a single image and a batch, and weight-gradient bands that span two images.
    static let winogradGeometries = [
        ConvGeometry(n: 2, c: 3, h: 9, w: 11, o: 5, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 1, c: 4, h: 8, w: 8, o: 6, kh: 3, kw: 3, stride: 1, padding: 0),
        ConvGeometry(n: 2, c: 2, h: 7, w: 6, o: 3, kh: 3, kw: 3, stride: 1, padding: 2),
        ConvGeometry(n: 3, c: 1, h: 1, w: 1, o: 2, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 1, c: 5, h: 2, w: 3, o: 4, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 1, c: 520, h: 5, w: 130, o: 3, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 3, c: 300, h: 9, w: 250, o: 2, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvGeometry(n: 1, c: 128, h: 20, w: 40, o: 3, kh: 3, kw: 3, stride: 1, padding: 1),
    ]

    /// Winograd F(2x2, 3x3), forced for its forward pass and input gradient, against the naive reference.
    @Test(arguments: 0..<winogradGeometries.count)
    func winogradMatchesItsNaiveReference(_ index: Int) {
        let g = Self.winogradGeometries[index]
        var rng = RNG(seed: UInt64(300 + index))
        let x = rng.uniformTensor([g.n, g.c, g.h, g.w], -1, 1), w = rng.uniformTensor([g.o, g.c, g.kh, g.kw], -1, 1)
        let b = rng.uniformTensor([g.o], -1, 1), dy = rng.uniformTensor([g.n, g.o, g.p, g.q], -1, 1)
        #expect(ConvPass.allCases.allSatisfy { Winograd.supports(g, $0) })
        let fast = Tensor(zeros: dy.shape), slow = Tensor(zeros: dy.shape)
        Conv2D.forward(x.pointer, w.pointer, b.pointer, fast.pointer, g, algorithm: .winograd)
        Conv2D.forwardNaive(x.pointer, w.pointer, b.pointer, slow.pointer, g)
        expectClose(fast, slow)
        // The input gradient accumulates: start from non-zero gradients on both sides.
        let start = rng.uniformTensor(x.shape, -1, 1)
        let (dx1, dw1, db1) = (start.copy(), rng.uniformTensor(w.shape, -1, 1), rng.uniformTensor(b.shape, -1, 1))
        let (dx2, dw2, db2) = (dx1.copy(), dw1.copy(), db1.copy())
        Conv2D.backward(x.pointer, w.pointer, dy.pointer, dx1.pointer, dw1.pointer, db1.pointer, g, inputGradient: .winograd, weightGradient: .winograd)
        Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx2.pointer, dw2.pointer, db2.pointer, g)
        expectClose(dx1, dx2)
        expectClose(dw1, dw2)
        expectClose(db1, db2)
        // The weight gradient on Winograd beside an input gradient on im2col + sgemm.
        let (dx3, dw3) = (start.copy(), Tensor(zeros: w.shape)), (dx4, dw4) = (start.copy(), Tensor(zeros: w.shape))
        Conv2D.backward(x.pointer, w.pointer, dy.pointer, dx3.pointer, dw3.pointer, nil, g, inputGradient: .gemm, weightGradient: .winograd)
        Conv2D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx4.pointer, dw4.pointer, nil, g)
        expectClose(dx3, dx4)
        expectClose(dw3, dw4)
    }

    /// Winograd's contract: 3x3, stride 1, no dilation, padding up to 2; the runtime never picks it elsewhere,
    /// and picks it for every pass of a deep layer.
    @Test func winogradIsChosenOnlyWithinItsContract() {
        for g in [ConvGeometry(n: 8, c: 512, h: 32, w: 32, o: 512, kh: 3, kw: 3, stride: 2, padding: 1),
                  ConvGeometry(n: 8, c: 512, h: 32, w: 32, o: 512, kh: 3, kw: 3, stride: 1, padding: 2, dilation: 2),
                  ConvGeometry(n: 8, c: 512, h: 32, w: 32, o: 512, kh: 5, kw: 5, stride: 1, padding: 2),
                  ConvGeometry(n: 8, c: 512, h: 32, w: 32, o: 512, kh: 1, kw: 1),
                  ConvGeometry(n: 8, c: 512, h: 32, w: 32, o: 512, kh: 3, kw: 3, stride: 1, padding: 3)] {
            for pass in ConvPass.allCases {
                #expect(!Winograd.supports(g, pass) && ConvAlgorithm.rule(g, pass) != .winograd, "\(g) \(pass)")
            }
        }
        let deep = ConvGeometry(n: 8, c: 512, h: 32, w: 32, o: 512, kh: 3, kw: 3, stride: 1, padding: 1)
        #expect(ConvPass.allCases.allSatisfy { ConvAlgorithm.rule(deep, $0) == .winograd })
    }

    /// 3D shapes for the direct kernel: 3x3x3 and nnU-Net's 1x3x3, depth padding 0, 1 and 2
    /// (a 5x3x3 kernel), depth taps cut by the volume's edges, rows with tails, a single volume
    /// (slices split into bands of rows across threads), output channels not a multiple of 6, and
    /// a deep layer staged in several bands of rows.
    static let volumeDirectGeometries = [
        VolumeGeometry(n: 2, c: 3, size: [4, 5, 70], o: 7, kernel: [3, 3, 3], padding: [1, 1, 1]),
        VolumeGeometry(n: 1, c: 4, size: [3, 6, 37], o: 5, kernel: [1, 3, 3], padding: [0, 1, 1]),
        VolumeGeometry(n: 1, c: 2, size: [2, 4, 20], o: 13, kernel: [5, 3, 3], padding: [2, 1, 1]),
        VolumeGeometry(n: 2, c: 2, size: [5, 6, 18], o: 3, kernel: [3, 3, 3], padding: [0, 0, 0]),
        VolumeGeometry(n: 1, c: 96, size: [3, 17, 32], o: 4, kernel: [3, 3, 3], padding: [1, 1, 1]),
    ]

    @Test(.enabled(if: DirectConvolution.isAvailable, "this CPU has neither AVX2 with FMA nor AVX-512"),
          arguments: 0..<volumeDirectGeometries.count, DirectConvolution.widths)
    func volumeDirectConvolutionMatchesItsNaiveReference(_ index: Int, lanes: Int) {
        DirectConvolution.$lanesOverride.withValue(lanes) { volumeDirectConvolutionMatchesItsNaiveReference(index) }
    }

    private func volumeDirectConvolutionMatchesItsNaiveReference(_ index: Int) {
        let g = Self.volumeDirectGeometries[index]
        var rng = RNG(seed: UInt64(300 + index))
        let x = rng.uniformTensor([g.n, g.c] + g.size, -1, 1), w = rng.uniformTensor([g.o, g.c] + g.kernel, -1, 1)
        let b = rng.uniformTensor([g.o], -1, 1), dy = rng.uniformTensor([g.n, g.o] + g.output, -1, 1)
        #expect(DirectConvolution.supports(g, .forward) && DirectConvolution.supports(g, .inputGradient))
        let fast = Tensor(zeros: dy.shape), slow = Tensor(zeros: dy.shape)
        Conv3D.forward(x.pointer, w.pointer, b.pointer, fast.pointer, g, algorithm: .direct)
        Conv3D.forwardNaive(x.pointer, w.pointer, b.pointer, slow.pointer, g)
        expectClose(fast, slow)
        let start = rng.uniformTensor(x.shape, -1, 1)
        let (dx1, dw1) = (start.copy(), Tensor(zeros: w.shape)), (dx2, dw2) = (start.copy(), Tensor(zeros: w.shape))
        let (db1, db2) = (rng.uniformTensor(b.shape, -1, 1), Tensor(zeros: b.shape))
        db2.pointer.update(from: db1.pointer, count: g.o)
        #expect(DirectConvolution.supports(g, .weightGradient))
        Conv3D.backward(x.pointer, w.pointer, dy.pointer, dx1.pointer, dw1.pointer, db1.pointer, g, inputGradient: .direct, weightGradient: .direct)
        Conv3D.backwardNaive(x.pointer, w.pointer, dy.pointer, dx2.pointer, dw2.pointer, db2.pointer, g)
        expectClose(dx1, dx2)
        expectClose(dw1, dw2, atol: 5e-4)
        expectClose(db1, db2, atol: 5e-4)
    }

    /// The 3D rule: direct for stride-1 layers with rows of 64 or more within the contract (every pass
    /// of an in-plane 3x3 kernel); never for strided, dilated, 1x1x1 or in-plane non-square layers.
    @Test func volumeDirectConvolutionIsChosenOnlyWithinItsContract() {
        let narrow = VolumeGeometry(n: 2, c: 32, size: [64, 64, 64], o: 32, kernel: [3, 3, 3], padding: [1, 1, 1])
        #expect(ConvAlgorithm.rule(narrow, .forward) == (DirectConvolution.isAvailable ? .direct : .gemm))
        #expect(ConvAlgorithm.rule(narrow, .inputGradient) == (DirectConvolution.isAvailable ? .direct : .gemm))
        #expect(ConvAlgorithm.rule(narrow, .weightGradient) == (DirectConvolution.isAvailable ? .direct : .gemm))
        // Short rows (a deep level) stay on sgemm.
        #expect(ConvAlgorithm.rule(VolumeGeometry(n: 2, c: 32, size: [8, 8, 8], o: 32, kernel: [3, 3, 3], padding: [1, 1, 1]), .forward) == .gemm)
        for g in [VolumeGeometry(n: 2, c: 32, size: [64, 64, 64], o: 32, kernel: [3, 3, 3], stride: [1, 2, 2], padding: [1, 1, 1]),
                  VolumeGeometry(n: 2, c: 32, size: [64, 64, 64], o: 32, kernel: [3, 3, 3], padding: [2, 2, 2], dilation: [2, 2, 2]),
                  VolumeGeometry(n: 2, c: 32, size: [64, 64, 64], o: 16, kernel: [1, 1, 1]),
                  VolumeGeometry(n: 2, c: 32, size: [64, 64, 64], o: 32, kernel: [3, 3, 5], padding: [1, 1, 2]),
                  VolumeGeometry(n: 2, c: 32, size: [64, 64, 64], o: 32, kernel: [3, 3, 3], padding: [1, 1, 0])] {
            for pass in ConvPass.allCases {
                #expect(!DirectConvolution.supports(g, pass) && ConvAlgorithm.rule(g, pass) == .gemm, "\(g) \(pass)")
            }
        }
    }

    /// The runtime's rule: direct only where the kernel's contract holds (the passes of a narrow 3x3 layer
    /// its width's rule gives it: every pass with AVX-512; with AVX2 the forward pass and the input gradient,
    /// the weight gradient going to Winograd), GEMM on strided, dilated, 1x1 and non-square layers.
    @Test func directConvolutionIsChosenOnlyWithinItsContract() {
        let narrow = ConvGeometry(n: 8, c: 32, h: 256, w: 256, o: 32, kh: 3, kw: 3, stride: 1, padding: 1)
        let lanes = DirectConvolution.lanes
        #expect(ConvAlgorithm.rule(narrow, .forward) == (lanes != nil ? .direct : .gemm))
        #expect(ConvAlgorithm.rule(narrow, .inputGradient) == (lanes != nil ? .direct : .gemm))
        #expect(ConvAlgorithm.rule(narrow, .weightGradient) == (lanes == 16 ? .direct : lanes == 8 ? .winograd : .gemm))
        // With AVX2, a 64-channel layer's forward pass goes to Winograd; with AVX-512 it stays direct.
        let wider = ConvGeometry(n: 8, c: 64, h: 128, w: 128, o: 64, kh: 3, kw: 3, stride: 1, padding: 1)
        #expect(ConvAlgorithm.rule(wider, .forward) == (lanes == 16 ? .direct : lanes == 8 ? .winograd : .gemm))
        for g in [ConvGeometry(n: 8, c: 64, h: 256, w: 256, o: 64, kh: 3, kw: 3, stride: 2, padding: 1),
                  ConvGeometry(n: 8, c: 64, h: 256, w: 256, o: 64, kh: 3, kw: 3, stride: 1, padding: 2, dilation: 2),
                  ConvGeometry(n: 8, c: 64, h: 256, w: 256, o: 16, kh: 1, kw: 1),
                  ConvGeometry(n: 8, c: 64, h: 256, w: 256, o: 64, kh: 9, kw: 9, stride: 1, padding: 4),
                  ConvGeometry(n: 8, c: 64, h: 256, w: 256, o: 64, kh: 3, kw: 5, stride: 1, padding: 1)] {
            for pass in ConvPass.allCases {
                #expect(!DirectConvolution.supports(g, pass) && ConvAlgorithm.rule(g, pass) == .gemm, "\(g) \(pass)")
            }
        }
    }

    /// Freeing more than the pool's bound keeps at most the bound idle (the plan counts
    /// that bound in every stage's peak memory).
    @Test func bufferPoolKeepsAtMostItsBoundIdle() {
        let size = 64 << 20
        var tensors = (0..<(MemoryPolicy.idleLimitBytes / size + 4)).map { _ in Tensor(uninitialized: [size / 4]) }
        tensors.removeAll()
        #expect(BufferPool.idleBytes <= MemoryPolicy.idleLimitBytes)
        #expect(MemoryPolicy.idleBytes(forStepBytes: 10) == 10)
        #expect(MemoryPolicy.idleBytes(forStepBytes: 10 << 30) == MemoryPolicy.idleLimitBytes)
    }

    @Test func gemmMatchesItsNaiveReference() {
        var rng = RNG(seed: 3)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (m, n, k) = (5, 7, 9)
            let a = rng.uniformTensor([m * k], -1, 1), b = rng.uniformTensor([k * n], -1, 1)
            let c1 = rng.uniformTensor([m * n], -1, 1), c2 = c1.copy()
            GEMM.multiply(a.pointer, transposeA: ta, b.pointer, transposeB: tb, c1.pointer, m: m, n: n, k: k, alpha: 0.5, beta: 1)
            GEMM.multiplyNaive(a.pointer, transposeA: ta, b.pointer, transposeB: tb, c2.pointer, m: m, n: n, k: k, alpha: 0.5, beta: 1)
            expectClose(c1, c2)
        }
    }

    @Test func threadCountDoesNotChangeResults() {
        var rng = RNG(seed: 5)
        let g = ConvGeometry(n: 4, c: 3, h: 8, w: 8, o: 4, kh: 3, kw: 3, padding: 1)
        let x = rng.uniformTensor([4, 3, 8, 8], -1, 1), w = rng.uniformTensor([4, 3, 3, 3], -1, 1), dy = rng.uniformTensor([4, 4, 8, 8], -1, 1)
        var grads: [Tensor] = []
        for threads in [1, 2] {
            Parallel.setThreads(threads)
            let dw = Tensor(zeros: w.shape)
            Conv2D.backward(x.pointer, w.pointer, dy.pointer, nil, dw.pointer, nil, g)
            grads.append(dw)
        }
        Parallel.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        expectClose(grads[0], grads[1], atol: 1e-5)
    }

    @Test func rngIsDocumentedAndStable() {
        var a = RNG(seed: 42), b = RNG(seed: 42), c = RNG(seed: 43)
        let xs = (0..<4).map { _ in a.next() }
        #expect(xs == (0..<4).map { _ in b.next() })
        #expect(xs != (0..<4).map { _ in c.next() })
        var u = RNG(seed: 7)
        for _ in 0..<1000 { let v = u.uniform(); #expect(v >= 0 && v < 1) }
        var p = RNG(seed: 1)
        #expect(p.permutation(10).sorted() == Array(0..<10))
    }

    func expectClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.shape == b.shape, sourceLocation: sourceLocation)
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) {
            let difference = abs(a.pointer[i] - b.pointer[i]) / max(1, abs(b.pointer[i]))
            worst = difference.isNaN ? .infinity : max(worst, difference)  // max() would drop a NaN
        }
        #expect(worst <= atol, "max difference \(worst)", sourceLocation: sourceLocation)
    }
}
