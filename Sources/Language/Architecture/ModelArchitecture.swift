/// The architectures Distillery can build, described by numbers only.
///
/// This is the lowest layer that knows what a model looks like. The spec checker,
/// the cost model and the runtime's model builder all read the same description,
/// so a tap's name, channels and stride are one fact, stated once.

/// Normalisation after each convolution.
public enum NormKind: String, Sendable, CaseIterable {
    case batch, group, instance
}

/// How a U-Net decoder doubles resolution.
public enum UpsamplingKind: String, Sendable, CaseIterable {
    /// 2x2 transposed convolution, stride 2 (the study's choice).
    case transpose
    /// Bilinear x2 (align_corners false) followed by the block's convolutions.
    case bilinear
}

/// An output head: a 1x1 convolution producing `channels` logits.
public struct Head: Hashable, Sendable {
    /// The head whose logits are the segmentation: what evaluation, prediction and the
    /// data's classes read.
    public static let segmentation = "segmentation"

    public var name: String
    public var channels: Int
    public init(name: String, channels: Int) {
        self.name = name
        self.channels = channels
    }
}

/// The levels of a U-Net over volumes (3D), as nnU-Net's 3d_fullres plans describe
/// them: each level's convolution kernel and the pooling after it, per axis [d, h, w].
/// Thick-slice data takes (1, 3, 3) kernels and (1, 2, 2) pooling at the first levels.
public struct VolumeLevels: Hashable, Sendable {
    /// Sides a kernel may have (odd: the convolutions keep the size, padding k / 2).
    public static let kernelRange = 1...7
    public static let poolRange = 1...8

    /// The kernel of every convolution of encoder level i and of the decoder block at
    /// that level; the last entry is the bottleneck's: depth + 1 entries.
    public var kernels: [[Int]]
    /// The pooling window and stride after encoder level i: depth entries. The decoder's
    /// transposed convolution at that level mirrors it (kernel and stride).
    public var pools: [[Int]]

    public init(kernels: [[Int]], pools: [[Int]]) {
        self.kernels = kernels
        self.pools = pools
    }

    /// nnU-Net's isotropic default: 3x3x3 kernels and 2x2x2 pooling at each of `depth` levels.
    public static func isotropic(depth: Int) -> VolumeLevels {
        VolumeLevels(kernels: Array(repeating: [3, 3, 3], count: depth + 1), pools: Array(repeating: [2, 2, 2], count: depth))
    }

    /// What is wrong with these levels for a U-Net of `depth` levels, if anything.
    public func problem(depth: Int) -> String? {
        if kernels.count != depth + 1 { return "\(kernels.count) kernels for \(depth) levels and the bottleneck: \(depth + 1) are needed" }
        if pools.count != depth { return "\(pools.count) poolings for \(depth) levels: \(depth) are needed" }
        if let k = kernels.first(where: { $0.count != 3 || $0.contains { $0 % 2 == 0 || !Self.kernelRange.contains($0) } }) {
            return "kernel \(k) is not three odd sides in \(Self.kernelRange)"
        }
        if let p = pools.first(where: { $0.count != 3 || $0.contains { !Self.poolRange.contains($0) } }) {
            return "pooling \(p) is not three sides in \(Self.poolRange)"
        }
        return nil
    }

    /// Input depth, height and width must be multiples of these: the bottleneck's down-sampling.
    public var divisor: [Int] { stride(level: pools.count) }

    /// Down-sampling per axis of the maps of level `level` (0: full resolution; depth: the bottleneck).
    public func stride(level: Int) -> [Int] {
        pools.prefix(level).reduce([1, 1, 1]) { acc, p in zip(acc, p).map { $0 * $1 } }
    }
}

/// A U-Net: `widths.count` encoder levels, a bottleneck, mirrored decoders.
///
/// With `sharedDecoder` (arch `unet`) every head reads one decoder and taps are
/// `decoder.{i}`; otherwise (arch `multitask_unet`) each head has its own decoder
/// and taps are `decoder.{head}.{i}`.
public struct UNetArchitecture: Hashable, Sendable {
    public var inChannels: Int
    public var widths: [Int]
    public var bottleneck: Int
    public var convsPerBlock: Int
    public var norm: NormKind
    public var groups: Int
    public var upsampling: UpsamplingKind
    public var heads: [Head]
    public var sharedDecoder: Bool
    /// nil for a 2D U-Net (3x3 kernels, 2x2 pooling); the levels of a 3D one.
    public var volume: VolumeLevels?

