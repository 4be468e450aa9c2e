/// Arithmetic and memory of one forward pass, counted from the same description
/// the builder uses. MACs count convolutions, transposed convolutions, linear
/// layers and attention products (perf.md counts the first two; the U-Nets have
/// nothing else of weight).
public struct ForwardCost: Hashable, Sendable {
    /// Multiply-accumulates for one sample.
    public var macs: Int
    /// Float32 values one sample keeps alive for the backward pass (layer outputs).
    public var activations: Int
}

extension ModelArchitecture {
    /// The cost of one sample of `height` x `width` pixels.
    public func forwardCost(height: Int, width: Int) -> ForwardCost {
        switch self {
        case .unet(let u):
            return Self.unetCost(u, voxels: { (height >> $0) * (width >> $0) }, kernel: { _ in 9 }, pool: { _ in 4 }, output: height * width)
        case .transunet(let t): return Self.transunetCost(t, height, width)
        }
    }

    /// The cost of one volume of `size` [d, h, w] voxels through a 3D U-Net (nil for a 2D network).
    public func forwardCost(volume size: [Int]) -> ForwardCost? {
        guard case .unet(let u) = self, let v = u.volume, size.count == 3 else { return nil }
        return Self.unetCost(u, voxels: { level in zip(size, v.stride(level: level)).reduce(1) { $0 * ($1.0 / $1.1) } },
                             kernel: { v.kernels[$0].reduce(1, *) }, pool: { v.pools[$0].reduce(1, *) }, output: size.reduce(1, *))
    }

    /// A U-Net in 2D or 3D: `voxels(level)` values per map at each level (depth: the
    /// bottleneck), `kernel(level)` taps per convolution, `pool(level)` values per pooling window.
    private static func unetCost(_ u: UNetArchitecture, voxels: (Int) -> Int, kernel: (Int) -> Int, pool: (Int) -> Int, output: Int) -> ForwardCost {
        var macs = 0, acts = 0
        // A block: its convolutions at `level`, each output kept twice (conv, norm+ReLU).
        func block(_ cin: Int, _ cout: Int, _ level: Int) {
            for j in 0..<u.convsPerBlock {
                macs += (j == 0 ? cin : cout) * cout * kernel(level) * voxels(level)
                acts += 2 * cout * voxels(level)
            }
        }
        var cin = u.inChannels
        for (i, width) in u.widths.enumerated() {
            block(cin, width, i)
            acts += width * voxels(i) / pool(i)  // pooled
            cin = width
        }
        block(cin, u.bottleneck, u.depth)
        let decoders = u.sharedDecoder ? 1 : u.heads.count
        for _ in 0..<decoders {
            var below = u.bottleneck
            for level in stride(from: u.depth - 1, through: 0, by: -1) {
                let width = u.widths[level], values = voxels(level)
                switch u.upsampling {
                case .transpose:
                    macs += below * width * pool(level) * (values / pool(level))
                    acts += width * values + 2 * width * values  // up-sampled, concatenation
                    block(2 * width, width, level)
                case .bilinear:
                    acts += below * values + (below + width) * values
                    block(below + width, width, level)
                }
                below = width
            }
        }
        for head in u.heads {
            macs += u.widths[0] * head.channels * output
            acts += head.channels * output
        }
        return ForwardCost(macs: macs, activations: acts)
    }

    private static func transunetCost(_ t: TransUNetArchitecture, _ h: Int, _ w: Int) -> ForwardCost {
        var macs = 0, acts = 0
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ pixels: Int) {
            macs += cin * cout * k * k * pixels
            acts += 2 * cout * pixels
        }
        var pixels = (h / 2) * (w / 2)
        conv(t.inChannels, t.stemWidth, 7, pixels)
        var cin = t.stemWidth
        for width in t.stageWidths {
            let inPixels = pixels
            pixels /= 4
            conv(cin, width, 1, inPixels)
            conv(width, width, 3, pixels)
            conv(width, width, 1, pixels)
            conv(cin, width, 1, pixels)
            acts += width * pixels
            cin = width
        }
        let tokens = t.tokens(height: h, width: w) + 1
        let features = t.patch * t.patch * cin
        let d = t.vitDim, inner = t.vitInnerDim
        macs += (tokens - 1) * features * d
        for _ in 0..<t.vitBlocks {
            macs += tokens * d * 3 * inner + 2 * tokens * tokens * inner + tokens * inner * d + 2 * tokens * d * t.vitMLP
            acts += tokens * (3 * inner + 2 * inner + t.vitHeads * tokens + 4 * d + 2 * t.vitMLP)
        }
        macs += (tokens - 1) * d * features
        acts += (tokens - 1) * features
        conv(cin, t.bottleneck, 3, pixels)
        var below = t.bottleneck
        let skips = Array(t.stageWidths.dropLast().reversed()) + [t.stemWidth]
        for _ in t.heads {
            var level = pixels
            below = t.bottleneck
            for (i, width) in t.decoderWidths.enumerated() {
                level *= 4
                let skip = i < skips.count ? skips[i] : 0
                acts += (below + skip) * level
                conv(below + skip, width, 3, level)
                conv(width, width, 3, level)
                below = width
            }
        }
        for head in t.heads {
            macs += (t.decoderWidths.last ?? 0) * head.channels * h * w
            acts += head.channels * h * w
        }
        return ForwardCost(macs: macs, activations: acts)
    }
}
