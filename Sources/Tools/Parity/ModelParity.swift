import Architecture
import Foundation
import NN
import StageConfig
import Tensor

/// The whole-model cases: U-Net S1 (train step), multi-task U-Net and TransUNet
/// (eval forward), and one multi-scale KD step T1 -> S1 run through the trainer's
/// `DistillationObjective`.
enum ModelParity {
    /// The case's network, read by the runtime's own architecture decoder. The
    /// reference README fixes what its params leave implicit: the U-Nets use
    /// BatchNorm and transposed-convolution up-sampling (`groups` is unused then).
    static func architecture(_ arch: String, _ p: JSON, input: [Int]) throws -> ModelArchitecture {
        guard case .object(let params) = p else { throw ParityError.param(arch, "params", "an object") }
        var o: [String: JSON] = ["arch": .string(arch), "heads": params["heads"] ?? .null,
                                 "in_channels": params["in_channels"] ?? (input.count == 4 ? .int(input[1]) : .null)]
        if arch == "transunet" {
            for key in ["stem_width", "stage_widths", "bottleneck", "decoder_widths"] { o[key] = params[key] ?? .null }
            o["vit"] = .object(["patch": params["patch"] ?? .null, "blocks": params["vit_blocks"] ?? .null, "heads": params["vit_heads"] ?? .null,
                                "dim": params["vit_dim"] ?? .null, "mlp": params["vit_mlp"] ?? .null])
        } else {
            for key in ["widths", "bottleneck", "convs_per_block"] { o[key] = params[key] ?? .null }
            o["norm"] = .string("batch")
            o["up"] = .string("transpose")
            o["groups"] = .int(1)
        }
        return try ModelArchitecture(json: .object(o), at: "params")
    }

    /// A 3D U-Net case's network (`unet3d`): nnU-Net's layout, instance norm by default,
    /// transposed-convolution up-sampling, per-level kernels and pooling from the params.
    static func volumeArchitecture(_ c: ReferenceCase) throws -> ModelArchitecture {
        func lists(_ key: String) throws -> [[Int]] {
            guard let v = c.params[key] as? [[Int]], v.allSatisfy({ $0.count == 3 }) else { throw ParityError.param(c.name, key, "a list of [d, h, w] lists") }
            return v
        }
        guard let heads = c.params["heads"] as? [String: Int], let widths = c.params["widths"] as? [Int],
              let norm = NormKind(rawValue: (c.params["norm"] as? String) ?? "") else {
            throw ParityError.param(c.name, "heads/widths/norm", "a head map, a width list and a norm kind")
        }
        return .unet(UNetArchitecture(
            inChannels: try c.int("in_channels"), widths: widths, bottleneck: try c.int("bottleneck"), convsPerBlock: try c.int("convs_per_block"),
            norm: norm, groups: 1, upsampling: .transpose, heads: heads.sorted { $0.key < $1.key }.map { Head(name: $0.key, channels: $0.value) },
            sharedDecoder: true, volume: VolumeLevels(kernels: try lists("kernels"), pools: try lists("pools"))))
    }

    /// The networks a reference case builds (the KD step builds two).
    static func architectures(_ c: ReferenceCase) throws -> [ModelArchitecture] {
        guard ["unet", "unet3d", "multitask_unet", "transunet", "kd_step"].contains(c.op) else { return [] }
        if c.op == "unet3d" { return [try volumeArchitecture(c)] }
        let shape = try input(c)
        switch c.op {
        case "unet", "multitask_unet", "transunet": return [try architecture(c.op, c.paramsJSON, input: shape)]
        case "kd_step": return [try architecture("unet", c.paramsJSON["student"] ?? .null, input: shape),
                                try architecture("multitask_unet", c.paramsJSON["teacher"] ?? .null, input: shape)]
        default: return []
        }
    }