    public init(inChannels: Int, widths: [Int], bottleneck: Int, convsPerBlock: Int, norm: NormKind,
                groups: Int, upsampling: UpsamplingKind, heads: [Head], sharedDecoder: Bool, volume: VolumeLevels? = nil) {
        self.inChannels = inChannels
        self.widths = widths
        self.bottleneck = bottleneck
        self.convsPerBlock = convsPerBlock
        self.norm = norm
        self.groups = groups
        self.upsampling = upsampling
        self.heads = heads
        self.sharedDecoder = sharedDecoder
        self.volume = volume
    }

    public var depth: Int { widths.count }
}

/// A TransUNet-style hybrid: a 7x7 stem, residual bottleneck stages, a ViT on the
/// deepest map, a conv bottleneck and bilinear decoders (one per head).
public struct TransUNetArchitecture: Hashable, Sendable {
    public var inChannels: Int
    public var stemWidth: Int
    public var stageWidths: [Int]
    public var bottleneck: Int
    public var decoderWidths: [Int]
    public var patch: Int
    public var vitBlocks: Int
    public var vitHeads: Int
    public var vitDim: Int
    public var vitMLP: Int
    public var heads: [Head]

    public init(inChannels: Int, stemWidth: Int, stageWidths: [Int], bottleneck: Int, decoderWidths: [Int],
                patch: Int, vitBlocks: Int, vitHeads: Int, vitDim: Int, vitMLP: Int, heads: [Head]) {
        self.inChannels = inChannels
        self.stemWidth = stemWidth
        self.stageWidths = stageWidths
        self.bottleneck = bottleneck
        self.decoderWidths = decoderWidths
        self.patch = patch
        self.vitBlocks = vitBlocks
        self.vitHeads = vitHeads
        self.vitDim = vitDim
        self.vitMLP = vitMLP
        self.heads = heads
    }

    /// Down-sampling of the deepest CNN map: the stem and each stage halve.
    public var encoderStride: Int { 1 << (stageWidths.count + 1) }
    /// The ViT's token grid for an input of `height` x `width`: (H/stride/p) x (W/stride/p).
    /// The position embedding has one row per token plus the class token.
    public func tokenGrid(height: Int, width: Int) -> (rows: Int, columns: Int) {
        (max(1, height / encoderStride / max(1, patch)), max(1, width / encoderStride / max(1, patch)))
    }

    public func tokens(height: Int, width: Int) -> Int {
        let g = tokenGrid(height: height, width: width)
        return g.rows * g.columns
    }

    /// Per-head width of attention: floor(dim / heads), as the study's code does.
    public var vitHeadDim: Int { vitHeads > 0 ? vitDim / vitHeads : 0 }
    public var vitInnerDim: Int { vitHeadDim * vitHeads }
}

/// One of the supported architectures.
public enum ModelArchitecture: Hashable, Sendable {
    case unet(UNetArchitecture)
    case transunet(TransUNetArchitecture)

    /// The spec's `arch:` name.
    public var archName: String {
        switch self {
        case .unet(let u): return u.sharedDecoder ? "unet" : "multitask_unet"
        case .transunet: return "transunet"
        }
    }

    public var heads: [Head] {
        switch self {
        case .unet(let u): return u.heads
        case .transunet(let t): return t.heads
        }
    }

    public var inChannels: Int {
        switch self {
        case .unet(let u): return u.inChannels
        case .transunet(let t): return t.inChannels
        }
    }

    /// 2 for networks over slices, 3 over volumes.
    public var spatialDimensions: Int {
        if case .unet(let u) = self, u.volume != nil { return 3 }
        return 2
    }

    /// Input height and width must be multiples of this (a volume's depth: `VolumeLevels.divisor`).
    public var inputDivisor: Int {
        switch self {
        case .unet(let u): return u.volume.map { max($0.divisor[1], $0.divisor[2]) } ?? 1 << u.depth
        case .transunet(let t): return t.encoderStride * max(1, t.patch)
        }
    }

    /// A short human description: `unet, depth 2`.
    /// Whether the network normalises by batch statistics (a training batch of one image is
    /// then skipped: its statistics are undefined). The trainer and the plan's step count read it.
    public var usesBatchNorm: Bool {
        switch self {
        case .unet(let u): return u.norm == .batch
        case .transunet: return true
        }
    }

    public var summary: String {
        switch self {
        case .unet(let u): return "\(archName), depth \(u.depth)"
        case .transunet(let t): return "transunet, \(t.stageWidths.count) stages, ViT \(t.vitBlocks)x\(t.vitDim)"
        }
    }
}
