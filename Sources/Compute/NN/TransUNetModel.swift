import Architecture
import Foundation
import Tensor

/// The TransUNet-style hybrid of ../shared/reference/README.md (`transunet_small`):
/// 7x7 stride-2 stem, residual bottleneck stages (1x1, 3x3 stride 2 dilation 3,
/// 1x1, strided shortcut), a post-norm ViT on strided patches of the deepest
/// map, a conv bottleneck, and per-head decoders of bilinear x2 (align corners)
/// + concat [skip, up] + two conv3x3 blocks.
final class TransUNetModel: SegmentationModel {
    let t: TransUNetArchitecture
    /// The input size the position embedding was made for.
    let height: Int, width: Int
    let store = ParameterStore()
    var architecture: ModelArchitecture { .transunet(t) }

    struct Stage { var conv: [ConvLayer]; var norm: [NormLayer]; var shortcut: ConvLayer; var shortcutNorm: NormLayer }
    struct ViTBlock { var qkv: LinearLayer; var out: LinearLayer; var norm0: (Variable, Variable); var fc0: LinearLayer; var fc1: LinearLayer; var norm1: (Variable, Variable) }
    struct DecoderBlock { var conv: [ConvLayer]; var norm: [NormLayer] }

    var stem: ConvLayer
    var stemNorm: NormLayer
    var stages: [Stage] = []
    var patchEmbed: LinearLayer
    var clsToken: Variable
    var posEmbed: Variable
    var blocks: [ViTBlock] = []
    var unpatch: LinearLayer
    var bottleneckConv: ConvLayer
    var bottleneckNorm: NormLayer
    var decoders: [(String, [DecoderBlock])] = []
    var heads: [(Head, ConvLayer)] = []

    init(_ t: TransUNetArchitecture, height: Int, width: Int, rng: inout RNG) {
        self.t = t
        self.height = height
        self.width = width
        stem = ConvLayer(store, "stem.conv0", cin: t.inChannels, cout: t.stemWidth, k: 7, stride: 2, padding: 3, bias: false, rng: &rng)
        stemNorm = NormLayer(store, "stem.norm0", channels: t.stemWidth, kind: .batch)
        var cin = t.stemWidth
        for (i, w) in t.stageWidths.enumerated() {
            let p = "encoder.\(i)"
            let c0 = ConvLayer(store, "\(p).conv0", cin: cin, cout: w, k: 1, bias: false, rng: &rng)
            let n0 = NormLayer(store, "\(p).norm0", channels: w, kind: .batch)
            let c1 = ConvLayer(store, "\(p).conv1", cin: w, cout: w, k: 3, stride: 2, padding: 3, dilation: 3, bias: false, rng: &rng)
            let n1 = NormLayer(store, "\(p).norm1", channels: w, kind: .batch)
            let c2 = ConvLayer(store, "\(p).conv2", cin: w, cout: w, k: 1, bias: false, rng: &rng)
            let n2 = NormLayer(store, "\(p).norm2", channels: w, kind: .batch)
            let sc = ConvLayer(store, "\(p).shortcut.conv", cin: cin, cout: w, k: 1, stride: 2, bias: false, rng: &rng)
            let sn = NormLayer(store, "\(p).shortcut.norm", channels: w, kind: .batch)
            stages.append(Stage(conv: [c0, c1, c2], norm: [n0, n1, n2], shortcut: sc, shortcutNorm: sn))
            cin = w
        }
        let features = t.patch * t.patch * cin, d = t.vitDim, inner = t.vitInnerDim
        let tokens = t.tokens(height: height, width: width)
        patchEmbed = LinearLayer(store, "vit.patch_embed", din: features, dout: d, rng: &rng)
        clsToken = store.add("vit.cls_token", rng.normalTensor([1, 1, d], std: 0.02))
        posEmbed = store.add("vit.pos_embed", rng.normalTensor([tokens + 1, d], std: 0.02))
        for b in 0..<t.vitBlocks {
            let p = "vit.block.\(b)"
            let qkv = LinearLayer(store, "\(p).attn.qkv", din: d, dout: 3 * inner, bias: false, rng: &rng)
            let out = LinearLayer(store, "\(p).attn.out", din: inner, dout: d, rng: &rng)
            let n0 = (store.add("\(p).norm0.weight", Tensor(shape: [d], repeating: 1)), store.add("\(p).norm0.bias", Tensor(zeros: [d])))
            let fc0 = LinearLayer(store, "\(p).mlp.fc0", din: d, dout: t.vitMLP, rng: &rng)
            let fc1 = LinearLayer(store, "\(p).mlp.fc1", din: t.vitMLP, dout: d, rng: &rng)
            let n1 = (store.add("\(p).norm1.weight", Tensor(shape: [d], repeating: 1)), store.add("\(p).norm1.bias", Tensor(zeros: [d])))
            blocks.append(ViTBlock(qkv: qkv, out: out, norm0: n0, fc0: fc0, fc1: fc1, norm1: n1))
        }
        unpatch = LinearLayer(store, "vit.unpatch", din: d, dout: features, rng: &rng)
        bottleneckConv = ConvLayer(store, "bottleneck.conv0", cin: cin, cout: t.bottleneck, k: 3, padding: 1, rng: &rng)
        bottleneckNorm = NormLayer(store, "bottleneck.norm0", channels: t.bottleneck, kind: .batch)
        let skips = Array(t.stageWidths.dropLast().reversed()) + [t.stemWidth]
        for head in t.heads {
            var below = t.bottleneck
            var ds: [DecoderBlock] = []
            for (i, w) in t.decoderWidths.enumerated() {
                let skip = i < skips.count ? skips[i] : 0
                let p = "decoder.\(head.name).\(i)"
                ds.append(DecoderBlock(conv: [ConvLayer(store, "\(p).conv0", cin: below + skip, cout: w, k: 3, padding: 1, rng: &rng),
                                              ConvLayer(store, "\(p).conv1", cin: w, cout: w, k: 3, padding: 1, rng: &rng)],
                                       norm: [NormLayer(store, "\(p).norm0", channels: w, kind: .batch),
                                              NormLayer(store, "\(p).norm1", channels: w, kind: .batch)]))
                below = w
            }
            decoders.append((head.name, ds))
        }
        for head in t.heads {
            heads.append((head, ConvLayer(store, "head.\(head.name)", cin: t.decoderWidths.last ?? 1, cout: head.channels, k: 1, rng: &rng)))
        }
    }

