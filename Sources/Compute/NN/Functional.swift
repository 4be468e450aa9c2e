import Foundation
import Tensor

// The differentiable operations: each runs a kernel forward and registers the
// gradient rule that calls the kernel's backward. All rules are here, in one
// place, so that they can be checked in one sitting.
//
// Shapes: N batch, C channels, H x W spatial; L tokens, D features.

public enum F {
    // MARK: convolution

    public static func conv2d(_ x: Variable, _ weight: Variable, _ bias: Variable?, stride: Int = 1, padding: Int = 0, dilation: Int = 1) -> Variable {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let g = ConvGeometry(n: n, c: c, h: h, w: w, o: weight.shape[0], kh: weight.shape[2], kw: weight.shape[3],
                             stride: stride, padding: padding, dilation: dilation)
        precondition(weight.shape[1] == c, "conv2d: weight \(weight.shape) for input \(x.shape)")
        let y = Tensor(uninitialized: [n, g.o, g.p, g.q])
        Conv2D.forward(x.value.pointer, weight.value.pointer, bias?.value.pointer, y.pointer, g)
        let op = TracedOp.convolution(stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation])
        return Trace.note(op, [x, weight, bias], Tape.output(y, inputs: [x, weight, bias]) { out in
            let dx = x.gradDestination
            Conv2D.backward(x.value.pointer, weight.value.pointer, out.gradBuffer(), dx?.pointer, weight.gradBuffer(), bias?.gradTarget, g,
                            dxAccumulates: dx?.accumulate ?? true)
        })
    }

    /// The geometry of a transposed convolution (see `ConvTranspose2D`) of x by weight [Cin, Cout, kh, kw].
    private static func transposedGeometry(_ x: Variable, _ weight: Variable, stride: Int, padding: Int) -> ConvGeometry {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(weight.shape[0] == cin, "conv_transpose2d: weight \(weight.shape) for input \(x.shape)")
        let oh = ConvTranspose2D.outputSize(h, k: kh, stride: stride, padding: padding)
        let ow = ConvTranspose2D.outputSize(w, k: kw, stride: stride, padding: padding)
        return ConvGeometry(n: n, c: cout, h: oh, w: ow, o: cin, kh: kh, kw: kw, stride: stride, padding: padding)
    }

    /// Transposed convolution; weight [Cin, Cout, kh, kw] (PyTorch's layout).
    public static func convTranspose2d(_ x: Variable, _ weight: Variable, _ bias: Variable?, stride: Int, padding: Int = 0) -> Variable {
        let g = transposedGeometry(x, weight, stride: stride, padding: padding)
        let y = Tensor(uninitialized: [g.n, g.c, g.h, g.w])
        ConvTranspose2D.forward(x.value.pointer, weight.value.pointer, bias?.value.pointer, y.pointer, g)
        return Trace.note(.convTranspose(stride: [stride, stride], padding: [padding, padding]), [x, weight, bias],
                          Tape.output(y, inputs: [x, weight, bias]) { out in
            let dx = x.gradDestination
            ConvTranspose2D.backward(x.value.pointer, weight.value.pointer, out.gradBuffer(), dx?.pointer, weight.gradBuffer(), bias?.gradTarget, g,
                                     dxAccumulates: dx?.accumulate ?? true)
        })
    }

    /// concat([convTranspose2d(x, weight, bias, stride: stride), skip]) along channels, the up-sampled
    /// map written straight into the joined one and its gradient read from the joined gradient, so
    /// that it is never copied either way: the U-Net decoder's up-sampling and skip connection.
    /// Traced as the two operations it is.
    public static func convTranspose2dJoined(_ x: Variable, _ weight: Variable, _ bias: Variable?, stride: Int, skip: Variable) -> Variable {
        if Trace.active != nil { return concat([convTranspose2d(x, weight, bias, stride: stride), skip]) }
        let g = transposedGeometry(x, weight, stride: stride, padding: 0)
        precondition(skip.shape.count == 4 && skip.shape[0] == g.n && skip.shape[2] == g.h && skip.shape[3] == g.w,
                     "conv_transpose2d + concat: skip \(skip.shape) for an up-sampled map [\(g.n), \(g.c), \(g.h), \(g.w)]")
        let plane = g.h * g.w, skipSize = skip.shape[1] * plane, image = g.c * plane + skipSize
        let y = Tensor(uninitialized: [g.n, g.c + skip.shape[1], g.h, g.w])
        ConvTranspose2D.forward(x.value.pointer, weight.value.pointer, bias?.value.pointer, y.pointer, g, imageStride: image)
        Parallel.forEach(g.n) { n in (y.pointer + n * image + g.c * plane).update(from: skip.value.pointer + n * skipSize, count: skipSize) }
        return Tape.output(y, inputs: [x, weight, bias, skip]) { out in
            let dy = out.gradBuffer()
            // The skip's share first, as concat's backward gives it before the transposed convolution's runs.
            if let (ds, accumulate) = skip.gradDestination {
                Parallel.forEach(g.n) { n in
                    let (to, from) = (ds + n * skipSize, dy + n * image + g.c * plane)
                    if accumulate { for i in 0..<skipSize { to[i] += from[i] } } else { to.update(from: from, count: skipSize) }
                }
            }
            let dx = x.gradDestination
            ConvTranspose2D.backward(x.value.pointer, weight.value.pointer, dy, dx?.pointer, weight.gradBuffer(), bias?.gradTarget, g,
                                     dxAccumulates: dx?.accumulate ?? true, imageStride: image)
        }
    }

    /// 3D convolution over NCDHW volumes; weight [O, C, kd, kh, kw]; stride, padding and dilation per axis [d, h, w].
    public static func conv3d(_ x: Variable, _ weight: Variable, _ bias: Variable?, stride: [Int] = [1, 1, 1], padding: [Int] = [0, 0, 0],
                              dilation: [Int] = [1, 1, 1]) -> Variable {
        precondition(x.shape.count == 5 && weight.shape.count == 5 && weight.shape[1] == x.shape[1], "conv3d: weight \(weight.shape) for input \(x.shape)")
        let g = VolumeGeometry(n: x.shape[0], c: x.shape[1], size: Array(x.shape[2...]), o: weight.shape[0], kernel: Array(weight.shape[2...]),
                               stride: stride, padding: padding, dilation: dilation)
        let y = Tensor(uninitialized: [g.n, g.o] + g.output)
        Conv3D.forward(x.value.pointer, weight.value.pointer, bias?.value.pointer, y.pointer, g)
        return Trace.note(.convolution(stride: stride, padding: padding, dilation: dilation), [x, weight, bias],
                          Tape.output(y, inputs: [x, weight, bias]) { out in
            Conv3D.backward(x.value.pointer, weight.value.pointer, out.gradBuffer(), x.gradTarget, weight.gradBuffer(), bias?.gradTarget, g)
        })
    }

    /// 3D transposed convolution; weight [Cin, Cout, kd, kh, kw] (PyTorch's layout); stride and padding per axis.
    public static func convTranspose3d(_ x: Variable, _ weight: Variable, _ bias: Variable?, stride: [Int], padding: [Int] = [0, 0, 0]) -> Variable {
        precondition(x.shape.count == 5 && weight.shape.count == 5 && weight.shape[0] == x.shape[1], "conv_transpose3d: weight \(weight.shape) for input \(x.shape)")
        let kernel = Array(weight.shape[2...])
        let size = (0..<3).map { ConvTranspose3D.outputSize(x.shape[2 + $0], k: kernel[$0], stride: stride[$0], padding: padding[$0]) }
        let g = VolumeGeometry(n: x.shape[0], c: weight.shape[1], size: size, o: x.shape[1], kernel: kernel, stride: stride, padding: padding)
        let y = Tensor(uninitialized: [g.n, g.c] + size)
        ConvTranspose3D.forward(x.value.pointer, weight.value.pointer, bias?.value.pointer, y.pointer, g)
        return Trace.note(.convTranspose(stride: stride, padding: padding), [x, weight, bias], Tape.output(y, inputs: [x, weight, bias]) { out in
            ConvTranspose3D.backward(x.value.pointer, weight.value.pointer, out.gradBuffer(), x.gradTarget, weight.gradBuffer(), bias?.gradTarget, g)
        })
    }

    // MARK: pooling and resizing

    public static func maxPool2d(_ x: Variable, kernel: Int = 2, stride: Int = 2) -> Variable {
        pool(x, max: true, kernel: [kernel, kernel], stride: [stride, stride])
    }

    public static func avgPool2d(_ x: Variable, kernel: Int = 2, stride: Int = 2) -> Variable {
        pool(x, max: false, kernel: [kernel, kernel], stride: [stride, stride])
    }

    /// Max pooling over NCDHW volumes; kernel and stride per axis [d, h, w].
    public static func maxPool3d(_ x: Variable, kernel: [Int], stride: [Int]) -> Variable { pool(x, max: true, kernel: kernel, stride: stride) }

    public static func avgPool3d(_ x: Variable, kernel: [Int], stride: [Int]) -> Variable { pool(x, max: false, kernel: kernel, stride: stride) }

    /// Pooling over the trailing 2 or 3 axes (a plane is a volume of depth 1).
    static func pool(_ x: Variable, max isMax: Bool, kernel: [Int], stride: [Int]) -> Variable {
        let spatial = Array(x.shape[2...])
        precondition(spatial.count == kernel.count && spatial.count == stride.count && (2...3).contains(spatial.count), "pool: \(kernel) over \(x.shape)")
        let pad = Array(repeating: 1, count: 3 - spatial.count)
        let g = PoolGeometry(planes: x.shape[0] * x.shape[1], size: pad + spatial, kernel: pad + kernel, stride: pad + stride)
        let y = Tensor(uninitialized: Array(x.shape[..<2]) + g.output.suffix(spatial.count))
        let op: TracedOp = isMax ? .maxPool(kernel: kernel, stride: stride) : .avgPool(kernel: kernel, stride: stride)
        guard isMax else {
            Pooling.avgForward(x.value.pointer, y.pointer, g)
            return Trace.note(op, [x], Tape.output(y, inputs: [x]) { out in Pooling.avgBackward(out.gradBuffer(), x.gradBuffer(), g) })
        }
        let indices = IndexBuffer(count: y.count)
        Pooling.maxForward(x.value.pointer, y.pointer, indices.pointer, g)
        return Trace.note(op, [x], Tape.output(y, inputs: [x]) { out in
            Pooling.maxBackward(out.gradBuffer(), indices.pointer, x.gradBuffer(), g)
        })
    }

    public static func resizeBilinear(_ x: Variable, height p: Int, width q: Int, alignCorners: Bool = false) -> Variable {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if h == p, w == q { return x }
        let y = Tensor(uninitialized: [n, c, p, q])
        Resize.bilinearForward(x.value.pointer, y.pointer, planes: n * c, h: h, w: w, p: p, q: q, alignCorners: alignCorners)
        return Trace.note(.resizeBilinear(alignCorners: alignCorners), [x], Tape.output(y, inputs: [x]) { out in
            Resize.bilinearBackward(out.gradBuffer(), x.gradBuffer(), planes: n * c, h: h, w: w, p: p, q: q, alignCorners: alignCorners)
        })
    }

    public static func resizeNearest(_ x: Variable, height p: Int, width q: Int) -> Variable {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = Tensor(uninitialized: [n, c, p, q])
        Resize.nearestForward(x.value.pointer, y.pointer, planes: n * c, h: h, w: w, p: p, q: q)
        return Trace.note(.resizeNearest, [x], Tape.output(y, inputs: [x]) { out in
            Resize.nearestBackward(out.gradBuffer(), x.gradBuffer(), planes: n * c, h: h, w: w, p: p, q: q)
        })
    }

    // MARK: normalisation

    /// Batch norm in training mode: batch statistics; the running buffers are updated in place
    /// (running_var with the unbiased variance), as PyTorch does.
    public static func batchNormTrain(_ x: Variable, _ weight: Variable?, _ bias: Variable?, runningMean: Tensor?, runningVar: Tensor?,
                                      momentum: Float = 0.1, eps: Float = 1e-5, relu: Bool = false) -> Variable {
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.value.count / max(1, n * c)
        let layout = NormLayout(outer: n, channels: c, inner: inner, acrossBatch: true, channelsPerGroup: 1)
        // Over the whole batch when it is split across processes (SyncBN).
        let m = Float(CrossBatch.count(n * inner))
        return normalize(x, weight, bias, layout, eps: eps, relu: relu) { stats in
            guard let runningMean, let runningVar else { return }
            for ch in 0..<c {
                let mean = stats[2 * ch], rstd = stats[2 * ch + 1]
                let variance = 1 / (rstd * rstd) - eps
                runningMean.pointer[ch] = (1 - momentum) * runningMean.pointer[ch] + momentum * mean
                runningVar.pointer[ch] = (1 - momentum) * runningVar.pointer[ch] + momentum * variance * m / max(1, m - 1)
            }
        }
    }

    public static func batchNormEval(_ x: Variable, _ weight: Variable?, _ bias: Variable?, runningMean: Tensor, runningVar: Tensor,
                                     eps: Float = 1e-5, relu: Bool = false) -> Variable {
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.value.count / max(1, n * c)
        let y = Tensor(uninitialized: x.shape)
        Normalization.forwardFixed(x.value.pointer, weight?.value.pointer, bias?.value.pointer, mean: runningMean.pointer,
                                   variance: runningVar.pointer, y.pointer, outer: n, channels: c, inner: inner, eps: eps)
        if relu { rectify(y) }
        return Trace.note(.batchNorm(mean: runningMean, variance: runningVar, eps: eps, relu: relu), [x, weight, bias], Tape.output(y, inputs: [x, weight, bias]) { out in
            let g = relu ? masked(out) : nil
            defer { g.map { Scratch.release($0, out.value.count) } }
            Normalization.backwardFixed(x.value.pointer, weight?.value.pointer, mean: runningMean.pointer, variance: runningVar.pointer,
                                        g ?? out.gradBuffer(), x.gradTarget, weight?.gradTarget, bias?.gradTarget,
                                        outer: n, channels: c, inner: inner, eps: eps)
        })
    }

    /// max(y, 0) in place: the ReLU fused into the normalisation before it.
    static func rectify(_ y: Tensor) {
        let p = y.pointer
        Parallel.chunks(y.count) { r in Rectifier.rectify(p, r) }
    }

    /// The upstream gradient with the fused ReLU's mask applied (zero where the output is 0).
    static func masked(_ out: Variable) -> UnsafeMutablePointer<Float> {
        let n = out.value.count, g = Scratch.floats(n), dy = out.gradBuffer(), y = out.value.pointer
        Parallel.chunks(n) { r in Rectifier.mask(y, dy, g, r) }
        return g
    }

    public static func groupNorm(_ x: Variable, groups: Int, _ weight: Variable?, _ bias: Variable?, eps: Float = 1e-5, relu: Bool = false) -> Variable {
        let (n, c) = (x.shape[0], x.shape[1])
        let layout = NormLayout(outer: n, channels: c, inner: x.value.count / max(1, n * c), acrossBatch: false, channelsPerGroup: c / groups)
        return Trace.note(.groupNorm(groups: groups, eps: eps, relu: relu), [x, weight, bias],
                          normalize(x, weight, bias, layout, eps: eps, relu: relu))
    }

    public static func instanceNorm(_ x: Variable, _ weight: Variable?, _ bias: Variable?, eps: Float = 1e-5, relu: Bool = false) -> Variable {
        let (n, c) = (x.shape[0], x.shape[1])
        let layout = NormLayout(outer: n, channels: c, inner: x.value.count / max(1, n * c), acrossBatch: false, channelsPerGroup: 1)
        return Trace.note(.groupNorm(groups: c, eps: eps, relu: relu), [x, weight, bias],
                          normalize(x, weight, bias, layout, eps: eps, relu: relu))
    }

    /// Normalisation, optionally with the following ReLU fused in: then only the
    /// input and the rectified output are kept for backward (as PyTorch keeps them),
    /// not the normalised values in between.
    static func normalize(_ x: Variable, _ weight: Variable?, _ bias: Variable?, _ layout: NormLayout, eps: Float, relu: Bool = false,
                          statistics: (UnsafePointer<Float>) -> Void = { _ in }) -> Variable {
        let y = Tensor(uninitialized: x.shape)
        let stats = Tensor(zeros: [layout.groupCount * 2])
        Normalization.forward(x.value.pointer, weight?.value.pointer, bias?.value.pointer, y.pointer, stats.pointer, layout, eps: eps, relu: relu)
        statistics(stats.pointer)
        return Tape.output(y, inputs: [x, weight, bias]) { out in
            let dx = x.gradDestination
            Normalization.backward(x.value.pointer, weight?.value.pointer, bias?.value.pointer, stats.pointer, out.gradBuffer(), dx?.pointer,
                                   weight?.gradTarget, bias?.gradTarget, layout, relu: relu, dxAccumulates: dx?.accumulate ?? true)
        }
    }

    /// Layer norm over the last dimension.
    public static func layerNorm(_ x: Variable, _ weight: Variable?, _ bias: Variable?, eps: Float = 1e-5) -> Variable {
        let d = x.shape.last ?? 1, rows = x.value.count / max(1, d)
        let y = Tensor(uninitialized: x.shape), stats = Tensor(zeros: [rows * 2])
        LayerNorm.forward(x.value.pointer, weight?.value.pointer, bias?.value.pointer, y.pointer, stats.pointer, rows: rows, d: d, eps: eps)
        return Trace.note(.layerNorm(eps: eps), [x, weight, bias], Tape.output(y, inputs: [x, weight, bias]) { out in
            LayerNorm.backward(x.value.pointer, weight?.value.pointer, stats.pointer, out.gradBuffer(), x.gradTarget,
                               weight?.gradTarget, bias?.gradTarget, rows: rows, d: d)
        })
    }

    // MARK: activations and softmax

    public static func activation(_ x: Variable, _ kind: Activation) -> Variable {
        let y = Tensor(uninitialized: x.shape)
        kind.forward(x.value.pointer, y.pointer, count: y.count)
        return Trace.note(.activation(kind), [x], Tape.output(y, inputs: [x]) { out in
            kind.backward(x.value.pointer, out.value.pointer, out.gradBuffer(), x.gradBuffer(), count: y.count)
        })
    }

    public static func relu(_ x: Variable) -> Variable { activation(x, .relu) }
    public static func gelu(_ x: Variable) -> Variable { activation(x, .gelu) }
    public static func sigmoid(_ x: Variable) -> Variable { activation(x, .sigmoid) }

    /// Softmax (or log-softmax) over `axis`.
    public static func softmax(_ x: Variable, axis: Int, log: Bool = false) -> Variable {
        let a = axis < 0 ? x.shape.count + axis : axis
        let outer = x.shape[..<a].reduce(1, *), c = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        let y = Tensor(uninitialized: x.shape)
        Softmax.forward(x.value.pointer, y.pointer, outer: outer, c: c, inner: inner, log: log)
        return Trace.note(.softmax(axis: axis, log: log), [x], Tape.output(y, inputs: [x]) { out in
            Softmax.backward(out.value.pointer, out.gradBuffer(), x.gradBuffer(), outer: outer, c: c, inner: inner, log: log)
        })
    }

    // MARK: linear algebra

    /// y = x W^T + b with W [out, in] (nn.Linear); or y = x W + b with W [in, out] when `weightIsInputMajor`.
    public static func linear(_ x: Variable, _ weight: Variable, _ bias: Variable?, weightIsInputMajor: Bool = false) -> Variable {
        let din = x.shape.last ?? 1, rows = x.value.count / max(1, din)
        let dout = weightIsInputMajor ? weight.shape[1] : weight.shape[0]
        let y = Tensor(uninitialized: Array(x.shape.dropLast()) + [dout])
        GEMM.multiply(x.value.pointer, transposeA: false, weight.value.pointer, transposeB: !weightIsInputMajor, y.pointer, m: rows, n: dout, k: din)
        if let b = bias?.value.pointer { for r in 0..<rows { for o in 0..<dout { y.pointer[r * dout + o] += b[o] } } }
        return Trace.note(.linear(weightIsInputMajor: weightIsInputMajor), [x, weight, bias], Tape.output(y, inputs: [x, weight, bias]) { out in
            let dy = out.gradBuffer()
            if let dx = x.gradTarget {
                GEMM.multiply(dy, transposeA: false, weight.value.pointer, transposeB: weightIsInputMajor, dx, m: rows, n: din, k: dout, beta: 1)
            }
            if weight.requiresGrad {
                if weightIsInputMajor {
                    GEMM.multiply(x.value.pointer, transposeA: true, dy, transposeB: false, weight.gradBuffer(), m: din, n: dout, k: rows, beta: 1)
                } else {
                    GEMM.multiply(dy, transposeA: true, x.value.pointer, transposeB: false, weight.gradBuffer(), m: dout, n: din, k: rows, beta: 1)
                }
            }
            if let db = bias?.gradTarget { for r in 0..<rows { for o in 0..<dout { db[o] += dy[r * dout + o] } } }
        })
    }

    /// Batched product: a [B, M, K] x b [B, K, N] (or b^T when transposeB, b [B, N, K]).
    public static func bmm(_ a: Variable, _ b: Variable, transposeB: Bool = false) -> Variable {
        let (batch, m, k) = (a.shape[0], a.shape[1], a.shape[2])
        let n = transposeB ? b.shape[1] : b.shape[2]
        let y = Tensor(uninitialized: [batch, m, n])
        for i in 0..<batch {
            GEMM.multiply(a.value.pointer + i * m * k, transposeA: false, b.value.pointer + i * k * n, transposeB: transposeB,
                          y.pointer + i * m * n, m: m, n: n, k: k)
        }
        return Trace.note(.bmm(transposeB: transposeB), [a, b], Tape.output(y, inputs: [a, b]) { out in
            let dy = out.gradBuffer()
            for i in 0..<batch {
                let g = dy + i * m * n
                if let da = a.gradTarget {
                    GEMM.multiply(g, transposeA: false, b.value.pointer + i * k * n, transposeB: !transposeB, da + i * m * k, m: m, n: k, k: n, beta: 1)
                }
                if let db = b.gradTarget {
                    if transposeB {
                        GEMM.multiply(g, transposeA: true, a.value.pointer + i * m * k, transposeB: false, db + i * k * n, m: n, n: k, k: m, beta: 1)
                    } else {
                        GEMM.multiply(a.value.pointer + i * m * k, transposeA: true, g, transposeB: false, db + i * k * n, m: k, n: n, k: m, beta: 1)
                    }
                }
            }
        })
    }

    // MARK: shape

    public static func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
        let y = x.value.reshaped(shape)
        return Trace.note(.reshape, [x], Tape.output(y, inputs: [x]) { out in
            let dy = out.gradBuffer(), dx = x.gradBuffer()
            for i in 0..<y.count { dx[i] += dy[i] }
        })
    }

    /// y = x with dimensions reordered: y.shape[i] = x.shape[order[i]].
    public static func permute(_ x: Variable, _ order: [Int]) -> Variable {
        let shape = order.map { x.shape[$0] }
        let y = Tensor(uninitialized: shape)
        let map = permutationMap(x.shape, order)
        for (i, src) in map.enumerated() { y.pointer[i] = x.value.pointer[src] }
        return Trace.note(.permute(order), [x], Tape.output(y, inputs: [x]) { out in
            let dy = out.gradBuffer(), dx = x.gradBuffer()
            for (i, src) in map.enumerated() { dx[src] += dy[i] }
        })
    }

    /// For each output index, the input index it reads.
    static func permutationMap(_ shape: [Int], _ order: [Int]) -> [Int] {
        let rank = shape.count
        var strides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        let outShape = order.map { shape[$0] }
        let total = shape.reduce(1, *)
        var map = [Int](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: rank)
        for i in 0..<total {
            var src = 0
            for d in 0..<rank { src += index[d] * strides[order[d]] }
            map[i] = src
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < outShape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return map
    }

    /// Concatenation along channels (dim 1) of NCHW (or any rank >= 2).
    public static func concat(_ xs: [Variable], axis: Int = 1) -> Variable {
        let outer = xs[0].shape[..<axis].reduce(1, *)
        let sizes = xs.map { $0.value.count / max(1, outer) }
        let total = sizes.reduce(0, +)
        var shape = xs[0].shape
        shape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        let y = Tensor(uninitialized: shape)
        Parallel.forEach(outer) { o in
            var off = 0
            for (x, s) in zip(xs, sizes) {
                (y.pointer + o * total + off).update(from: x.value.pointer + o * s, count: s)
                off += s
            }
        }
        return Trace.note(.concat(axis: axis), xs, Tape.output(y, inputs: xs) { out in
            let dy = out.gradBuffer()
            var off = 0
            for (x, s) in zip(xs, sizes) {
                // Each input's share, in one pass per input (an input given twice adds its second share).
                if let (dx, accumulate) = x.gradDestination {
                    Parallel.forEach(outer) { o in
                        let (to, from) = (dx + o * s, dy + o * total + off)
                        if accumulate { for i in 0..<s { to[i] += from[i] } } else { to.update(from: from, count: s) }
                    }
                }
                off += s
            }
        })
    }

    // MARK: arithmetic

    public static func add(_ a: Variable, _ b: Variable) -> Variable {
        precondition(a.value.count == b.value.count, "add: \(a.shape) + \(b.shape)")
        let y = Tensor(uninitialized: a.shape)
        for i in 0..<y.count { y.pointer[i] = a.value.pointer[i] + b.value.pointer[i] }
        return Trace.note(.add, [a, b], Tape.output(y, inputs: [a, b]) { out in
            let dy = out.gradBuffer()
            if let da = a.gradTarget { for i in 0..<y.count { da[i] += dy[i] } }
            if let db = b.gradTarget { for i in 0..<y.count { db[i] += dy[i] } }
        })
    }

    public static func mul(_ a: Variable, _ b: Variable) -> Variable {
        let y = Tensor(uninitialized: a.shape)
        for i in 0..<y.count { y.pointer[i] = a.value.pointer[i] * b.value.pointer[i] }
        return Trace.note(.mul, [a, b], Tape.output(y, inputs: [a, b]) { out in
            let dy = out.gradBuffer()
            if let da = a.gradTarget { for i in 0..<y.count { da[i] += dy[i] * b.value.pointer[i] } }
            if let db = b.gradTarget { for i in 0..<y.count { db[i] += dy[i] * a.value.pointer[i] } }
        })
    }

    public static func scale(_ x: Variable, _ s: Float) -> Variable {
        let y = Tensor(uninitialized: x.shape)
        for i in 0..<y.count { y.pointer[i] = x.value.pointer[i] * s }
        return Trace.note(.scale(s), [x], Tape.output(y, inputs: [x]) { out in
            let dy = out.gradBuffer(), dx = x.gradBuffer()
            for i in 0..<y.count { dx[i] += dy[i] * s }
        })
    }

    /// x + b broadcast over leading dimensions (b has x's trailing shape).
    public static func addBroadcast(_ x: Variable, _ b: Variable) -> Variable {
        let inner = b.value.count, outer = x.value.count / max(1, inner)
        let y = Tensor(uninitialized: x.shape)
        for o in 0..<outer { for i in 0..<inner { y.pointer[o * inner + i] = x.value.pointer[o * inner + i] + b.value.pointer[i] } }
        return Trace.note(.addBroadcast, [x, b], Tape.output(y, inputs: [x, b]) { out in
            let dy = out.gradBuffer()
            if let dx = x.gradTarget { for i in 0..<y.count { dx[i] += dy[i] } }
            if let db = b.gradTarget { for o in 0..<outer { for i in 0..<inner { db[i] += dy[o * inner + i] } } }
        })
    }

    /// Sum of all values (a scalar).
    public static func sum(_ x: Variable) -> Variable {
        var s = 0.0
        for i in 0..<x.value.count { s += Double(x.value.pointer[i]) }
        return Tape.output(Tensor.scalar(Float(s)), inputs: [x]) { out in
            let g = out.gradBuffer()[0], dx = x.gradBuffer()
            for i in 0..<x.value.count { dx[i] += g }
        }
    }

    /// Weighted sum of scalars: the total loss.
    public static func weightedSum(_ terms: [(Variable, Float)]) -> Variable {
        var s: Float = 0
        for (t, w) in terms { s += w * t.value.item }
        return Tape.output(Tensor.scalar(s), inputs: terms.map(\.0)) { out in
            let g = out.gradBuffer()[0]
            for (t, w) in terms { if let d = t.gradTarget { d[0] += g * w } }
        }
    }
}

/// Int32 indices kept alive by a backward rule, from the buffer pool: max pooling's
/// argmax is as large as its output (34 MB per step for S2's first level), and a
/// buffer from malloc came back as fresh pages, faulted in and zeroed, every step.
final class IndexBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int
    init(count: Int) {
        self.pointer = Scratch.indices(count)
        self.count = count
    }
    deinit { Scratch.release(pointer, count) }
}
