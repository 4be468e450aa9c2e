import CKernels

// 3D convolution and transposed convolution over NCDHW volumes.
//
// N batch, C input channels, O output channels, input D x H x W, output
// D' x P x Q; per-axis kernel, stride, padding and dilation in [d, h, w] order
// (nnU-Net's anisotropic (1, 3, 3) kernels and (1, 2, 2) strides are ordinary
// geometries). Weight layouts are PyTorch's: conv [O, C, kd, kh, kw]; transposed
// conv [C, O, kd, kh, kw]. Forward writes its output; backward ACCUMULATES into
// dx, dw, db.
//
// Stride-1 layers take the direct kernel where `ConvAlgorithm.rule` says so
// (DirectConvolution, AVX-512 or AVX2: forward and input gradient, each output
// slice a 2D tile loop over the depth taps; the weight gradient of 3x3 in-plane kernels). Otherwise the path is
// vol2col + sgemm in bands of output rows, each band a GEMM of
// at most a few MB of columns, so a 128^3 patch never builds its whole column
// matrix. Work is split so that a batch of one volume (sliding-window inference,
// nnU-Net's batch of 2) still uses every core:
//   forward          over (image, band) pairs: disjoint output columns;
//   input gradient   over chunks of input channels: disjoint slices of dx;
//   weight gradient  over (image, band) pairs, summed per worker in a fixed order.
// The naive path is the defining sum in Double, the reference the tests compare with.

/// The geometry of one 3D convolution.
public struct VolumeGeometry: Hashable, Sendable {
    public var n, c, o: Int
    /// Input size, kernel, stride, padding and dilation, each [d, h, w].
    public var size, kernel, stride, padding, dilation: [Int]

    public init(n: Int, c: Int, size: [Int], o: Int, kernel: [Int], stride: [Int] = [1, 1, 1], padding: [Int] = [0, 0, 0], dilation: [Int] = [1, 1, 1]) {
        precondition([size, kernel, stride, padding, dilation].allSatisfy { $0.count == 3 }, "VolumeGeometry: [d, h, w] lists")
        (self.n, self.c, self.o, self.size, self.kernel) = (n, c, o, size, kernel)
        (self.stride, self.padding, self.dilation) = (stride, padding, dilation)
    }

    /// Output size along each axis.
    public var output: [Int] {
        (0..<3).map { (size[$0] + 2 * padding[$0] - dilation[$0] * (kernel[$0] - 1) - 1) / stride[$0] + 1 }
    }

    var inputVoxels: Int { size.reduce(1, *) }
    var outputVoxels: Int { output.reduce(1, *) }
    var kernelVolume: Int { kernel.reduce(1, *) }
    /// Rows of the vol2col matrix.
    var k: Int { c * kernelVolume }

    /// As `ConvGeometry.isBlockwise`: the kernel equals the stride, no padding, no dilation, and every voxel
    /// of the input is read by exactly one output voxel, in that voxel's own block.
    public var isBlockwise: Bool {
        kernel == stride && stride.contains { $0 > 1 } && padding == [0, 0, 0] && dilation == [1, 1, 1]
            && (0..<3).allSatisfy { size[$0] == output[$0] * stride[$0] }
    }

    /// The blockwise permutation's geometry (CKernels' ck_blocks) over the output's voxels.
    var blocks: ck_blocks {
        ck_blocks(channels: Int32(c), sd: Int32(stride[0]), sh: Int32(stride[1]), sw: Int32(stride[2]), depth: Int32(output[0]),
                  p: Int32(output[1]), q: Int32(output[2]))
    }
}

/// The column matrix of a band of output rows; a row is one (d', p) pair, its Q
/// outputs contiguous: col[((c*kd + a)*kh + u)*kw + v, (r - rows.lowerBound)*Q + j]
///   = x[c, sd*d' + dd*a - pd, sh*p + dh*u - ph, sw*j + dw*v - pw] for r = d'*P + p (0 outside).
enum Vol2col {
    /// Output rows per band: columns of at most about 4 MB.
    static func bandRows(_ g: VolumeGeometry) -> Int {
        let out = g.output
        return max(1, min(out[0] * out[1], (1 << 20) / max(1, g.k * out[2])))
    }

