/// Learnable parameter counts, derived from the same description the builder uses.
/// Buffers (BatchNorm running statistics) are not parameters.
extension ModelArchitecture {
    /// Learnable values for an input of `height` x `width` pixels (the hybrid's
    /// position embedding depends on how many tokens the input yields).
    public func parameterCount(height: Int, width: Int) -> Int {
        switch self {
        case .unet(let u): return Self.unetParameters(u)
        case .transunet(let t): return Self.transunetParameters(t, tokens: t.tokens(height: height, width: width))
        }
    }

    static func conv(_ cin: Int, _ cout: Int, _ k: Int, bias: Bool = true) -> Int {
        cin * cout * k * k + (bias ? cout : 0)
    }

    static func norm(_ c: Int, _ kind: NormKind) -> Int {
        2 * c  // weight and bias, whatever the kind
    }

    private static func unetParameters(_ u: UNetArchitecture) -> Int {
        func block(_ cin: Int, _ cout: Int) -> Int {
            (0..<u.convsPerBlock).reduce(0) { acc, j in
                acc + conv(j == 0 ? cin : cout, cout, 3) + norm(cout, u.norm)
            }
        }
        var total = 0
        var cin = u.inChannels
        for w in u.widths {
            total += block(cin, w)
            cin = w
        }
        total += block(cin, u.bottleneck)
        let decoders = u.sharedDecoder ? 1 : u.heads.count
        var decoder = 0
        var below = u.bottleneck
        for level in stride(from: u.depth - 1, through: 0, by: -1) {
            let w = u.widths[level]
            switch u.upsampling {
            case .transpose:
                decoder += below * w * 4 + w
                decoder += block(2 * w, w)
            case .bilinear:
                decoder += block(below + w, w)
            }
            below = w
        }
        total += decoders * decoder
        for head in u.heads { total += conv(u.widths[0], head.channels, 1) }
        return total
    }

    private static func transunetParameters(_ t: TransUNetArchitecture, tokens: Int) -> Int {
        var total = conv(t.inChannels, t.stemWidth, 7, bias: false) + norm(t.stemWidth, .batch)
        var cin = t.stemWidth
        for w in t.stageWidths {
            total += conv(cin, w, 1, bias: false) + conv(w, w, 3, bias: false) + conv(w, w, 1, bias: false)
            total += conv(cin, w, 1, bias: false) + 4 * norm(w, .batch)
            cin = w
        }
        let patchFeatures = t.patch * t.patch * cin
        let d = t.vitDim, inner = t.vitInnerDim
        total += patchFeatures * d + d + d + (tokens + 1) * d
        let block = 3 * inner * d + (inner * d + d) + 2 * d + (d * t.vitMLP + t.vitMLP) + (t.vitMLP * d + d) + 2 * d
        total += t.vitBlocks * block
        total += d * patchFeatures + patchFeatures
        total += conv(cin, t.bottleneck, 3) + norm(t.bottleneck, .batch)
        var decoder = 0
        var below = t.bottleneck
        let skips = Array(t.stageWidths.dropLast().reversed()) + [t.stemWidth]
        for (i, w) in t.decoderWidths.enumerated() {
            let skip = i < skips.count ? skips[i] : 0
            decoder += conv(below + skip, w, 3) + norm(w, .batch) + conv(w, w, 3) + norm(w, .batch)
            below = w
        }
        total += t.heads.count * decoder
        for head in t.heads { total += conv(t.decoderWidths.last ?? 0, head.channels, 1) }
        return total
    }
}
