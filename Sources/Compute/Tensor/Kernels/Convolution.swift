import CKernels

// 2D convolution and transposed convolution.
//
// N batch, C input channels, O output channels, H x W input, P x Q output,
// kernel kh x kw, stride s, padding p, dilation d.
// Weight layouts are PyTorch's: conv [O, C, kh, kw]; transposed conv [C, O, kh, kw].
// Forward writes its output; backward ACCUMULATES (+=) into dx, dw, db (into dx
// unless the caller says the gradient is fresh: `dxAccumulates` false overwrites it).
// The fast paths are im2col + sgemm per image, images in parallel, and, for the
// narrow layers, the direct kernels (DirectConvolution.swift: the forward pass and
// the input gradient, and a 3x3 kernel's weight gradient), and for the deep 3x3 layers Winograd F(2x2, 3x3)
// (Winograd.swift: every pass), chosen per layer and pass by `ConvAlgorithm.rule`; the naive path
// is the defining sum, in Double, kept as the reference the tests compare with.
// A transposed convolution whose kernel equals its stride (the U-Net's up-sampling)
// is one product per band permuted into its output (CKernels' Blocks.c).

/// The geometry of one convolution.
public struct ConvGeometry: Hashable, Sendable {
    public var n, c, h, w: Int
    public var o, kh, kw: Int
    public var stride, padding, dilation: Int

    public init(n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
        (self.n, self.c, self.h, self.w, self.o, self.kh, self.kw) = (n, c, h, w, o, kh, kw)
        (self.stride, self.padding, self.dilation) = (stride, padding, dilation)
    }

    public var p: Int { (h + 2 * padding - dilation * (kh - 1) - 1) / stride + 1 }
    public var q: Int { (w + 2 * padding - dilation * (kw - 1) - 1) / stride + 1 }
    /// Rows of the im2col matrix.
    var k: Int { c * kh * kw }
    /// Kernel equal to the stride, no padding, no dilation: as the convolution that a transposed
    /// convolution is the adjoint of, every pixel of its input (the transposed convolution's output)
    /// is read by exactly one output pixel, in that pixel's own stride x stride block.
    public var isBlockwise: Bool { volume.isBlockwise }
    var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padding == 0 }
}

enum Im2col {
    /// Output rows per band: columns of at most about 4 MB, so that the packed
    /// matrix stays in cache and scratch memory stays small.
    static func bandRows(_ g: ConvGeometry) -> Int { max(1, min(g.p, (1 << 20) / max(1, g.k * g.q))) }

