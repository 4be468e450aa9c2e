/// The named intermediate outputs of a model that distillation may read.
///
/// Names follow ../shared/reference/README.md: `input`, `encoder.{i}`, `pool.{i}`,
/// `bottleneck`, `decoder.{i}` or `decoder.{head}.{i}`, `logits.{head}`, and for
/// the hybrid `stem` and `vit`.
public struct Tap: Hashable, Sendable {
    public enum Shape: Hashable, Sendable {
        /// An NCHW feature map at `input / stride`.
        case map(stride: Int)
        /// A token sequence `[N, tokens, channels]` (the ViT's output).
        case tokens
        /// An NCDHW feature map at `input / strides` per axis [d, h, w] (a 3D network's).
        case volume(strides: [Int])
    }

    public var name: String
    public var channels: Int
    public var shape: Shape

    public init(name: String, channels: Int, shape: Shape) {
        self.name = name
        self.channels = channels
        self.shape = shape
    }

    /// The map's stride, nil for token sequences and volumes.
    public var stride: Int? {
        if case .map(let s) = shape { return s }
        return nil
    }

    /// The map's down-sampling per spatial axis: [h, w] for a plane's map, [d, h, w] for a
    /// volume's; nil for token sequences.
    public var strides: [Int]? {
        switch shape {
        case .map(let s): return [s, s]
        case .volume(let s): return s
        case .tokens: return nil
        }
    }

    /// The map's spatial extent for an input of `input` ([h, w] or [d, h, w]); nil for tokens.
    public func extent(input: [Int]) -> [Int]? {
        guard let strides, strides.count == input.count else { return nil }
        return zip(input, strides).map { $0 / $1 }
    }

    /// `128 ch @ 1/4` or `256 ch tokens`.
    public var summary: String {
        switch shape {
        case .map(let s): return "\(channels) ch @ 1/\(s)"
        case .tokens: return "\(channels) ch tokens"
        case .volume(let s): return "\(channels) ch @ 1/(\(s.map(String.init).joined(separator: ",")))"
        }
    }
}

/// Every tap of one model, in forward order.
public struct TapManifest: Hashable, Sendable {
    public let taps: [Tap]

    public init(_ taps: [Tap]) { self.taps = taps }

    public subscript(name: String) -> Tap? { taps.first { $0.name == name } }
    public var names: [String] { taps.map(\.name) }
}

extension ModelArchitecture {
    /// The tap manifest: the single source of tap names, channels and strides.
    public var tapManifest: TapManifest {
        switch self {
        case .unet(let u): return Self.unetTaps(u)
        case .transunet(let t): return Self.transunetTaps(t)
        }
    }

    private static func unetTaps(_ u: UNetArchitecture) -> TapManifest {
        // The maps of level i: 2^i in 2D, the product of the pools above it per axis in 3D.
        func at(_ level: Int) -> Tap.Shape {
            u.volume.map { .volume(strides: $0.stride(level: level)) } ?? .map(stride: 1 << level)
        }
        var taps = [Tap(name: "input", channels: u.inChannels, shape: at(0))]
        for (i, w) in u.widths.enumerated() {
            taps.append(Tap(name: "encoder.\(i)", channels: w, shape: at(i)))
            taps.append(Tap(name: "pool.\(i)", channels: w, shape: at(i + 1)))
        }
        taps.append(Tap(name: "bottleneck", channels: u.bottleneck, shape: at(u.depth)))
        let decoders = u.sharedDecoder ? [""] : u.heads.map { $0.name + "." }
        for prefix in decoders {
            for i in 0..<u.depth {
                let level = u.depth - 1 - i
                taps.append(Tap(name: "decoder.\(prefix)\(i)", channels: u.widths[level], shape: at(level)))
            }
        }
        for head in u.heads {
            taps.append(Tap(name: "logits.\(head.name)", channels: head.channels, shape: at(0)))
        }
        return TapManifest(taps)
    }

    private static func transunetTaps(_ t: TransUNetArchitecture) -> TapManifest {
        var taps = [Tap(name: "input", channels: t.inChannels, shape: .map(stride: 1)),
                    Tap(name: "stem", channels: t.stemWidth, shape: .map(stride: 2))]
        for (i, w) in t.stageWidths.enumerated() {
            taps.append(Tap(name: "encoder.\(i)", channels: w, shape: .map(stride: 1 << (i + 2))))
        }
        taps.append(Tap(name: "vit", channels: t.vitDim, shape: .tokens))
        taps.append(Tap(name: "bottleneck", channels: t.bottleneck, shape: .map(stride: t.encoderStride)))
        for head in t.heads {
            for (i, w) in t.decoderWidths.enumerated() {
                let stride = max(1, t.encoderStride >> (i + 1))
                taps.append(Tap(name: "decoder.\(head.name).\(i)", channels: w, shape: .map(stride: stride)))
            }
        }
        for head in t.heads {
            taps.append(Tap(name: "logits.\(head.name)", channels: head.channels, shape: .map(stride: 1)))
        }
        return TapManifest(taps)
    }
}