    /// A model with the case's parameters loaded under `prefix` (e.g. `param.student.`).
    static func model(_ c: ReferenceCase, _ arch: ModelArchitecture, prefix: String, input: [Int]) throws -> SegmentationModel {
        let m = ModelBuilder.build(arch, height: input[input.count - 2], width: input[input.count - 1], seed: 0)
        var tensors: [String: Tensor] = [:]
        for name in c.names(prefix: prefix) where !name.hasPrefix("adapter.") { tensors[name] = try c.tensor(prefix + name) }
        try m.store.load(tensors, source: "\(c.file.path) (\(prefix)*)")
        return m
    }

    static func input(_ c: ReferenceCase) throws -> [Int] {
        let rank = c.op == "unet3d" ? 5 : 4
        guard let input = c.params["input"] as? [Int], input.count == rank else {
            throw ParityError.param(c.name, "input", rank == 5 ? "[N, C, D, H, W]" : "[N, C, H, W]")
        }
        return input
    }

    static func evaluate(_ c: ReferenceCase, _ result: inout ParityResult) throws {
        let shape = try input(c)
        if c.op == "kd_step" { return try kdStep(c, input: shape, &result) }
        let arch = c.op == "unet3d" ? try volumeArchitecture(c) : try architecture(c.op, c.paramsJSON, input: shape)
        let m = try model(c, arch, prefix: "param.", input: shape)
        let x = Variable(try c.tensor("in.x"), requiresGrad: true)
        let training = (c.params["mode"] as? String) == "train"
        // The case's loss is `dice_loss(logits, in.label)` exactly as the `dice_loss` case (smooth 1).
        var objective: DistillationObjective?
        if c.has("out.loss") {
            guard (c.params["loss"] as? String) == "dice_loss" else { throw ParityError.param(c.name, "loss", "'dice_loss'") }
            var rng = RNG(seed: 0)
            objective = try DistillationObjective(supervised: [SupervisedTerm(head: "segmentation", weight: 1, loss: .dice(smooth: 1))],
                                                  distillation: nil, student: arch, teacher: nil, rng: &rng)
        }
        // With a loss, the trainer's step without an optimiser (the gradients are compared); without one, the forward pass.
        var loss: Variable?
        let out: ModelOutput
        if let objective {
            var rng = RNG(seed: 0)
            let outcome = try TrainingStep(model: m, objective: objective, optimizer: nil)
                .run(images: x, labels: try c.tensor("in.label"), rng: &rng, training: training)
            (out, loss) = (outcome.output, outcome.loss)
        } else {
            out = Tape.noGrad { m.forward(x, training: training) }
        }
        for name in c.names(prefix: "out.") {
            let got: Tensor?
            if name == "loss" { got = loss?.value }
            else if name.hasPrefix("logits.") { got = out.logits[String(name.dropFirst(7))]?.value }
            else if name.hasPrefix("tap.") { got = out.taps[String(name.dropFirst(4))]?.value }
            else { got = m.store.buffers[name] }
            c.compare("out.\(name)", got, into: &result)
        }
        for name in c.names(prefix: "grad.") {
            let v = name == "x" ? x : m.store.parameters[name]
            c.compare("grad.\(name)", v.map { $0.grad ?? Tensor(zeros: $0.shape) }, into: &result)
        }
    }

