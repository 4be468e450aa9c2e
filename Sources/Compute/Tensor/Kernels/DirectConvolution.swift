import CKernels

// Direct convolution (CKernels, AVX-512 or AVX2 + FMA) for the layers that starve a GEMM: few
// output channels at high resolution. The forward pass and the input gradient
// (a forward convolution of dy with the flipped, transposed kernel) run through
// one register-tiled kernel that reads bands of the image copied, padded, into a
// per-worker staging buffer; no im2col matrix is built. A 3x3 kernel's weight gradient (and a kd x 3 x 3 one's) has its own kernel,
// which reduces over the pixels in registers. Which layers take them is
// `ConvAlgorithm.rule`'s business.

public enum DirectConvolution {
    /// The vector width the kernels run at on this CPU: 16 floats (AVX-512) or 8 (AVX2 with FMA),
    /// nil below AVX2. `lanesOverride` runs the narrower kernel on a wider CPU (tests, benchmarks).
    public static var lanes: Int? {
        if let lanesOverride { return lanesOverride <= nativeLanes ?? 0 ? lanesOverride : nil }
        return nativeLanes
    }

    private static let nativeLanes: Int? = switch CPU.current.vectorTier {
    case .avx512: 16
    case .avx2: 8
    default: nil
    }

    /// Runs the kernels at 8 lanes (AVX2) on a CPU with AVX-512, so that both widths are tested on it.
    @TaskLocal public static var lanesOverride: Int?

    /// This CPU runs the direct kernels (AVX2 with FMA, or AVX-512).
    public static var isAvailable: Bool { lanes != nil }

    /// Every width this CPU runs the kernels at, its own first: [16, 8] with AVX-512, [8] with AVX2, [] below.
    public static var widths: [Int] { [16, 8].filter { $0 <= nativeLanes ?? 0 } }

    /// The instruction set of `lanes`, for messages.
    public static func isa(lanes: Int) -> String { lanes == 16 ? "AVX-512" : "AVX2 + FMA" }

    /// The kernel's contract: the forward pass and the input gradient, stride 1, no
    /// dilation, square kernels up to 7 x 7 (the kernel takes one padding, and the
    /// input gradient's, k - 1 - p, differs per axis for a non-square one), padding
    /// that keeps the output non-empty.
    /// The weight gradient's kernel: 3 x 3 only.
    public static func supports(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        g.stride == 1 && g.dilation == 1 && g.kh == g.kw && g.kh <= 7 && (pass != .weightGradient || g.kh == 3)
            && g.padding < g.kh && g.padding < g.kw && g.p > 0 && g.q > 0 && !g.isPointwise
    }

    /// The 3D kernel's contract: as in 2D, with any depth of kernel up to 7 and its own
    /// depth padding (nnU-Net's 1x3x3 and 3x3x3 layers); the in-plane kernel and padding square.
    public static func supports(_ g: VolumeGeometry, _ pass: ConvPass) -> Bool {
        let (k, p) = (g.kernel, g.padding)
        return (pass != .weightGradient || k[1] == 3) && g.stride == [1, 1, 1] && g.dilation == [1, 1, 1] && k[1] == k[2] && k[0] <= 7 && k[1] <= 7
            && p[1] == p[2] && p[0] < k[0] && p[1] < k[1] && g.output.allSatisfy { $0 > 0 } && k != [1, 1, 1]
    }