    static func bands(_ g: VolumeGeometry) -> [Range<Int>] {
        let out = g.output, rows = out[0] * out[1], band = bandRows(g)
        return stride(from: 0, to: rows, by: band).map { $0..<min(rows, $0 + band) }
    }

    /// Calls body(colRow, src) for every (channel in `channels`, tap, output row in `rows`):
    /// colRow is the Q-long run of the column matrix, src the input row it reads (nil when
    /// that row is padding), and `off` maps output column j to input column sw*j + off.
    @inline(__always)
    static func forEachRun(_ g: VolumeGeometry, channels: Range<Int>, rows: Range<Int>,
                           _ body: (_ colRow: Int, _ inputRow: Int?, _ off: Int) -> Void) {
        let (D, H, W) = (g.size[0], g.size[1], g.size[2]), out = g.output, P = out[1], Q = out[2]
        let (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2]), B = rows.count
        for c in channels {
            for a in 0..<kd {
                for u in 0..<kh {
                    for v in 0..<kw {
                        let tapRow = (((c - channels.lowerBound) * kd + a) * kh + u) * kw + v
                        for r in rows {
                            let (od, op) = (r / P, r % P)
                            let z = g.stride[0] * od + g.dilation[0] * a - g.padding[0]
                            let y = g.stride[1] * op + g.dilation[1] * u - g.padding[1]
                            let inside = z >= 0 && z < D && y >= 0 && y < H
                            body(tapRow * B * Q + (r - rows.lowerBound) * Q, inside ? ((c * D + z) * H + y) * W : nil,
                                 g.dilation[2] * v - g.padding[2])
                        }
                    }
                }
            }
        }
    }

    static func pack(_ x: UnsafePointer<Float>, _ g: VolumeGeometry, _ col: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        let W = g.size[2], Q = g.output[2], s = g.stride[2]
        forEachRun(g, channels: 0..<g.c, rows: rows) { at, inputRow, off in
            let out = col + at
            guard let inputRow else { out.update(repeating: 0, count: Q); return }
            let src = x + inputRow
            if s == 1 {
                let j0 = min(Q, max(0, -off)), j1 = max(j0, min(Q, W - off))
                if j0 > 0 { out.update(repeating: 0, count: j0) }
                if j1 > j0 { (out + j0).update(from: src + j0 + off, count: j1 - j0) }
                if j1 < Q { (out + j1).update(repeating: 0, count: Q - j1) }
            } else {
                for j in 0..<Q {
                    let xx = s * j + off
                    out[j] = (xx >= 0 && xx < W) ? src[xx] : 0
                }
            }
        }
    }

    /// The adjoint of `pack` for `channels`: dx[c, ...] += col[...], col's rows starting at channels.lowerBound.
    static func unpackAdd(_ col: UnsafePointer<Float>, _ g: VolumeGeometry, _ dx: UnsafeMutablePointer<Float>, channels: Range<Int>, rows: Range<Int>) {
        let W = g.size[2], Q = g.output[2], s = g.stride[2]
        forEachRun(g, channels: channels, rows: rows) { at, inputRow, off in
            guard let inputRow else { return }
            let src = col + at, dst = dx + inputRow
            if s == 1 {
                let j0 = min(Q, max(0, -off)), j1 = max(j0, min(Q, W - off))
                for j in j0..<j1 { dst[j + off] += src[j] }
            } else {
                for j in 0..<Q {
                    let xx = s * j + off
                    if xx >= 0 && xx < W { dst[xx] += src[j] }
                }
            }
        }
    }
}