    /// Gather map of the einops pattern 'b c (p X) (p Y) -> b (X Y) (p p c)' and its inverse.
    static func patchMaps(n: Int, c: Int, h: Int, w: Int, p: Int) -> (patchify: [Int32], unpatchify: [Int32]) {
        let X = h / p, Y = w / p, T = X * Y, features = p * p * c
        var forward = [Int32](repeating: 0, count: n * T * features)
        var inverse = [Int32](repeating: 0, count: n * c * h * w)
        for b in 0..<n { for x in 0..<X { for y in 0..<Y { for px in 0..<p { for py in 0..<p { for ch in 0..<c {
            let token = (b * T + x * Y + y) * features + (px * p + py) * c + ch
            let pixel = ((b * c + ch) * h + px * X + x) * w + py * Y + y
            forward[token] = Int32(pixel)
            inverse[pixel] = Int32(token)
        } } } } } }
        return (forward, inverse)
    }

    func forward(_ x: Variable, training: Bool, taps keep: Set<String>?) -> ModelOutput {
        var out = ModelOutput(keep: keep)
        out.record("input", x)
        let s = stemNorm(stem(x), training: training, relu: true)
        out.record("stem", s)
        var y = s
        var features: [Variable] = []
        for (i, st) in stages.enumerated() {
            var m = st.norm[0](st.conv[0](y), training: training, relu: true)
            m = st.norm[1](st.conv[1](m), training: training, relu: true)
            m = st.norm[2](st.conv[2](m), training: training)
            let short = st.shortcutNorm(st.shortcut(y), training: training)
            y = F.relu(F.add(m, short))
            out.record("encoder.\(i)", y)
            features.append(y)
        }
        let (n, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        let p = t.patch, T = (h / p) * (w / p)
        let maps = Self.patchMaps(n: n, c: c, h: h, w: w, p: p)
        var tokens = patchEmbed(F.gather(y, map: maps.patchify, shape: [n, T, p * p * c]))
        tokens = F.addBroadcast(F.prependToken(tokens, clsToken), posEmbed)
        for b in blocks {
            let qkv = b.qkv(tokens)
            let inner = t.vitInnerDim
            let (attn, _) = F.multiHeadAttention(q: F.narrow(qkv, axis: 2, start: 0, length: inner),
                                                 k: F.narrow(qkv, axis: 2, start: inner, length: inner),
                                                 v: F.narrow(qkv, axis: 2, start: 2 * inner, length: inner), heads: t.vitHeads)
            let y1 = F.layerNorm(F.add(tokens, b.out(attn)), b.norm0.0, b.norm0.1)
            tokens = F.layerNorm(F.add(y1, b.fc1(F.gelu(b.fc0(y1)))), b.norm1.0, b.norm1.1)
        }
        let vit = F.narrow(tokens, axis: 1, start: 1, length: T)
        out.record("vit", vit)
        let map = F.gather(unpatch(vit), map: maps.unpatchify, shape: [n, c, h, w])
        let bott = bottleneckNorm(bottleneckConv(map), training: training, relu: true)
        out.record("bottleneck", bott)
        let skips = Array(features.dropLast().reversed()) + [s]
        for (name, blocksOfHead) in decoders {
            var z = bott
            for (i, blk) in blocksOfHead.enumerated() {
                let up = F.resizeBilinear(z, height: z.shape[2] * 2, width: z.shape[3] * 2, alignCorners: true)
                z = i < skips.count ? F.concat([skips[i], up]) : up
                for (conv, norm) in zip(blk.conv, blk.norm) { z = norm(conv(z), training: training, relu: true) }
                out.record("decoder.\(name).\(i)", z)
            }
            if let head = heads.first(where: { $0.0.name == name }) {
                out.logits[name] = head.1(z)
                out.record("logits.\(name)", out.logits[name])
            }
        }
        return out
    }
}
