import CKernels

// Direct convolution (CKernels, AVX-512) for the layers that starve a GEMM: few
// output channels at high resolution. The forward pass and the input gradient
// (a forward convolution of dy with the flipped, transposed kernel) run through
// one register-tiled kernel that reads the image in place; no im2col matrix is
// built. The weight gradient stays on im2col + sgemm (see CKernels).
//
// Which layers take it is a rule on the shape, not a timing taken at run time:
// timings move with the machine's load, and a choice that moved with them
// would make two runs of one stage differ in their last bits. The rule comes
// from `distill bench --conv`, which times both algorithms on every layer of
// the study's networks and prints which one the rule picks.

/// The algorithm a convolution pass runs.
public enum ConvAlgorithm: String, Sendable, CaseIterable {
    /// im2col (skipped for 1x1) + OpenBLAS sgemm.
    case gemm
    /// The AVX-512 direct kernel.
    case direct
}

/// The three passes of a convolution.
public enum ConvPass: String, Sendable, CaseIterable {
    case forward, inputGradient, weightGradient
}

public enum DirectConvolution {
    /// This CPU runs the AVX-512 kernels.
    public static let isAvailable = ck_direct_available() != 0

    /// Forces one algorithm on every pass it can run (`distill parity` checks both
    /// against PyTorch); nil, the default, leaves the choice to `algorithm`'s rule.
    @TaskLocal public static var forced: ConvAlgorithm?

    /// The kernel's contract: the forward pass and the input gradient, stride 1, no
    /// dilation, square kernels up to 7 x 7 (the kernel takes one padding, and the
    /// input gradient's, k - 1 - p, differs per axis for a non-square one), padding
    /// that keeps the output non-empty.
    public static func supports(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        pass != .weightGradient && g.stride == 1 && g.dilation == 1 && g.kh == g.kw && g.kh <= 7
            && g.padding < g.kh && g.padding < g.kw && g.p > 0 && g.q > 0 && !g.isPointwise
    }

    /// The algorithm the runtime uses for `pass` of `g` on this CPU.
    ///
    /// The direct kernel computes 6 output channels per register tile over rows of
    /// 16-pixel vectors, reading the input rows of every channel for each block of
    /// outputs. It beats im2col + sgemm where rows fill its 4 vectors (64 pixels or
    /// more) and the channels are few enough (256 or fewer on each side) that a
    /// band of input rows and a block's weights stay in L2; on the deep, small maps
    /// sgemm wins. Measured with `distill bench --conv` on T1, S1 and S2.
    public static func algorithm(_ g: ConvGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        guard isAvailable, supports(g, pass) else { return .gemm }
        if let forced { return forced }
        guard g.c <= 256, g.o <= 256 else { return .gemm }
        switch pass {
        case .forward: return g.q >= 64 ? .direct : .gemm
        case .inputGradient: return g.w >= 64 ? .direct : .gemm
        case .weightGradient: return .gemm
        }
    }

    /// Weight [O, C, kh, kw] packed for the kernel (see CKernels.h); release with `Scratch.release`.
    static func pack(_ weight: UnsafePointer<Float>, _ g: ConvGeometry, forInputGradient: Bool) -> (UnsafeMutablePointer<Float>, Int) {
        let count = forInputGradient ? ck_direct_packed_count(Int32(g.c), Int32(g.o), Int32(g.kh), Int32(g.kw))
                                     : ck_direct_packed_count(Int32(g.o), Int32(g.c), Int32(g.kh), Int32(g.kw))
        let packed = Scratch.floats(count)
        ck_direct_pack(weight, packed, Int32(g.o), Int32(g.c), Int32(g.kh), Int32(g.kw), forInputGradient ? 1 : 0)
        return (packed, count)
    }

    /// Work items over images and, when there are fewer images than threads, bands of rows.
    private static func forEachBand(images: Int, rows: Int, _ body: (_ image: Int, _ rows: Range<Int>) -> Void) {
        let split = images >= Parallel.threads ? 1 : min(rows, (Parallel.threads + images - 1) / images)
        Parallel.forEach(images * split) { item in
            let n = item / split, s = item % split
            body(n, rows * s / split ..< rows * (s + 1) / split)
        }
    }

    /// y = conv(x, w) + b for every image (overwrites y).
    static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        run(x, weight, bias, y, g, inputGradient: false)
    }

    /// dx += conv_transpose(dy, w): the forward kernel on dy with the flipped, transposed weight.
    static func inputGradient(_ dy: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        run(dy, weight, nil, dx, g, inputGradient: true)
    }

    /// The kernel over every image: the convolution `g` (overwriting), or its adjoint
    /// from dy to dx, which has the channels swapped and padding k - 1 - p (accumulating).
    private static func run(_ input: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                            _ output: UnsafeMutablePointer<Float>, _ g: ConvGeometry, inputGradient: Bool) {
        let (packed, count) = pack(weight, g, forInputGradient: inputGradient)
        defer { Scratch.release(packed, count) }
        let k = inputGradient ? ConvGeometry(n: g.n, c: g.o, h: g.p, w: g.q, o: g.c, kh: g.kh, kw: g.kw, padding: g.kh - 1 - g.padding) : g
        let inSize = k.c * k.h * k.w, outSize = k.o * k.p * k.q
        forEachBand(images: k.n, rows: k.p) { n, rows in
            ck_direct_forward(input + n * inSize, packed, bias, output + n * outSize, Int32(k.c), Int32(k.h), Int32(k.w), Int32(k.o),
                              Int32(k.kh), Int32(k.kw), Int32(k.padding), Int32(rows.lowerBound), Int32(rows.upperBound), inputGradient ? 1 : 0)
        }
    }
}