    /// The KD step: the case's terms as a spec would declare them, run by the trainer's objective.
    static func kdStep(_ c: ReferenceCase, input shape: [Int], _ result: inout ParityResult) throws {
        let p = c.paramsJSON
        let studentArch = try architecture("unet", p["student"] ?? .null, input: shape)
        let teacherArch = try architecture("multitask_unet", p["teacher"] ?? .null, input: shape)
        let student = try model(c, studentArch, prefix: "param.student.", input: shape)
        let teacher = try model(c, teacherArch, prefix: "param.teacher.", input: shape)
        guard (c.params["seg_loss"] as? String) == "dice_loss", (c.params["feature_loss"] as? String) == "infonce",
              (c.params["logit_loss"] as? String) == "binary_kl_logits" else {
            throw ParityError.param(c.name, "seg_loss/feature_loss/logit_loss", "dice_loss, infonce and binary_kl_logits")
        }
        func weight(_ k: String) throws -> Double {
            guard let w = p["weights"]?[k]?.number else { throw ParityError.param(c.name, "weights.\(k)", "a number") }
            return w
        }
        let tau = Double(try c.float("tau"))
        let trained = Adapter.conv1x1(side: .teacher, trainable: true, reinitEachStep: false)
        let terms = DistillationTerms(pairs: [
            TapPair(name: "ee", teacherTap: "pool.1", studentTap: "pool.1", adapter: trained, resample: .none,
                    loss: .infoNCE(temperature: tau), weight: try weight("ee")),
            TapPair(name: "bb", teacherTap: "bottleneck", studentTap: "bottleneck", adapter: trained, resample: .bilinear,
                    loss: .infoNCE(temperature: tau), weight: try weight("bb")),
            TapPair(name: "dd", teacherTap: "decoder.segmentation.3", studentTap: "decoder.1",
                    adapter: .conv1x1(side: .student, trainable: true, reinitEachStep: false), resample: .none,
                    loss: .infoNCE(temperature: tau), weight: try weight("dd")),
        ], logits: LogitTerm(head: "segmentation", temperature: Double(try c.float("T")), weight: try weight("logits"), loss: .binaryKL), supcon: nil)
        var rng = RNG(seed: 0)
        let objective = try DistillationObjective(supervised: [SupervisedTerm(head: "segmentation", weight: try weight("seg"), loss: .dice(smooth: 1))],
                                                  distillation: terms, student: studentArch, teacher: teacherArch, rng: &rng)
        var adapterTensors: [String: Tensor] = [:]
        for name in c.names(prefix: "param.adapter.") { adapterTensors["adapter." + name] = try c.tensor("param.adapter." + name) }
        try objective.loadAdapters(adapterTensors)

        let x = Variable(try c.tensor("in.x")), label = try c.tensor("in.label")
        let t = Tape.noGrad { teacher.forward(x, training: false) }
        var teacherMaps: [String: Variable] = [:]
        for name in objective.teacherTaps { teacherMaps[name] = t.taps[name] }
        let outcome = try TrainingStep(model: student, objective: objective, optimizer: nil)
            .run(images: x, labels: label, teacher: teacherMaps, rng: &rng)
        let (loss, parts) = (outcome.loss, outcome.terms)
        c.compare("out.student.logits.segmentation", outcome.output.logits["segmentation"]?.value, into: &result)
        c.compare("out.loss", loss.value, into: &result)
        // The objective names the supervised term by its kind; the reference calls it `seg`.
        for part in parts { c.compare("out.term.\(part.name == "dice" ? "seg" : part.name)", part.value.value, into: &result) }
        c.compare("out.teacher.logits.segmentation", t.logits["segmentation"]?.value, into: &result)
        for name in c.names(prefix: "out.teacher.tap.") { c.compare("out.teacher.tap.\(name)", t.taps[name]?.value, into: &result) }
        for name in c.names(prefix: "out.student.") where name.hasSuffix("running_mean") || name.hasSuffix("running_var") {
            c.compare("out.student.\(name)", student.store.buffers[name], into: &result)
        }
        for name in c.names(prefix: "grad.student.") {
            c.compare("grad.student.\(name)", student.store.parameters[name].map { $0.grad ?? Tensor(zeros: $0.shape) }, into: &result)
        }
        let trainedAdapters = Dictionary(objective.trainedParameters, uniquingKeysWith: { a, _ in a })
        for name in c.names(prefix: "grad.adapter.") {
            c.compare("grad.adapter.\(name)", trainedAdapters["adapter." + name].map { $0.grad ?? Tensor(zeros: $0.shape) }, into: &result)
        }
    }
}
