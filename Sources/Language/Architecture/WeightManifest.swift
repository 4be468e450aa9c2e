import Synchronization

/// The weight manifest: every tensor a built network holds, by name, with its shape,
/// in the order the builder registers them. The names are the reference's
/// (../shared/reference/README.md, "Model parameter naming"): a checkpoint is this
/// manifest's tensors, a weight file imported from PyTorch is checked against it
/// before anything runs, and the parameter count is its sum. The builder (NN) is
/// tested to produce exactly this manifest for every architecture in specs/ and in
/// the reference cases.
public struct WeightEntry: Hashable, Sendable {
    public var name: String
    public var shape: [Int]
    /// A buffer (BatchNorm running statistics) rather than a learnable parameter.
    public var isBuffer: Bool

    public var count: Int { shape.reduce(1, *) }

    public init(name: String, shape: [Int], isBuffer: Bool) { (self.name, self.shape, self.isBuffer) = (name, shape, isBuffer) }
}

extension ModelArchitecture {
    /// Every parameter and buffer for an input of `height` x `width` pixels (the
    /// hybrid's position embedding depends on how many tokens the input yields).
    public func weightManifest(height: Int, width: Int) -> [WeightEntry] {
        var m = ManifestWriter()
        switch self {
        case .unet(let u): m.unet(u)
        case .transunet(let t): m.transunet(t, tokens: t.tokens(height: height, width: width))
        }
        return m.entries
    }

    /// Learnable values (buffers are not parameters).
    /// Remembered per architecture and input size: the planner asks for it for every stage of
    /// every variant, and the manifest it sums names every tensor.
    public func parameterCount(height: Int, width: Int) -> Int {
        let key = ParameterCounts.Key(architecture: self, height: height, width: width)
        if let known = ParameterCounts.known.withLock({ $0[key] }) { return known }
        let count = weightManifest(height: height, width: width).reduce(0) { $0 + ($1.isBuffer ? 0 : $1.count) }
        ParameterCounts.known.withLock { $0[key] = count }
        return count
    }
}

private enum ParameterCounts {
    struct Key: Hashable, Sendable {
        var architecture: ModelArchitecture
        var height: Int, width: Int
    }

    static let known = Mutex<[Key: Int]>([:])
}

private struct ManifestWriter {
    var entries: [WeightEntry] = []

    mutating func add(_ name: String, _ shape: [Int], buffer: Bool = false) {
        entries.append(WeightEntry(name: name, shape: shape, isBuffer: buffer))
    }

    mutating func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, bias: Bool = true) {
        conv(name, cin, cout, kernel: [k, k], bias: bias)
    }

    mutating func conv(_ name: String, _ cin: Int, _ cout: Int, kernel: [Int], bias: Bool = true) {
        add("\(name).weight", [cout, cin] + kernel)
        if bias { add("\(name).bias", [cout]) }
    }

    mutating func norm(_ name: String, _ c: Int, _ kind: NormKind) {
        add("\(name).weight", [c])
        add("\(name).bias", [c])
        if kind == .batch {
            add("\(name).running_mean", [c], buffer: true)
            add("\(name).running_var", [c], buffer: true)
        }
    }

    mutating func linear(_ name: String, _ din: Int, _ dout: Int, bias: Bool = true) {
        add("\(name).weight", [dout, din])
        if bias { add("\(name).bias", [dout]) }
    }

    mutating func unet(_ u: UNetArchitecture) {
        // 3x3 kernels and 2x2 up-sampling in 2D; each level's own in 3D.
        func block(_ name: String, _ cin: Int, _ cout: Int, level: Int) {
            for j in 0..<u.convsPerBlock {
                conv("\(name).conv\(j)", j == 0 ? cin : cout, cout, kernel: u.volume?.kernels[level] ?? [3, 3])
                norm("\(name).norm\(j)", cout, u.norm)
            }
        }
        var cin = u.inChannels
        for (i, w) in u.widths.enumerated() {
            block("encoder.\(i)", cin, w, level: i)
            cin = w
        }
        block("bottleneck", cin, u.bottleneck, level: u.depth)
        for prefix in u.sharedDecoder ? ["decoder."] : u.heads.map({ "decoder.\($0.name)." }) {
            var below = u.bottleneck
            for i in 0..<u.depth {
                let level = u.depth - 1 - i, w = u.widths[level]
                switch u.upsampling {
                case .transpose:
                    add("\(prefix)\(i).up.weight", [below, w] + (u.volume?.pools[level] ?? [2, 2]))
                    add("\(prefix)\(i).up.bias", [w])
                    block("\(prefix)\(i)", 2 * w, w, level: level)
                case .bilinear:
                    block("\(prefix)\(i)", below + w, w, level: level)
                }
                below = w
            }
        }
        for head in u.heads { conv("head.\(head.name)", u.widths[0], head.channels, kernel: u.volume == nil ? [1, 1] : [1, 1, 1]) }
    }

    mutating func transunet(_ t: TransUNetArchitecture, tokens: Int) {
        conv("stem.conv0", t.inChannels, t.stemWidth, 7, bias: false)
        norm("stem.norm0", t.stemWidth, .batch)
        var cin = t.stemWidth
        for (i, w) in t.stageWidths.enumerated() {
            let p = "encoder.\(i)"
            conv("\(p).conv0", cin, w, 1, bias: false)
            norm("\(p).norm0", w, .batch)
            conv("\(p).conv1", w, w, 3, bias: false)
            norm("\(p).norm1", w, .batch)
            conv("\(p).conv2", w, w, 1, bias: false)
            norm("\(p).norm2", w, .batch)
            conv("\(p).shortcut.conv", cin, w, 1, bias: false)
            norm("\(p).shortcut.norm", w, .batch)
            cin = w
        }
        let features = t.patch * t.patch * cin, d = t.vitDim, inner = t.vitInnerDim
        linear("vit.patch_embed", features, d)
        add("vit.cls_token", [1, 1, d])
        add("vit.pos_embed", [tokens + 1, d])
        for b in 0..<t.vitBlocks {
            let p = "vit.block.\(b)"
            linear("\(p).attn.qkv", d, 3 * inner, bias: false)
            linear("\(p).attn.out", inner, d)
            add("\(p).norm0.weight", [d])
            add("\(p).norm0.bias", [d])
            linear("\(p).mlp.fc0", d, t.vitMLP)
            linear("\(p).mlp.fc1", t.vitMLP, d)
            add("\(p).norm1.weight", [d])
            add("\(p).norm1.bias", [d])
        }
        linear("vit.unpatch", d, features)
        conv("bottleneck.conv0", cin, t.bottleneck, 3)
        norm("bottleneck.norm0", t.bottleneck, .batch)
        let skips = Array(t.stageWidths.dropLast().reversed()) + [t.stemWidth]
        for head in t.heads {
            var below = t.bottleneck
            for (i, w) in t.decoderWidths.enumerated() {
                let skip = i < skips.count ? skips[i] : 0
                let p = "decoder.\(head.name).\(i)"
                conv("\(p).conv0", below + skip, w, 3)
                conv("\(p).conv1", w, w, 3)
                norm("\(p).norm0", w, .batch)
                norm("\(p).norm1", w, .batch)
                below = w
            }
        }
        for head in t.heads { conv("head.\(head.name)", t.decoderWidths.last ?? 1, head.channels, 1) }
    }
}
