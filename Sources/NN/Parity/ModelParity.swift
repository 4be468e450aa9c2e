import Architecture
import Foundation
import Tensor

/// The whole-model cases: U-Net S1 (train step), multi-task U-Net and TransUNet
/// (eval forward), and one multi-scale KD step T1 -> S1.
enum ModelParity {
    static func heads(_ any: Any?) -> [Head] {
        ((any as? [String: Any]) ?? [:]).compactMap { k, v in (v as? Int).map { Head(name: k, channels: $0) } }
            .sorted { $0.name == "segmentation" ? true : ($1.name == "segmentation" ? false : $0.name < $1.name) }
    }

    static func architecture(_ op: String, _ p: [String: Any]) -> ModelArchitecture {
        let inChannels = (p["in_channels"] as? Int) ?? 3
        if op == "transunet" {
            return .transunet(TransUNetArchitecture(
                inChannels: inChannels, stemWidth: (p["stem_width"] as? Int) ?? 8, stageWidths: (p["stage_widths"] as? [Int]) ?? [],
                bottleneck: (p["bottleneck"] as? Int) ?? 32, decoderWidths: (p["decoder_widths"] as? [Int]) ?? [],
                patch: (p["patch"] as? Int) ?? 1, vitBlocks: (p["vit_blocks"] as? Int) ?? 1, vitHeads: (p["vit_heads"] as? Int) ?? 1,
                vitDim: (p["vit_dim"] as? Int) ?? 8, vitMLP: (p["vit_mlp"] as? Int) ?? 8, heads: heads(p["heads"])))
        }
        let hs = heads(p["heads"])
        return .unet(UNetArchitecture(inChannels: inChannels, widths: (p["widths"] as? [Int]) ?? [], bottleneck: (p["bottleneck"] as? Int) ?? 1,
                                      convsPerBlock: (p["convs_per_block"] as? Int) ?? 1, heads: hs,
                                      sharedDecoder: op == "unet" || (op == "kd_step" && hs.count == 1)))
    }

    /// A model with the case's parameters loaded under `prefix` (e.g. `param.student.`).
    static func model(_ c: ReferenceCase, op: String, params: [String: Any], prefix: String, inputSize: Int) throws -> SegmentationModel {
        let m = ModelBuilder.build(architecture(op, params), inputSize: inputSize, seed: 0)
        var tensors: [String: Tensor] = [:]
        for name in c.names(prefix: prefix) where !name.hasPrefix("adapter.") { tensors[name] = try c.tensor(prefix + name) }
        try m.store.load(tensors, source: "\(c.file.path) (\(prefix)*)")
        return m
    }

    static func evaluate(_ c: ReferenceCase, _ result: inout ParityResult) throws {
        let input = (c.params["input"] as? [Int]) ?? [2, 3, 64, 64]
        let size = input.count == 4 ? input[2] : 64
        if c.op == "kd_step" { return try kdStep(c, size: size, &result) }
        let m = try model(c, op: c.op, params: c.params, prefix: "param.", inputSize: size)
        let x = Variable(try c.tensor("in.x"), requiresGrad: true)
        let training = (c.params["mode"] as? String) == "train"
        let tape = Tape()
        let (out, loss) = tape.record { () -> (ModelOutput, Variable?) in
            let o = m.forward(x, training: training)
            guard c.has("out.loss"), let logits = o.logits["segmentation"], let label = try? c.tensor("in.label") else { return (o, nil) }
            return (o, Loss.dice(logits, label))
        }
        if let loss { tape.backward(loss) }
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

    static func kdStep(_ c: ReferenceCase, size: Int, _ result: inout ParityResult) throws {
        let sp = (c.params["student"] as? [String: Any]) ?? [:], tp = (c.params["teacher"] as? [String: Any]) ?? [:]
        let student = try model(c, op: "unet", params: sp, prefix: "param.student.", inputSize: size)
        let teacher = try model(c, op: "multitask_unet", params: tp, prefix: "param.teacher.", inputSize: size)
        var adapters: [String: (Variable, Variable)] = [:]
        for a in ["ee", "bb", "dd"] {
            adapters[a] = (Variable(try c.tensor("param.adapter.\(a).weight"), requiresGrad: true),
                           Variable(try c.tensor("param.adapter.\(a).bias"), requiresGrad: true))
        }
        func adapt(_ a: String, _ x: Variable) -> Variable {
            guard let (w, b) = adapters[a] else { return x }
            return F.conv2d(x, w, b)
        }
        let x = Variable(try c.tensor("in.x")), label = try c.tensor("in.label")
        let weights = (c.params["weights"] as? [String: Double]) ?? [:]
        let tau = c.float("tau", 0.4), T = c.float("T", 4)
        let t = Tape.noGrad { teacher.forward(x, training: false) }
        let tape = Tape()
        var terms: [String: Variable] = [:]
        let loss = tape.record { () -> Variable in
            let s = student.forward(x, training: true)
            guard let sLogits = s.logits["segmentation"], let tLogits = t.logits["segmentation"],
                  let sPool = s.taps["pool.1"], let tPool = t.taps["pool.1"], let sB = s.taps["bottleneck"], let tB = t.taps["bottleneck"],
                  let sD = s.taps["decoder.1"], let tD = t.taps["decoder.segmentation.3"] else { return Variable(.scalar(.nan)) }
            terms["seg"] = Loss.dice(sLogits, label)
            terms["ee"] = Loss.infoNCE(sPool, adapt("ee", tPool), temperature: tau)
            terms["bb"] = Loss.infoNCE(sB, adapt("bb", F.resizeBilinear(tB, height: sB.shape[2], width: sB.shape[3])), temperature: tau)
            terms["dd"] = Loss.infoNCE(adapt("dd", sD), tD, temperature: tau)
            terms["logits"] = Loss.binaryKL(sLogits, tLogits, temperature: T)
            result.comparisons.reserveCapacity(64)
            c.compare("out.student.logits.segmentation", sLogits.value, into: &result)
            return F.weightedSum(["seg", "bb", "logits", "ee", "dd"].compactMap { k in terms[k].map { ($0, Float(weights[k] ?? 0)) } })
        }
        tape.backward(loss)
        c.compare("out.loss", loss.value, into: &result)
        for (k, v) in terms { c.compare("out.term.\(k)", v.value, into: &result) }
        c.compare("out.teacher.logits.segmentation", t.logits["segmentation"]?.value, into: &result)
        for name in c.names(prefix: "out.teacher.tap.") { c.compare("out.teacher.tap.\(name)", t.taps[name]?.value, into: &result) }
        for name in c.names(prefix: "out.student.") where name.hasSuffix("running_mean") || name.hasSuffix("running_var") {
            c.compare("out.student.\(name)", student.store.buffers[name], into: &result)
        }
        for name in c.names(prefix: "grad.student.") {
            c.compare("grad.student.\(name)", student.store.parameters[name].map { $0.grad ?? Tensor(zeros: $0.shape) }, into: &result)
        }
        for a in ["ee", "bb", "dd"] {
            c.compare("grad.adapter.\(a).weight", adapters[a]?.0.grad, into: &result)
            c.compare("grad.adapter.\(a).bias", adapters[a]?.1.grad, into: &result)
        }
    }
}
