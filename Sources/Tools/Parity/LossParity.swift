import Foundation
import NN
import StageConfig
import Tensor

/// The loss cases of the reference, each run through the same entry point of
/// `DistillationObjective` that a training step uses for that term, with the
/// term built as a spec would build it.
enum LossParity {
    static func forward(_ op: String, _ r: ReferenceParity.Run) throws {
        let c = r.c
        func labels() throws -> Tensor { try c.tensor("in.target") }
        /// Class indices as the float label map a step hands to the objective.
        func classes() throws -> Tensor {
            let t = try c.file.integers("in.target")
            return Tensor(shape: t.shape, values: t.values.map(Float.init))
        }
        func supervised(_ loss: SupervisedLoss, _ target: Tensor) throws {
            let logits = try r.input("logits")
            r.outputs["loss"] = DistillationObjective.supervised(loss, logits, labels: target, images: logits)
        }
        func feature(_ loss: FeatureLoss, student: String = "student", teacher: String = "teacher") throws {
            r.outputs["loss"] = DistillationObjective.comparison(loss, student: try r.input(student), teacher: try r.input(teacher))
        }
        func logits(_ loss: LogitLoss) throws {
            r.outputs["loss"] = DistillationObjective.logits(loss, student: try r.input("student"), teacher: try r.input("teacher"),
                                                            temperature: try c.float("temperature"))
        }
        switch op {
        case "dice_loss": try supervised(.dice(smooth: Double(try c.float("smooth"))), try labels())
        case "bce_with_logits": try supervised(.bce, try labels())
        case "dice_bce": try supervised(.diceBCE(smooth: Double(try c.float("smooth"))), try labels())
        case "cross_entropy": try supervised(.crossEntropy, try classes())
        case "dice_softmax": try supervised(.dice(smooth: Double(try c.float("smooth"))), try classes())
        case "dice_ce": try supervised(.diceCE(smooth: Double(try c.float("smooth"))), try classes())
        case "focal_loss": try supervised(.focal(gamma: Double(try c.float("gamma"))), try classes())
        case "mse": try feature(.mse, student: "pred", teacher: "target")
        case "l1": try feature(.l1, student: "pred", teacher: "target")
        case "cosine_feature_loss": try feature(.cosine)
        case "kl_logits": try logits(.kl(acceptZeroGradient: false))
        case "binary_kl_logits": try logits(.binaryKL)
        case "infonce": try feature(.infoNCE(temperature: Double(try c.float("temperature"))))
        case "attention_transfer": try feature(.attention(p: Double(try c.float("p"))))
        case "channel_wise_distillation": try feature(.channelWise(temperature: Double(try c.float("tau"))))
        case "supcon":
            r.outputs["loss"] = Loss.supCon(try r.input("z"), labels: try c.file.integers("in.labels").values, temperature: try c.float("temperature"))
        default:
            throw ParityError.unknownOp(op)
        }
    }
}

public enum ParityError: Error, CustomStringConvertible {
    case unknownOp(String)
    case param(String, String, String)
    /// A tensor of the case whose shape does not fit the op: (case, key, what was expected, its shape).
    case shape(String, String, String, [Int])
    /// Hyperparameters the runner does not implement, set to something other than their neutral value.
    case unsupported(String, [String])

    public var description: String {
        switch self {
        case .unknownOp(let op): return "op '\(op)' is not one the runtime implements"
        case .param(let c, let key, let expected): return "case '\(c)': params.\(key) is missing or not \(expected)"
        case .shape(let c, let key, let expected, let found): return "case '\(c)': \(key) has shape \(found), expected \(expected)"
        case .unsupported(let c, let keys): return "case '\(c)': unsupported parameter\(keys.count == 1 ? "" : "s") \(keys.joined(separator: ", ")) (the runner does not implement \(keys.count == 1 ? "it" : "them"))"
        }
    }
}
