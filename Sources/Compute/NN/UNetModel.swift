import Architecture
import Tensor

/// U-Net and multi-task U-Net: conv blocks (conv3x3 + norm + ReLU, `convsPerBlock`
/// times), 2x2 max-pool down, transposed-conv (or bilinear) up, skip concatenation
/// `[up-sampled, skip]`, a 1x1 head per output. Over volumes (`u.volume`), each
/// level's kernel and pooling come from the architecture, up-sampling is the
/// transposed convolution mirroring the pooling, and the head is 1x1x1.
final class UNetModel: SegmentationModel {
    let u: UNetArchitecture
    let store = ParameterStore()
    var architecture: ModelArchitecture { .unet(u) }

    struct Block {
        var convs: [ConvLayer] = []
        var norms: [NormLayer] = []

        func callAsFunction(_ x: Variable, training: Bool) -> Variable {
            var y = x
            for (conv, norm) in zip(convs, norms) { y = norm(conv(y), training: training, relu: true) }
            return y
        }
    }

    struct Decoder {
        var prefix: String
        var ups: [UpLayer?] = []
        var blocks: [Block] = []
    }

    var encoder: [Block] = []
    var bottleneck = Block()
    var decoders: [Decoder] = []
    var heads: [(Head, ConvLayer)] = []

    init(_ u: UNetArchitecture, rng: inout RNG) {
        // Over volumes, up-sampling is the transposed convolution mirroring each level's pooling.
        precondition(u.volume == nil || u.upsampling == .transpose, "a 3D U-Net up-samples by transposed convolution")
        self.u = u
        var cin = u.inChannels
        for (i, w) in u.widths.enumerated() {
            encoder.append(block("encoder.\(i)", cin: cin, cout: w, level: i, rng: &rng))
            cin = w
        }
        bottleneck = block("bottleneck", cin: cin, cout: u.bottleneck, level: u.depth, rng: &rng)
        let prefixes = u.sharedDecoder ? ["decoder."] : u.heads.map { "decoder.\($0.name)." }
        for prefix in prefixes {
            var d = Decoder(prefix: prefix)
            var below = u.bottleneck
            for i in 0..<u.depth {
                let w = u.widths[u.depth - 1 - i]
                let level = u.depth - 1 - i
                switch u.upsampling {
                case .transpose:
                    d.ups.append(UpLayer(store, "\(prefix)\(i).up", cin: below, cout: w, kernel: u.volume?.pools[level] ?? [2, 2], rng: &rng))
                    d.blocks.append(block("\(prefix)\(i)", cin: 2 * w, cout: w, level: level, rng: &rng))
                case .bilinear:
                    d.ups.append(nil)
                    d.blocks.append(block("\(prefix)\(i)", cin: below + w, cout: w, level: level, rng: &rng))
                }
                below = w
            }
            decoders.append(d)
        }
        for head in u.heads {
            let name = "head.\(head.name)", (cin, cout) = (u.widths[0], head.channels)
            heads.append((head, u.volume == nil ? ConvLayer(store, name, cin: cin, cout: cout, k: 1, rng: &rng)
                                                : ConvLayer(store, name, cin: cin, cout: cout, volumeKernel: [1, 1, 1], rng: &rng)))
        }
    }

    /// A block at `level` (0: full resolution; depth: the bottleneck).
    private func block(_ name: String, cin: Int, cout: Int, level: Int, rng: inout RNG) -> Block {
        var b = Block()
        for j in 0..<u.convsPerBlock {
            let (convName, cin) = ("\(name).conv\(j)", j == 0 ? cin : cout)
            b.convs.append(u.volume.map { ConvLayer(store, convName, cin: cin, cout: cout, volumeKernel: $0.kernels[level], rng: &rng) }
                           ?? ConvLayer(store, convName, cin: cin, cout: cout, k: 3, padding: 1, rng: &rng))
            b.norms.append(NormLayer(store, "\(name).norm\(j)", channels: cout, kind: u.norm, groups: u.groups))
        }
        return b
    }

    /// `[up-sampled, skip]`: `UpLayer.joined` never keeps the up-sampled map on its own.
    private func upAndJoin(_ z: Variable, _ up: UpLayer?, _ skip: Variable) -> Variable {
        guard let up else { return F.concat([F.resizeBilinear(z, height: skip.shape[2], width: skip.shape[3]), skip]) }
        return up.joined(z, skip)
    }

    func forward(_ x: Variable, training: Bool, taps keep: Set<String>?) -> ModelOutput {
        var out = ModelOutput(keep: keep)
        out.record("input", x)
        var skips: [Variable] = []
        var y = x
        for (i, b) in encoder.enumerated() {
            y = b(y, training: training)
            out.record("encoder.\(i)", y)
            skips.append(y)
            if let pool = u.volume?.pools[i] { y = F.maxPool3d(y, kernel: pool, stride: pool) } else { y = F.maxPool2d(y) }
            out.record("pool.\(i)", y)
        }
        let bott = bottleneck(y, training: training)
        out.record("bottleneck", bott)
        var finals: [String: Variable] = [:]
        for d in decoders {
            var z = bott
            for i in 0..<u.depth {
                z = d.blocks[i](upAndJoin(z, d.ups[i], skips[u.depth - 1 - i]), training: training)
                out.record("\(d.prefix)\(i)", z)
            }
            finals[d.prefix] = z
        }
        for (head, conv) in heads {
            let features = u.sharedDecoder ? finals["decoder."] : finals["decoder.\(head.name)."]
            if let features { out.logits[head.name] = conv(features) }
            out.record("logits.\(head.name)", out.logits[head.name])
        }
        return out
    }
}