/// The three products every 3D convolution and its adjoint are made of, for a
/// convolution `g` from an input space (C x D x H x W) to an output space (O x D' x P x Q).
enum VolumeProducts {
    /// out += W * vol2col(input) for every image (out zeroed by the caller when it is not accumulating).
    static func convolve(_ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        let bands = Vol2col.bands(g), V = g.outputVoxels, Q = g.output[2], K = g.k
        Parallel.forEach(g.n * bands.count) { item in
            let (n, rows) = (item / bands.count, bands[item % bands.count])
            let size = K * rows.count * Q, col = Scratch.floats(size)
            defer { Scratch.release(col, size) }
            Vol2col.pack(input + n * g.c * g.inputVoxels, g, col, rows: rows)
            GEMM.multiply(weight, transposeA: false, col, transposeB: false, out + n * g.o * V + rows.lowerBound * Q,
                          m: g.o, n: rows.count * Q, k: K, beta: 1, ldc: V)
        }
    }

    /// inputSpace += col2vol(W^T * outputSpace), split over chunks of input channels.
    static func adjoint(_ outputSpace: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ inputSpace: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        let bands = Vol2col.bands(g), V = g.outputVoxels, Q = g.output[2], K = g.k, kv = g.kernelVolume
        let workers = min(Parallel.threads, g.c)
        Parallel.forEach(workers) { w in
            let channels = (g.c * w / workers)..<(g.c * (w + 1) / workers)
            let size = channels.count * kv * Vol2col.bandRows(g) * Q, dcol = Scratch.floats(size)
            defer { Scratch.release(dcol, size) }
            for n in 0..<g.n {
                for rows in bands {
                    GEMM.multiply(weight + channels.lowerBound * kv, transposeA: true, outputSpace + n * g.o * V + rows.lowerBound * Q, transposeB: false,
                                  dcol, m: channels.count * kv, n: rows.count * Q, k: g.o, lda: K, ldb: V)
                    Vol2col.unpackAdd(dcol, g, inputSpace + n * g.c * g.inputVoxels, channels: channels, rows: rows)
                }
            }
        }
    }

    /// dw[o, k] += sum over voxels of outputSpace[o, voxel] * vol2col(input)[k, voxel], per worker then in a fixed order.
    static func weightGradient(_ input: UnsafePointer<Float>, _ outputSpace: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        let bands = Vol2col.bands(g), V = g.outputVoxels, Q = g.output[2], K = g.k, items = g.n * bands.count
        WeightGradients.accumulate(images: items, weightCount: g.o * K, biasCount: 0, dw, nil) { wkr, workers, pdw, _ in
            let size = K * Vol2col.bandRows(g) * Q, col = Scratch.floats(size)
            defer { Scratch.release(col, size) }
            var item = wkr
            while item < items {
                let (n, rows) = (item / bands.count, bands[item % bands.count])
                Vol2col.pack(input + n * g.c * g.inputVoxels, g, col, rows: rows)
                GEMM.multiply(outputSpace + n * g.o * V + rows.lowerBound * Q, transposeA: false, col, transposeB: true, pdw,
                              m: g.o, n: K, k: rows.count * Q, beta: 1, lda: V)
                item += workers
            }
        }
    }

    /// db[ch] += sum of t[n, ch, ...] over images and voxels.
    static func channelSums(_ t: UnsafePointer<Float>, _ db: UnsafeMutablePointer<Float>, n: Int, channels: Int, voxels: Int) {
        for ch in 0..<channels {
            var s: Float = 0
            for i in 0..<n { s += Reduction.sum(t + (i * channels + ch) * voxels, count: voxels) }
            db[ch] += s
        }
    }

    static func addBias(_ bias: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, channels: Int, voxels: Int) {
        Parallel.forEach(n * channels) { plane in
            let b = bias[plane % channels], row = y + plane * voxels
            for i in 0..<voxels { row[i] += b }
        }
    }
}

