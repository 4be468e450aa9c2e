import Architecture

/// The canonical encoding of a network description: the spec's keys under
/// `models.<name>`, every one explicit, `in_channels` resolved.

extension NormKind: ConfigChoice {}
extension UpsamplingKind: ConfigChoice {}

extension ModelArchitecture: ConfigCodable {
    public var json: JSON {
        switch self {
        case .unet(let u):
            var o: [String: JSON] = [
                "arch": .string(archName), "in_channels": .int(u.inChannels), "widths": .array(u.widths.map(JSON.int)),
                "bottleneck": .int(u.bottleneck), "convs_per_block": .int(u.convsPerBlock), "norm": u.norm.json,
                "groups": .int(u.groups), "up": u.upsampling.json, "heads": Self.headsJSON(u.heads),
            ]
            // Written only for 3D: a 2D U-Net's canonical form, and so its hashes, stay as they were.
            if let v = u.volume {
                func sides(_ list: [[Int]]) -> JSON { .array(list.map { .array($0.map(JSON.int)) }) }
                o["dims"] = .int(3)
                o["kernels"] = sides(v.kernels)
                o["pools"] = sides(v.pools)
            }
            return .object(o)
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
                let levels = try widths("widths")
                func sides(_ key: String) throws -> [[Int]]? {
                    try r.ifPresent(key) { r, k in try r.list(k) { j, p in try ConfigValue.list(j, at: p) { j, p in try ConfigValue.int(j, at: p) } } }
                }
                let dims = try r.ifPresent("dims") { r, k in try r.int(k) } ?? 2
                let (kernels, pools) = (try sides("kernels"), try sides("pools"))
                let upsampling: UpsamplingKind = try r.choice("up")
                var volume: VolumeLevels?
                if dims == 3 {
                    let isotropic = VolumeLevels.isotropic(depth: levels.count)
                    let v = VolumeLevels(kernels: kernels ?? isotropic.kernels, pools: pools ?? isotropic.pools)
                    if let problem = v.problem(depth: levels.count) { throw ConfigError(field: path, problem: .inconsistent(problem), value: json) }
                    if upsampling == .bilinear { throw ConfigError(field: r.child("up"), problem: .inconsistent("a 3D U-Net up-samples with 'transpose'"), value: json) }
                    volume = v
                } else if kernels != nil || pools != nil {
                    throw ConfigError(field: r.child(kernels != nil ? "kernels" : "pools"), problem: .inconsistent("kernels and pools apply to 3D U-Nets ('dims: 3')"), value: json)
                }
                return .unet(UNetArchitecture(
                    inChannels: inChannels, widths: levels, bottleneck: try r.int("bottleneck"),
                    convsPerBlock: try r.int("convs_per_block"), norm: try r.choice("norm"), groups: try r.int("groups"),
                    upsampling: upsampling, heads: heads, sharedDecoder: arch == .unet, volume: volume))
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