    /// y = conv(x, w) + b for every image (overwrites y).
    static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        run(x, weight, bias, y, images: g.n, Self.kernel(g, inputGradient: false), weight: (g.o, g.c, 1, g.kh, g.kw), inputGradient: false,
            accumulate: false)
    }

    /// dx += conv_transpose(dy, w): the forward kernel on dy with the flipped, transposed weight
    /// (dx = ..., overwriting it, when `accumulate` is false).
    static func inputGradient(_ dy: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                              accumulate: Bool = true) {
        run(dy, weight, nil, dx, images: g.n, Self.kernel(g, inputGradient: true), weight: (g.o, g.c, 1, g.kh, g.kw), inputGradient: true,
            accumulate: accumulate)
    }

    /// The 3D forward pass (overwrites y).
    static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        run(x, weight, bias, y, images: g.n, Self.kernel(g, inputGradient: false), weight: (g.o, g.c, g.kernel[0], g.kernel[1], g.kernel[2]),
            inputGradient: false, accumulate: false)
    }

    /// The 3D input gradient (accumulates into dx).
    static func inputGradient(_ dy: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: VolumeGeometry) {
        run(dy, weight, nil, dx, images: g.n, Self.kernel(g, inputGradient: true), weight: (g.o, g.c, g.kernel[0], g.kernel[1], g.kernel[2]),
            inputGradient: true, accumulate: true)
    }

    /// dw += dL/dw and db += dL/db (if given) from x and dy.
    static func weightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                               _ db: UnsafeMutablePointer<Float>?, _ g: ConvGeometry) {
        gradient(x, dy, dw, db, images: g.n, kernel(g, inputGradient: false))
    }

    /// The 3D weight and bias gradients.
    static func weightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                               _ db: UnsafeMutablePointer<Float>?, _ g: VolumeGeometry) {
        gradient(x, dy, dw, db, images: g.n, kernel(g, inputGradient: false))
    }

    /// The kernel's geometry for `g`, or for its adjoint from dy to dx: channels swapped,
    /// the output's size as input, padding k - 1 - p.
    static func kernel(_ g: ConvGeometry, inputGradient: Bool) -> ck_conv {
        inputGradient
            ? ck_conv(inputs: Int32(g.o), depth: 1, height: Int32(g.p), width: Int32(g.q), outputs: Int32(g.c), kd: 1, kh: Int32(g.kh), kw: Int32(g.kw),
                      padDepth: 0, pad: Int32(g.kh - 1 - g.padding))
            : ck_conv(inputs: Int32(g.c), depth: 1, height: Int32(g.h), width: Int32(g.w), outputs: Int32(g.o), kd: 1, kh: Int32(g.kh), kw: Int32(g.kw),
                      padDepth: 0, pad: Int32(g.padding))
    }

    static func kernel(_ g: VolumeGeometry, inputGradient: Bool) -> ck_conv {
        let (k, p, size, out) = (g.kernel.map(Int32.init), g.padding.map(Int32.init), g.size.map(Int32.init), g.output.map(Int32.init))
        return inputGradient
            ? ck_conv(inputs: Int32(g.o), depth: out[0], height: out[1], width: out[2], outputs: Int32(g.c), kd: k[0], kh: k[1], kw: k[2],
                      padDepth: k[0] - 1 - p[0], pad: k[1] - 1 - p[1])
            : ck_conv(inputs: Int32(g.c), depth: size[0], height: size[1], width: size[2], outputs: Int32(g.o), kd: k[0], kh: k[1], kw: k[2],
                      padDepth: p[0], pad: p[1])
    }

    /// Bands of rows per output slice: 1, or enough that every thread has one when there are fewer slices than threads.
    private static func split(slices: Int, rows: Int) -> Int {
        slices >= Parallel.threads ? 1 : min(rows, (Parallel.threads + slices - 1) / slices)
    }

    /// The weight-gradient kernel over every output slice (split into bands of rows as `run` does),
    /// each worker summing a fixed share of them, so the result depends on the thread count only.
    private static func gradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                 _ db: UnsafeMutablePointer<Float>?, images: Int, _ k: ck_conv) {
        let outDepth = Int(k.depth + 2 * k.padDepth - k.kd + 1), rows = Int(k.height + 2 * k.pad - k.kh + 1)
        let columns = Int(k.width + 2 * k.pad - k.kw + 1), outputs = Int(k.outputs)
        let inSize = Int(k.inputs * k.depth * k.height * k.width), outSize = outputs * outDepth * rows * columns
        let slices = images * outDepth, split = Self.split(slices: slices, rows: rows), items = slices * split
        let lanes = Int32(lanes ?? 0)  // read here: the workers do not see the caller's task-local values
        WeightGradients.accumulate(images: items, weightCount: outputs * Int(k.inputs * k.kd * k.kh * k.kw), biasCount: outputs, dw, db) { worker, workers, pdw, pdb in
            let stageCount = ck_direct_gradient_stage_count(k), stage = Scratch.floats(stageCount)
            defer { Scratch.release(stage, stageCount) }
            var item = worker
            while item < items {
                let (slice, s) = (item / split, item % split)
                let (n, z) = (slice / outDepth, slice % outDepth)
                let (first, last) = (rows * s / split, rows * (s + 1) / split)
                ck_direct_weight_gradient(x + n * inSize, dy + n * outSize, pdw, k, Int32(z), Int32(first), Int32(last), stage, lanes)
                if db != nil {
                    for o in 0..<outputs {
                        pdb[o] += Reduction.sum(dy + n * outSize + ((o * outDepth + z) * rows + first) * columns, count: (last - first) * columns)
                    }
                }
                item += workers
            }
        }
    }

    /// The kernel over every image: each output slice, split into bands of rows when
    /// there are fewer slices than threads. It overwrites its output, or adds into it
    /// (`accumulate`: an input gradient that already holds another op's share).
    private static func run(_ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ output: UnsafeMutablePointer<Float>, images: Int, _ k: ck_conv, weight w: (o: Int, c: Int, kd: Int, kh: Int, kw: Int),
                            inputGradient: Bool, accumulate: Bool) {
        let (o, c, kd, kh, kw) = (Int32(w.o), Int32(w.c), Int32(w.kd), Int32(w.kh), Int32(w.kw))
        let count = inputGradient ? ck_direct_packed_count(c, o, kd, kh, kw) : ck_direct_packed_count(o, c, kd, kh, kw)
        let packed = Scratch.floats(count)
        defer { Scratch.release(packed, count) }
        ck_direct_pack(weight, packed, o, c, kd, kh, kw, inputGradient ? 1 : 0)
        let outDepth = Int(k.depth + 2 * k.padDepth - k.kd + 1), rows = Int(k.height + 2 * k.pad - k.kh + 1)
        let columns = Int(k.width + 2 * k.pad - k.kw + 1)
        let inSize = Int(k.inputs * k.depth * k.height * k.width), outSize = Int(k.outputs) * outDepth * rows * columns
        let slices = images * outDepth, split = Self.split(slices: slices, rows: rows), items = slices * split
        // One staging buffer per worker; worker w takes items w, w + workers, ...
        let workers = min(Parallel.threads, items), stageCount = ck_direct_stage_count(k), lanes = Int32(lanes ?? 0)
        let stages = Scratch.floats(stageCount * workers)
        defer { Scratch.release(stages, stageCount * workers) }
        Parallel.forEach(workers) { worker in
            for item in stride(from: worker, to: items, by: workers) {
                let (slice, s) = (item / split, item % split)
                let (n, z) = (slice / outDepth, slice % outDepth)
                ck_direct_forward(input + n * inSize, packed, bias, output + n * outSize, k, Int32(z),
                                  Int32(rows * s / split), Int32(rows * (s + 1) / split), accumulate ? 1 : 0,
                                  stages + worker * stageCount, lanes)
            }
        }
    }
}