public enum Conv3D {
    /// y[n, o] = b[o] + sum_{c,a,u,v} w[o, c, a, u, v] * x[n, c, sd*i + dd*a - pd, sh*j + dh*u - ph, sw*l + dw*v - pw]
    /// `algorithm` overrides the runtime's choice (`ConvAlgorithm.rule`), for tests and benchmarks.
    public static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ g: VolumeGeometry, algorithm: ConvAlgorithm? = nil) {
        if choose(algorithm, g, .forward) == .direct {
            DirectConvolution.forward(x, weight, bias, y, g)
            return
        }
        y.update(repeating: 0, count: g.n * g.o * g.outputVoxels)
        VolumeProducts.convolve(x, weight, y, g)
        if let bias { VolumeProducts.addBias(bias, y, n: g.n, channels: g.o, voxels: g.outputVoxels) }
    }

    /// Accumulates dx (if given), dw and db (if given) from dy.
    public static func backward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                _ g: VolumeGeometry, inputGradient: ConvAlgorithm? = nil, weightGradient: ConvAlgorithm? = nil) {
        if let dx {
            if choose(inputGradient, g, .inputGradient) == .direct {
                DirectConvolution.inputGradient(dy, weight, dx, g)
            } else {
                VolumeProducts.adjoint(dy, weight, dx, g)
            }
        }
        if choose(weightGradient, g, .weightGradient) == .direct {
            DirectConvolution.weightGradient(x, dy, dw, db, g)
        } else {
            VolumeProducts.weightGradient(x, dy, dw, g)
            if let db { VolumeProducts.channelSums(dy, db, n: g.n, channels: g.o, voxels: g.outputVoxels) }
        }
    }

    /// The algorithm for `pass`: the caller's override, else the runtime's rule.
    private static func choose(_ override: ConvAlgorithm?, _ g: VolumeGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        ConvAlgorithm.resolve(override, runs: { $0.runs(g, pass) }, rule: ConvAlgorithm.rule(g, pass), "\(pass) of \(g)")
    }

    /// The defining sum, in Double: the reference for tests.
    public static func forwardNaive(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                    _ y: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        for n in 0..<g.n { for oc in 0..<g.o { for voxel in 0..<g.outputVoxels {
            var s = Double(bias?[oc] ?? 0)
            terms(g, oc: oc, voxel: voxel) { xi, wi in s += Double(weight[wi]) * Double(x[n * g.c * g.inputVoxels + xi]) }
            y[(n * g.o + oc) * g.outputVoxels + voxel] = Float(s)
        } } }
    }

    public static func backwardNaive(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                     _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                     _ g: VolumeGeometry) {
        for n in 0..<g.n { for oc in 0..<g.o { for voxel in 0..<g.outputVoxels {
            let d = dy[(n * g.o + oc) * g.outputVoxels + voxel]
            db?[oc] += d
            terms(g, oc: oc, voxel: voxel) { xi, wi in
                dw[wi] += d * x[n * g.c * g.inputVoxels + xi]
                dx?[n * g.c * g.inputVoxels + xi] += d * weight[wi]
            }
        } } }
    }

    /// Calls body(inputIndex within the image, weightIndex) for every in-bounds term of output `voxel` of channel `oc`.
    static func terms(_ g: VolumeGeometry, oc: Int, voxel: Int, _ body: (Int, Int) -> Void) {
        let out = g.output, (D, H, W) = (g.size[0], g.size[1], g.size[2]), (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let (i, j, l) = (voxel / (out[1] * out[2]), voxel / out[2] % out[1], voxel % out[2])
        for c in 0..<g.c { for a in 0..<kd { for u in 0..<kh { for v in 0..<kw {
            let z = g.stride[0] * i + g.dilation[0] * a - g.padding[0]
            let y = g.stride[1] * j + g.dilation[1] * u - g.padding[1]
            let x = g.stride[2] * l + g.dilation[2] * v - g.padding[2]
            guard z >= 0, z < D, y >= 0, y < H, x >= 0, x < W else { continue }
            body(((c * D + z) * H + y) * W + x, (((oc * g.c + c) * kd + a) * kh + u) * kw + v)
        } } } }
    }
}

