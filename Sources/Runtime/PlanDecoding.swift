import Architecture
import Medical
import NN
import Plan

/// Typed views of a plan stage's parameters: the plan is the runtime's only input.
enum PlanDecoding {
    static func architecture(_ j: JSON) throws -> ModelArchitecture {
        guard let arch = j["arch"]?.string, let inChannels = j["in_channels"]?.int else { throw RuntimeError.badPlan("model without arch or in_channels") }
        let heads = (j["heads"]?.object ?? ["segmentation": .int(1)]).compactMap { k, v in v.int.map { Head(name: k, channels: $0) } }
            .sorted { ($0.name == "segmentation" ? "" : $0.name) < ($1.name == "segmentation" ? "" : $1.name) }
        switch arch {
        case "unet", "multitask_unet":
            return .unet(UNetArchitecture(
                inChannels: inChannels, widths: j["widths"]?.array?.compactMap(\.int) ?? [], bottleneck: j["bottleneck"]?.int ?? 1,
                convsPerBlock: j["convs_per_block"]?.int ?? 2, norm: NormKind(rawValue: j["norm"]?.string ?? "batch") ?? .batch,
                groups: j["groups"]?.int ?? 8, upsampling: UpsamplingKind(rawValue: j["up"]?.string ?? "transpose") ?? .transpose,
                heads: heads, sharedDecoder: arch == "unet"))
        case "transunet":
            let vit = j["vit"] ?? .object([:])
            return .transunet(TransUNetArchitecture(
                inChannels: inChannels, stemWidth: j["stem_width"]?.int ?? 128, stageWidths: j["stage_widths"]?.array?.compactMap(\.int) ?? [],
                bottleneck: j["bottleneck"]?.int ?? 512, decoderWidths: j["decoder_widths"]?.array?.compactMap(\.int) ?? [],
                patch: vit["patch"]?.int ?? 16, vitBlocks: vit["blocks"]?.int ?? 8, vitHeads: vit["heads"]?.int ?? 12,
                vitDim: vit["dim"]?.int ?? 256, vitMLP: vit["mlp"]?.int ?? 2048, heads: heads))
        default:
            throw RuntimeError.badPlan("unknown arch '\(arch)'")
        }
    }

    static func optimizer(_ j: JSON) throws -> (OptimizerKind, Float) {
        guard let kind = j["kind"]?.string, let lr = j["lr"]?.number else { throw RuntimeError.badPlan("optimizer without kind or lr") }
        func f(_ k: String, _ d: Double) -> Float { Float(j[k]?.number ?? d) }
        let betas = j["betas"]?.array?.compactMap(\.number) ?? [0.9, 0.999]
        switch kind {
        case "sgd": return (.sgd(momentum: f("momentum", 0), dampening: 0, nesterov: j["nesterov"] == .bool(true), weightDecay: f("weight_decay", 0)), Float(lr))
        case "adam": return (.adam(beta1: Float(betas[0]), beta2: Float(betas[1]), eps: f("eps", 1e-8), weightDecay: f("weight_decay", 0)), Float(lr))
        case "adamw": return (.adamw(beta1: Float(betas[0]), beta2: Float(betas[1]), eps: f("eps", 1e-8), weightDecay: f("weight_decay", 0.01)), Float(lr))
        case "rmsprop": return (.rmsprop(alpha: f("alpha", 0.99), eps: f("eps", 1e-8), momentum: f("momentum", 0), centered: j["centered"] == .bool(true), weightDecay: f("weight_decay", 0)), Float(lr))
        case "adagrad": return (.adagrad(lrDecay: f("lr_decay", 0), eps: f("eps", 1e-10), initialAccumulator: f("initial_accumulator_value", 0), weightDecay: f("weight_decay", 0)), Float(lr))
        default: throw RuntimeError.badPlan("unknown optimizer '\(kind)'")
        }
    }

    static func schedule(_ j: JSON) -> (Schedule, Int) {
        let warmup = j["warmup_epochs"]?.int ?? 0
        switch j["kind"]?.string ?? "constant" {
        case "cosine": return (.cosine(minLR: Float(j["min_lr"]?.number ?? 0)), warmup)
        case "poly": return (.poly(power: Float(j["power"]?.number ?? 0.9)), warmup)
        case "step": return (.step(size: j["step_size"]?.int ?? 1, gamma: Float(j["gamma"]?.number ?? 0.1)), warmup)
        default: return (.constant, warmup)
        }
    }

    static func subsetChain(_ j: JSON?) -> [SubsetLevel] {
        (j?.array ?? []).map { SubsetLevel(fraction: $0["fraction"]?.number ?? 1, part: $0["part"]?.string ?? "train", stratify: $0["stratify"] == .bool(true)) }
    }

    static func preprocess(_ params: JSON) -> PreprocessSettings {
        let p = params["preprocess"] ?? .object([:])
        let size = p["size"]
        let (h, w) = size?.int.map { ($0, $0) } ?? (size?.array?.first?.int ?? 256, size?.array?.last?.int ?? 256)
        let window: PreprocessSettings.Window
        if p["window"]?.string == "clip255" {
            window = .clip255
        } else {
            let wv = p["window"]?.array?.compactMap(\.number) ?? [-160, 240]
            window = .hounsfield(wv.first ?? -160, wv.last ?? 240)
        }
        return PreprocessSettings(axis: p["slice_axis"]?.string ?? "axial", window: window, height: h, width: w,
                                  channels: p["channels"]?.int ?? 1, foreground: params["foreground"]?.array?.compactMap(\.int) ?? [1],
                                  keepEmpty: p["keep_empty"]?.number ?? 1)
    }

    static func split(_ params: JSON) -> SplitSettings {
        let s = params["split"] ?? .object([:])
        return SplitSettings(unit: s["unit"]?.string ?? "patient", test: s["test"]?.number ?? 0.2, val: s["val"]?.number ?? 0.1,
                             seed: UInt64(s["seed"]?.int ?? 42), folds: s["folds"]?.int, fold: s["fold"]?.int)
    }
}
