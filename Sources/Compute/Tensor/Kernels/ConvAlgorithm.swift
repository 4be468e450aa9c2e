// Which algorithm runs each pass of each convolution.
//
// The choice is a rule on the shape, not a timing taken at run time: timings
// move with the machine's load, and a choice that moved with them would make
// two runs of one stage differ in their last bits. The rule comes from
// `distill bench --conv`, which times every algorithm on every layer of the
// study's networks and prints which one the rule picks.

/// The algorithm a convolution pass runs.
public enum ConvAlgorithm: String, Sendable, CaseIterable {
    /// im2col (skipped for 1x1) + OpenBLAS sgemm.
    case gemm
    /// The direct kernel (DirectConvolution: AVX-512, or AVX2 with FMA).
    case direct
    /// Winograd F(2x2, 3x3): transforms around sgemm (Winograd), every pass.
    case winograd

    /// Forces one algorithm on every pass it can run (`distill parity` checks each
    /// against PyTorch); nil, the default, leaves the choice to `rule`.
    @TaskLocal public static var forced: ConvAlgorithm?

    /// Whether this algorithm runs `pass` of `g` on this CPU.
    public func runs(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        switch self {
        case .gemm: true
        case .direct: DirectConvolution.isAvailable && DirectConvolution.supports(g, pass)
        case .winograd: Winograd.supports(g, pass)
        }
    }

    /// Whether this algorithm runs `pass` of the volume convolution `g` on this CPU.
    public func runs(_ g: VolumeGeometry, _ pass: ConvPass) -> Bool {
        switch self {
        case .gemm: true
        case .direct: DirectConvolution.isAvailable && DirectConvolution.supports(g, pass)
        case .winograd: false
        }
    }

    /// The algorithm the runtime uses for `pass` of `g` on this CPU: the rule for its vector width.
    public static func rule(_ g: ConvGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        if let forced { return forced.runs(g, pass) ? forced : .gemm }
        return DirectConvolution.lanes == 8 ? ruleAVX2(g, pass) : ruleAVX512(g, pass)
    }

    /// With AVX-512 (and on CPUs without the direct kernels, where its direct branches do not apply):
    /// - Winograd on the deep 3x3 layers: its 16 products are then large GEMMs, and it
    ///   does 2.25 times fewer multiplications than either other algorithm. Measured on
    ///   T1's layers of 128 to 1024 channels it is 1.5 to 1.9 times faster than both;
    ///   on fewer channels its transforms' memory traffic catches up with it. So: the
    ///   forward pass with 128 or more input channels and 64 or more outputs, the input
    ///   gradient with 128 or more on each side, the weight gradient (which transforms
    ///   the input and the gradient once per batch) with 64 or more on each side.
    /// - The direct kernel computes 6 output channels per register tile over rows of
    ///   16-pixel vectors, reading the input rows of every channel for each block of
    ///   outputs. It beats im2col + sgemm where rows fill its 4 vectors (64 pixels or
    ///   more) and the channels are few enough (256 or fewer on each side) that a
    ///   band of input rows and a block's weights stay in L2.
    ///   Its weight gradient (3x3 only) keeps 2 output channels x 9 taps of partial sums
    ///   in registers over bands of rows: measured at 145-175 GFLOP/s on the students'
    ///   layers of 16 to 64 channels (80-105 on the 3-channel first layers) at 128 and 256
    ///   pixels a row, where im2col + sgemm, whose GEMM then has only 16 to 64 rows, ran
    ///   at 30-150; about even at 64 pixels.
    /// - im2col + sgemm everywhere else.
    ///
    /// Measured with `distill bench --conv` on T1, S1 and S2.
    static func ruleAVX512(_ g: ConvGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        if ConvAlgorithm.winograd.runs(g, pass) {
            switch pass {
            case .forward: if g.c >= 128, g.o >= 64 { return .winograd }
            case .inputGradient: if min(g.c, g.o) >= 128 { return .winograd }
            case .weightGradient: if min(g.c, g.o) >= 64 { return .winograd }
            }
        }
        guard ConvAlgorithm.direct.runs(g, pass), g.c <= 256, g.o <= 256 else { return .gemm }
        switch pass {
        case .forward: return g.q >= 64 ? .direct : .gemm
        case .inputGradient: return g.w >= 64 ? .direct : .gemm
        case .weightGradient: return g.q >= 64 ? .direct : .gemm
        }
    }