/// 3D transposed convolution as the adjoint of a convolution whose input is this
/// op's output: `g` describes that convolution (g.c = this op's output channels,
/// g.size = this op's output size, g.o = this op's input channels).
public enum ConvTranspose3D {
    /// Output size along one axis for input `size`: (size - 1) * stride - 2 * padding + dilation * (k - 1) + 1.
    public static func outputSize(_ size: Int, k: Int, stride: Int, padding: Int, dilation: Int = 1) -> Int {
        (size - 1) * stride - 2 * padding + dilation * (k - 1) + 1
    }

    /// y = col2vol(W^T x) + b. Weight [Cin(=g.o), Cout(=g.c), kd, kh, kw] is the conv weight [O, C, ...].
    public static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        if g.isBlockwise {
            // Each input voxel's own block: the product, permuted into y with the bias (as in 2D), per band of input rows.
            let bands = Vol2col.bands(g), V = g.outputVoxels, Q = g.output[2], K = g.k
            Parallel.forEach(g.n * bands.count) { item in
                let (n, rows) = (item / bands.count, bands[item % bands.count])
                let size = K * rows.count * Q, col = Scratch.floats(size)
                defer { Scratch.release(col, size) }
                GEMM.multiply(weight, transposeA: true, x + n * g.o * V + rows.lowerBound * Q, transposeB: false, col, m: K, n: rows.count * Q, k: g.o, ldb: V)
                ck_blocks_scatter(col, bias, y + n * g.c * g.inputVoxels, g.blocks, Int32(rows.lowerBound), Int32(rows.upperBound))
            }
            return
        }
        y.update(repeating: 0, count: g.n * g.c * g.inputVoxels)
        VolumeProducts.adjoint(x, weight, y, g)
        if let bias { VolumeProducts.addBias(bias, y, n: g.n, channels: g.c, voxels: g.inputVoxels) }
    }

    public static func backward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
                                _ g: VolumeGeometry) {
        if g.isBlockwise {
            // dy gathered into the product's layout, band by band: dw += x col^T, dx += W col.
            let bands = Vol2col.bands(g), V = g.outputVoxels, Q = g.output[2], K = g.k, items = g.n * bands.count
            WeightGradients.accumulate(images: items, weightCount: g.o * K, biasCount: 0, dw, nil) { worker, workers, pdw, _ in
                let size = K * Vol2col.bandRows(g) * Q, col = Scratch.floats(size)
                defer { Scratch.release(col, size) }
                var item = worker
                while item < items {
                    let (n, rows) = (item / bands.count, bands[item % bands.count])
                    let xn = x + n * g.o * V + rows.lowerBound * Q, cols = rows.count * Q
                    ck_blocks_gather(dy + n * g.c * g.inputVoxels, col, g.blocks, Int32(rows.lowerBound), Int32(rows.upperBound))
                    GEMM.multiply(xn, transposeA: false, col, transposeB: true, pdw, m: g.o, n: K, k: cols, beta: 1, lda: V)
                    if let dx {
                        GEMM.multiply(weight, transposeA: false, col, transposeB: false, dx + n * g.o * V + rows.lowerBound * Q, m: g.o, n: cols, k: K,
                                      beta: 1, ldc: V)
                    }
                    item += workers
                }
            }
            if let db { VolumeProducts.channelSums(dy, db, n: g.n, channels: g.c, voxels: g.inputVoxels) }
            return
        }
        if let dx { VolumeProducts.convolve(dy, weight, dx, g) }
        VolumeProducts.weightGradient(dy, x, dw, g)
        if let db { VolumeProducts.channelSums(dy, db, n: g.n, channels: g.c, voxels: g.inputVoxels) }
    }
}
