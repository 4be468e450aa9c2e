import Architecture

/// The canonical encoding of a network description: the spec's keys under
/// `models.<name>`, every one explicit, `in_channels` resolved.

extension NormKind: ConfigChoice {}
extension UpsamplingKind: ConfigChoice {}

extension ModelArchitecture: ConfigCodable {
    public var json: JSON {
        switch self {
        case .unet(let u):
            return .object([
                "arch": .string(archName), "in_channels": .int(u.inChannels), "widths": .array(u.widths.map(JSON.int)),
                "bottleneck": .int(u.bottleneck), "convs_per_block": .int(u.convsPerBlock), "norm": u.norm.json,
                "groups": .int(u.groups), "up": u.upsampling.json, "heads": Self.headsJSON(u.heads),
            ])
        case .transunet(let t):
            return .object([
                "arch": .string(archName), "in_channels": .int(t.inChannels), "stem_width": .int(t.stemWidth),
                "stage_widths": .array(t.stageWidths.map(JSON.int)), "bottleneck": .int(t.bottleneck),
                "decoder_widths": .array(t.decoderWidths.map(JSON.int)),
                "vit": .object(["patch": .int(t.patch), "blocks": .int(t.vitBlocks), "heads": .int(t.vitHeads),
                                "dim": .int(t.vitDim), "mlp": .int(t.vitMLP)]),
                "heads": Self.headsJSON(t.heads),
            ])
        }
    }

    public enum Arch: String, CaseIterable, Sendable { case unet, multitaskUNet = "multitask_unet", transunet }
    public static let archNames = Arch.allCases.map(\.rawValue)

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let arch = try r.kind("arch", as: Arch.self)
            let inChannels = try r.int("in_channels")
            let heads = try Self.heads(&r)
            func widths(_ key: String) throws -> [Int] {
                try r.list(key) { j, p in try ConfigValue.int(j, at: p) }
            }
            switch arch {
            case .transunet:
                let (patch, blocks, vitHeads, dim, mlp) = try ConfigReader.read(try r.value("vit"), at: r.child("vit")) { v in
                    (try v.int("patch"), try v.int("blocks"), try v.int("heads"), try v.int("dim"), try v.int("mlp"))
                }
                return .transunet(TransUNetArchitecture(
                    inChannels: inChannels, stemWidth: try r.int("stem_width"), stageWidths: try widths("stage_widths"),
                    bottleneck: try r.int("bottleneck"), decoderWidths: try widths("decoder_widths"),
                    patch: patch, vitBlocks: blocks, vitHeads: vitHeads, vitDim: dim, vitMLP: mlp, heads: heads))
            case .unet, .multitaskUNet:
                return .unet(UNetArchitecture(
                    inChannels: inChannels, widths: try widths("widths"), bottleneck: try r.int("bottleneck"),
                    convsPerBlock: try r.int("convs_per_block"), norm: try r.choice("norm"), groups: try r.int("groups"),
                    upsampling: try r.choice("up"), heads: heads, sharedDecoder: arch == .unet))
            }
        }
    }

    static func headsJSON(_ heads: [Head]) -> JSON {
        .object(Dictionary(heads.map { ($0.name, JSON.int($0.channels)) }, uniquingKeysWith: { a, _ in a }))
    }

    /// Heads in their canonical order: `segmentation` first, then by name. The order
    /// fixes the order in which head weights are drawn, so it is part of the network.
    static func heads(_ r: inout ConfigReader) throws -> [Head] {
        let heads = try r.dictionary("heads") { name, j, p in Head(name: name, channels: try ConfigValue.int(j, at: p)) }
        return heads.sorted { ($0.name == "segmentation" ? "" : $0.name) < ($1.name == "segmentation" ? "" : $1.name) }
    }
}