    /// With AVX2 and FMA (AMD Zen 3: 16 vector registers of 8 floats, two FMA units), from three runs of
    /// `distill bench --conv` on T1, S1 and S2 (2 threads; single rows scatter by 10-30% between runs on
    /// this machine kind, so a boundary is where one algorithm won in at least two of the three):
    /// - Winograd from fewer channels than with AVX-512: sgemm and the direct kernel both run at
    ///   half AVX-512's width while the transforms' memory traffic stays the same. The forward pass
    ///   from 64 input channels (1.1-1.4 times faster than the direct kernel on the students'
    ///   decoders and T1's 64-channel layers); the input gradient from 32 input and 64 output
    ///   channels (with 32 outputs, the decoders' last layers, the direct kernel wins); the weight
    ///   gradient from 16 on each side.
    /// - The direct kernel (6 output channels x 2 vectors of 8 per tile) on the other layers'
    ///   forward pass and input gradient with rows of 64 pixels or more: 1.1-2.5 times faster than
    ///   im2col + sgemm on the students' 3-32-channel layers. Its weight gradient (1 output channel
    ///   x 9 taps per tile) loses to sgemm on the 3-channel first layers and to Winograd
    ///   elsewhere, so it is not chosen in 2D.
    static func ruleAVX2(_ g: ConvGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        if ConvAlgorithm.winograd.runs(g, pass) {
            switch pass {
            case .forward: if g.c >= 64, g.o >= 16 { return .winograd }
            case .inputGradient: if g.c >= 32, g.o >= 64 { return .winograd }
            case .weightGradient: if min(g.c, g.o) >= 16 { return .winograd }
            }
        }
        guard pass != .weightGradient, ConvAlgorithm.direct.runs(g, pass), g.c <= 256, g.o <= 256 else { return .gemm }
        return (pass == .forward ? g.q : g.w) >= 64 ? .direct : .gemm
    }

    /// The 3D rule, from `distill bench --conv` on S3D and T3D (64^3 patches, batch 2):
    /// - The direct forward pass and input gradient, 256 channels or fewer on each side, on rows of
    ///   16 voxels or more: each output slice is a 2D tile loop, and a 3x3x3 kernel gives it 27
    ///   taps per input channel, so even rows of one or two vectors keep the FMA unit busy. At
    ///   32^3 and 16^3 they ran 1.1-2.3 times faster than vol2col + sgemm (185-245 GFLOP/s
    ///   against 110-170); at 8^3, 10-40% slower. The same holds with AVX2 (1.1-2.9 times).
    /// - The direct weight gradient on rows of 64 voxels (1.2-1.8 times faster), and of 32 when the
    ///   layer reads 64 channels or fewer (even to 1.4 times faster; with 128, 10% slower). On rows
    ///   of 16 or fewer its lane reductions dominate: 2-4 times slower. With AVX2, whose tile holds
    ///   one output channel, only on layers of 32 outputs or fewer with rows of 32 or more
    ///   (1.0-1.25 times faster; with 64 outputs, 10-25% slower).
    public static func rule(_ g: VolumeGeometry, _ pass: ConvPass) -> ConvAlgorithm {
        if let forced { return forced.runs(g, pass) ? forced : .gemm }
        guard ConvAlgorithm.direct.runs(g, pass), g.c <= 256, g.o <= 256 else { return .gemm }
        switch pass {
        case .forward: return g.output[2] >= 16 ? .direct : .gemm
        case .inputGradient: return g.size[2] >= 16 ? .direct : .gemm
        case .weightGradient:
            if DirectConvolution.lanes == 8 { return g.o <= 32 && g.output[2] >= 32 ? .direct : .gemm }
            return g.output[2] >= 64 || (g.output[2] >= 32 && g.c <= 64) ? .direct : .gemm
        }
    }

    /// The algorithm a pass runs: the caller's override (which must run the pass),
    /// else the runtime's rule.
    static func resolve(_ override: ConvAlgorithm?, runs: (ConvAlgorithm) -> Bool, rule: @autoclosure () -> ConvAlgorithm,
                        _ what: @autoclosure () -> String) -> ConvAlgorithm {
        guard let override else { return rule() }
        precondition(runs(override), "\(override) convolution asked for an unsupported \(what())")
        return override
    }
}

/// The three passes of a convolution.
public enum ConvPass: String, Sendable, CaseIterable {
    case forward, inputGradient, weightGradient
}