    /// For output rows `rows`: col[(c*kh + u)*kw + v, (i - rows.lowerBound)*Q + j] = x[c, s*i + d*u - p, s*j + d*v - p] (0 outside).
    static func pack(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let Q = g.q, B = rows.count
        for c in 0..<g.c {
            for u in 0..<g.kh {
                for v in 0..<g.kw {
                    let row = col + ((c * g.kh + u) * g.kw + v) * B * Q - rows.lowerBound * Q
                    for i in rows {
                        let y = g.stride * i + g.dilation * u - g.padding
                        let out = row + i * Q
                        if y < 0 || y >= g.h {
                            out.update(repeating: 0, count: Q)
                            continue
                        }
                        let src = x + (c * g.h + y) * g.w
                        if g.stride == 1 {
                            let off = g.dilation * v - g.padding
                            let j0 = max(0, -off), j1 = min(Q, g.w - off)
                            if j0 > 0 { out.update(repeating: 0, count: min(j0, Q)) }
                            if j1 > j0 { (out + j0).update(from: src + j0 + off, count: j1 - j0) }
                            if j1 < Q { (out + max(j1, 0)).update(repeating: 0, count: Q - max(j1, 0)) }
                        } else {
                            for j in 0..<Q {
                                let xx = g.stride * j + g.dilation * v - g.padding
                                out[j] = (xx >= 0 && xx < g.w) ? src[xx] : 0
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `pack`: dx[c, y, x] += col[...] for every position that read it.
    static func unpackAdd(_ col: UnsafePointer<Float>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let Q = g.q, B = rows.count
        for c in 0..<g.c {
            for u in 0..<g.kh {
                for v in 0..<g.kw {
                    let row = col + ((c * g.kh + u) * g.kw + v) * B * Q - rows.lowerBound * Q
                    for i in rows {
                        let y = g.stride * i + g.dilation * u - g.padding
                        if y < 0 || y >= g.h { continue }
                        let dst = dx + (c * g.h + y) * g.w
                        let src = row + i * Q
                        if g.stride == 1 {
                            // The columns that read x, as one contiguous run (the branch per element cost a tenth of a step).
                            let off = g.dilation * v - g.padding
                            let j0 = max(0, -off), j1 = min(Q, g.w - off)
                            if j1 > j0 { for j in j0..<j1 { dst[j + off] += src[j] } }
                        } else {
                            for j in 0..<Q {
                                let xx = g.stride * j + g.dilation * v - g.padding
                                if xx >= 0 && xx < g.w { dst[xx] += src[j] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Weight and bias gradients summed per worker, then added into dw and db in a
/// fixed order, so that the result depends on the thread count only, never on timing.
enum WeightGradients {
    static func accumulate(images: Int, weightCount: Int, biasCount: Int, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                           _ body: (_ worker: Int, _ workers: Int, _ pdw: UnsafeMutablePointer<Float>, _ pdb: UnsafeMutablePointer<Float>) -> Void) {
        let workers = min(Parallel.threads, images)
        let size = weightCount + biasCount
        // From the buffer pool: a deep layer's partial sums are tens of MB, fresh pages each call otherwise.
        let partial = Scratch.floats(workers * size)
        partial.update(repeating: 0, count: workers * size)
        defer { Scratch.release(partial, workers * size) }
        Parallel.forEach(workers) { w in body(w, workers, partial + w * size, partial + w * size + weightCount) }
        for w in 0..<workers {
            let p = partial + w * size
            for i in 0..<weightCount { dw[i] += p[i] }
            if let db { for i in 0..<biasCount { db[i] += p[weightCount + i] } }
        }
    }
}

public enum Conv2D {
    /// y[n, o] = b[o] + sum_{c,u,v} w[o, c, u, v] * x[n, c, s*i + d*u - p, s*j + d*v - p]
    /// `algorithm` overrides the runtime's choice (`ConvAlgorithm.rule`), for tests and benchmarks.
    public static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, algorithm: ConvAlgorithm? = nil) {
        switch Self.choose(algorithm, g, .forward) {
        case .direct: return DirectConvolution.forward(x, weight, bias, y, g)
        case .winograd: return Winograd.forward(x, weight, bias, y, g)
        case .gemm: break
        }
        let P = g.p * g.q, K = g.k
        Parallel.forEach(g.n) { n in
            let xn = x + n * g.c * g.h * g.w, yn = y + n * g.o * P
            if g.isPointwise {
                GEMM.multiply(weight, transposeA: false, xn, transposeB: false, yn, m: g.o, n: P, k: K)
            } else {
                let band = Im2col.bandRows(g), size = K * band * g.q
                let col = Scratch.floats(size)
                defer { Scratch.release(col, size) }
                for i0 in stride(from: 0, to: g.p, by: band) {
                    let rows = i0..<min(g.p, i0 + band)
                    Im2col.pack(xn, g, col, rows: rows)
                    GEMM.multiply(weight, transposeA: false, col, transposeB: false, yn + i0 * g.q, m: g.o, n: rows.count * g.q, k: K, ldc: P)
                }
            }
            if let bias {
                for o in 0..<g.o {
                    let b = bias[o], row = yn + o * P
                    for i in 0..<P { row[i] += b }
                }
            }
        }
    }

    /// Accumulates dx (if given), dw and db (if given) from dy; `dxAccumulates` false overwrites dx
    /// instead (a gradient no other op has written yet). `inputGradient` and
    /// `weightGradient` override the runtime's choice for their pass, for tests and benchmarks.
    public static func backward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                _ g: ConvGeometry, dxAccumulates: Bool = true, inputGradient: ConvAlgorithm? = nil, weightGradient: ConvAlgorithm? = nil) {
        let P = g.p * g.q, K = g.k
        // The input gradient on its own kernel, or on im2col + sgemm beside the weight gradient.
        var dx = dx
        if let target = dx {
            switch Self.choose(inputGradient, g, .inputGradient) {
            case .direct: DirectConvolution.inputGradient(dy, weight, target, g, accumulate: dxAccumulates); dx = nil
            case .winograd: Winograd.inputGradient(dy, weight, target, g, accumulate: dxAccumulates); dx = nil
            case .gemm: if !dxAccumulates { target.update(repeating: 0, count: g.n * g.c * g.h * g.w) }
            }
        }
        // The weight gradient on its own kernel, or on im2col + sgemm (with the input gradient, if it runs there).
        let weights: Bool
        switch Self.choose(weightGradient, g, .weightGradient) {
        case .winograd: Winograd.weightGradient(x, dy, dw, db, g); weights = false
        case .direct: DirectConvolution.weightGradient(x, dy, dw, db, g); weights = false
        case .gemm: weights = true
        }
        guard weights || dx != nil else { return }
        WeightGradients.accumulate(images: g.n, weightCount: weights ? g.o * K : 0, biasCount: weights ? g.o : 0, dw, weights ? db : nil) { wkr, workers, pdw, pdb in
            let band = Im2col.bandRows(g), size = g.isPointwise ? 1 : K * band * g.q
            let col = Scratch.floats(size), dcol = Scratch.floats(size)
            defer { Scratch.release(col, size); Scratch.release(dcol, size) }
            var n = wkr
            while n < g.n {
                let xn = x + n * g.c * g.h * g.w, dyn = dy + n * g.o * P
                if g.isPointwise {
                    if weights { GEMM.multiply(dyn, transposeA: false, xn, transposeB: true, pdw, m: g.o, n: K, k: P, beta: 1) }
                    if let dx { GEMM.multiply(weight, transposeA: true, dyn, transposeB: false, dx + n * g.c * g.h * g.w, m: K, n: P, k: g.o, beta: 1) }
                } else {
                    for i0 in stride(from: 0, to: g.p, by: band) {
                        let rows = i0..<min(g.p, i0 + band), cols = rows.count * g.q
                        if weights {
                            Im2col.pack(xn, g, col, rows: rows)
                            GEMM.multiply(dyn + i0 * g.q, transposeA: false, col, transposeB: true, pdw, m: g.o, n: K, k: cols, beta: 1, lda: P)
                        }
                        if let dx {
                            GEMM.multiply(weight, transposeA: true, dyn + i0 * g.q, transposeB: false, dcol, m: K, n: cols, k: g.o, ldb: P)
                            Im2col.unpackAdd(dcol, g, dx + n * g.c * g.h * g.w, rows: rows)
                        }
                    }
                }
                if weights { for o in 0..<g.o { pdb[o] += Reduction.sum(dyn + o * P, count: P) } }
                n += workers
            }
        }
    }

    /// The algorithm for `pass`: the caller's override, else the runtime's rule.
    private static func choose(_ override: ConvAlgorithm?, _ g: ConvGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        ConvAlgorithm.resolve(override, runs: { $0.runs(g, pass) }, rule: ConvAlgorithm.rule(g, pass), "\(pass) of \(g)")
    }

    /// The defining sum, in Double: the reference for tests (the 3D reference at depth 1).
    public static func forwardNaive(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                    _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        Conv3D.forwardNaive(x, weight, bias, y, g.volume)
    }

    public static func backwardNaive(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                     _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                     _ g: ConvGeometry) {
        Conv3D.backwardNaive(x, weight, dy, dx, dw, db, g.volume)
    }
}

extension ConvGeometry {
    /// The same convolution as a volume of depth 1 with a kernel of depth 1.
    var volume: VolumeGeometry {
        VolumeGeometry(n: n, c: c, size: [1, h, w], o: o, kernel: [1, kh, kw], stride: [1, stride, stride], padding: [0, padding, padding],
                       dilation: [1, dilation, dilation])
    }
}

/// Transposed convolution as the adjoint of a convolution whose input is this op's
/// output: geometry `g` describes that convolution (g.c = this op's output
/// channels, g.h x g.w = this op's output size, g.o = this op's input channels).
public enum ConvTranspose2D {
    /// Output size for input `size`: (size - 1) * stride - 2 * padding + dilation * (k - 1) + 1 + outputPadding.
    public static func outputSize(_ size: Int, k: Int, stride: Int, padding: Int, dilation: Int = 1, outputPadding: Int = 0) -> Int {
        (size - 1) * stride - 2 * padding + dilation * (k - 1) + 1 + outputPadding
    }

    /// y = conv_backward_data(x) + b. Weight [Cin(=g.o), Cout(=g.c), kh, kw] is the conv weight [O, C, kh, kw].
    /// Image n's output starts at y + n * `imageStride` (default: the output's own size, g.c * g.h * g.w; larger
    /// when y holds more channels, which this op leaves alone: a concatenation it writes its part of).
    public static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, imageStride: Int? = nil) {
        let P = g.p * g.q, K = g.k, outSize = g.c * g.h * g.w, yStride = imageStride ?? outSize
        if g.isBlockwise {
            // Each input pixel's own s x s block: the product, permuted into y with the bias.
            Parallel.forEach(g.n) { n in
                let xn = x + n * g.o * P, yn = y + n * yStride
                let band = Im2col.bandRows(g), size = K * band * g.q
                let col = Scratch.floats(size)
                defer { Scratch.release(col, size) }
                for i0 in stride(from: 0, to: g.p, by: band) {
                    let i1 = min(g.p, i0 + band)
                    GEMM.multiply(weight, transposeA: true, xn + i0 * g.q, transposeB: false, col, m: K, n: (i1 - i0) * g.q, k: g.o, ldb: P)
                    ck_blocks_scatter(col, bias, yn, g.volume.blocks, Int32(i0), Int32(i1))
                }
            }
            return
        }
        Parallel.forEach(g.n) { n in
            let xn = x + n * g.o * P, yn = y + n * yStride
            yn.update(repeating: 0, count: outSize)
            let band = Im2col.bandRows(g), size = K * band * g.q
            let col = Scratch.floats(size)
            defer { Scratch.release(col, size) }
            for i0 in stride(from: 0, to: g.p, by: band) {
                let rows = i0..<min(g.p, i0 + band)
                GEMM.multiply(weight, transposeA: true, xn + i0 * g.q, transposeB: false, col, m: K, n: rows.count * g.q, k: g.o, ldb: P)
                Im2col.unpackAdd(col, g, yn, rows: rows)
            }
            if let bias {
                for c in 0..<g.c {
                    let b = bias[c], row = yn + c * g.h * g.w
                    for i in 0..<(g.h * g.w) { row[i] += b }
                }
            }
        }
    }

    /// Accumulates dx (if given; overwrites it when `dxAccumulates` is false), dw and db (if given) from dy,
    /// whose image n starts at dy + n * `imageStride` (as y's in `forward`).
    public static func backward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                _ g: ConvGeometry, dxAccumulates: Bool = true, imageStride: Int? = nil) {
        let P = g.p * g.q, K = g.k, dyStride = imageStride ?? g.c * g.h * g.w
        WeightGradients.accumulate(images: g.n, weightCount: g.o * K, biasCount: g.c, dw, db) { wkr, workers, pdw, pdb in
            let band = Im2col.bandRows(g), size = K * band * g.q
            let col = Scratch.floats(size)
            defer { Scratch.release(col, size) }
            var n = wkr
            while n < g.n {
                let xn = x + n * g.o * P, dyn = dy + n * dyStride
                for i0 in stride(from: 0, to: g.p, by: band) {
                    let rows = i0..<min(g.p, i0 + band), cols = rows.count * g.q
                    if g.isBlockwise {
                        ck_blocks_gather(dyn, col, g.volume.blocks, Int32(i0), Int32(rows.upperBound))
                    } else {
                        Im2col.pack(dyn, g, col, rows: rows)
                    }
                    // dw[o, k] += x[o, p] col[k, p] over the band's p
                    GEMM.multiply(xn + i0 * g.q, transposeA: false, col, transposeB: true, pdw, m: g.o, n: K, k: cols, beta: 1, lda: P)
                    if let dx {
                        GEMM.multiply(weight, transposeA: false, col, transposeB: false, dx + n * g.o * P + i0 * g.q, m: g.o, n: cols, k: K,
                                      beta: dxAccumulates ? 1 : 0, ldc: P)
                    }
                }
                for c in 0..<g.c { pdb[c] += Reduction.sum(dyn + c * g.h * g.w, count: g.h * g.w) }
                n += workers
            }
        }
    }
}

/// Sums in 16 float lanes (a scalar float sum cannot be vectorised: its order is fixed).
public enum Reduction {
    public static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>.zero
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 16 <= count {
            acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var s = acc.sum()
        while i < count { s += p[i]; i += 1 }
        return s
    }
}
