import Tensor

/// The loss cases of the reference, by op name.
enum LossParity {
    static func forward(_ op: String, _ r: ReferenceParity.Run) throws {
        let c = r.c
        func target() throws -> Tensor { try c.tensor("in.target") }
        func constant(_ name: String) throws -> Variable { try r.input(name) }
        switch op {
        case "dice_loss": r.outputs["loss"] = Loss.dice(try r.input("logits"), try target(), smooth: Double(c.float("smooth", 1)))
        case "bce_with_logits": r.outputs["loss"] = Loss.bceWithLogits(try r.input("logits"), try target())
        case "dice_bce": r.outputs["loss"] = Loss.diceBCE(try r.input("logits"), try target(), smooth: Double(c.float("smooth", 1)))
        case "cross_entropy", "focal_loss":
            let labels = try c.file.integers("in.target").values
            r.outputs["loss"] = Loss.crossEntropy(try r.input("logits"), labels, gamma: op == "focal_loss" ? Double(c.float("gamma", 2)) : 0)
        case "mse": r.outputs["loss"] = Loss.mse(try r.input("pred"), try constant("target"))
        case "l1": r.outputs["loss"] = Loss.l1(try r.input("pred"), try constant("target"))
        case "cosine_feature_loss": r.outputs["loss"] = Loss.cosine(try r.input("student"), try r.input("teacher"))
        case "kl_logits": r.outputs["loss"] = Loss.klLogits(try r.input("student"), try r.input("teacher"), temperature: c.float("temperature", 4))
        case "binary_kl_logits": r.outputs["loss"] = Loss.binaryKL(try r.input("student"), try r.input("teacher"), temperature: c.float("temperature", 4))
        case "infonce": r.outputs["loss"] = Loss.infoNCE(try r.input("student"), try r.input("teacher"), temperature: c.float("temperature", 0.1))
        case "attention_transfer": r.outputs["loss"] = Loss.attentionTransfer(try r.input("student"), try r.input("teacher"), p: c.float("p", 2))
        case "channel_wise_distillation": r.outputs["loss"] = Loss.channelWise(try r.input("student"), try r.input("teacher"), tau: c.float("tau", 1))
        case "supcon":
            r.outputs["loss"] = Loss.supCon(try r.input("z"), labels: try c.file.integers("in.labels").values, temperature: c.float("temperature", 0.1))
        default:
            throw ParityError.unknownOp(op)
        }
    }
}

public enum ParityError: Error, CustomStringConvertible {
    case unknownOp(String)
    public var description: String {
        switch self {
        case .unknownOp(let op): return "op '\(op)' is not one the runtime implements"
        }
    }
}
