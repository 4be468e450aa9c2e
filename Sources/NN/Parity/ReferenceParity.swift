import Architecture
import Foundation
import Tensor

/// Runs reference cases (the format of ../shared/reference) against the runtime:
/// forward outputs, updated buffers, and gradients of L = sum(out * gout) or of the loss.
public enum ReferenceParity {
    public static func run(path: String) -> ParityResult {
        let c: ReferenceCase
        do { c = try ReferenceCase(path: path) } catch {
            return ParityResult(name: ((path as NSString).lastPathComponent as NSString).deletingPathExtension, op: "?", error: "\(error)")
        }
        var result = ParityResult(name: c.name, op: c.op)
        do {
            try evaluate(c, &result)
        } catch {
            result.error = "\(error)"
        }
        return result
    }

    /// Leaf variables by reference name (`x`, `weight`, ...), outputs by name (`y`, `loss`, ...).
    final class Run {
        var leaves: [String: Variable] = [:]
        var outputs: [String: Variable] = [:]
        var buffers: [String: Tensor] = [:]
        let c: ReferenceCase
        init(_ c: ReferenceCase) { self.c = c }

        func input(_ name: String) throws -> Variable {
            if let v = leaves[name] { return v }
            let v = Variable(try c.tensor("in.\(name)"), requiresGrad: true)
            leaves[name] = v
            return v
        }

        func param(_ name: String) throws -> Variable? {
            guard c.has("param.\(name)") else { return nil }
            if let v = leaves[name] { return v }
            let v = Variable(try c.tensor("param.\(name)"), requiresGrad: true)
            leaves[name] = v
            return v
        }

        func requiredParam(_ name: String) throws -> Variable {
            guard let v = try param(name) else { throw SafetensorsError.missing(c.file.path, tensor: "param.\(name)") }
            return v
        }
    }

    static func evaluate(_ c: ReferenceCase, _ result: inout ParityResult) throws {
        if ["sgd", "adam", "adamw", "rmsprop", "adagrad"].contains(c.op) {
            try optimizer(c, &result)
            return
        }
        if ["unet", "multitask_unet", "transunet", "kd_step"].contains(c.op) {
            try ModelParity.evaluate(c, &result)
            return
        }
        let run = Run(c)
        let tape = Tape()
        try tape.record { try forward(c.op, run) }
        var seeds: [(Variable, Tensor)] = []
        for (name, v) in run.outputs {
            if c.has("gout.\(name)") { seeds.append((v, try c.tensor("gout.\(name)"))) }
        }
        if let loss = run.outputs["loss"], seeds.isEmpty { seeds = [(loss, Tensor.scalar(1))] }
        tape.backward(seeds)
        for name in c.names(prefix: "out.") {
            c.compare("out.\(name)", run.outputs[name]?.value ?? run.buffers[name], into: &result)
        }
        for name in c.names(prefix: "grad.") {
            let leaf = run.leaves[name]
            c.compare("grad.\(name)", leaf.map { $0.grad ?? Tensor(zeros: $0.shape) }, into: &result)
        }
    }

    // swiftlint:disable:next cyclomatic_complexity
    static func forward(_ op: String, _ r: Run) throws {
        let c = r.c
        switch op {
        case "conv2d":
            r.outputs["y"] = F.conv2d(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"),
                                      stride: c.int("stride", 1), padding: c.int("padding", 0), dilation: c.int("dilation", 1))
        case "conv_transpose2d":
            r.outputs["y"] = F.convTranspose2d(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"),
                                               stride: c.int("stride", 2), padding: c.int("padding", 0))
        case "max_pool2d": r.outputs["y"] = F.maxPool2d(try r.input("x"), kernel: c.int("kernel_size", 2), stride: c.int("stride", 2))
        case "avg_pool2d": r.outputs["y"] = F.avgPool2d(try r.input("x"), kernel: c.int("kernel_size", 2), stride: c.int("stride", 2))
        case "batch_norm2d":
            let mean = try c.tensor("param.running_mean").copy(), variance = try c.tensor("param.running_var").copy()
            let x = try r.input("x"), w = try r.param("weight"), b = try r.param("bias")
            if c.bool("training", true) {
                r.outputs["y"] = F.batchNormTrain(x, w, b, runningMean: mean, runningVar: variance,
                                                  momentum: c.float("momentum", 0.1), eps: c.float("eps", 1e-5))
            } else {
                r.outputs["y"] = F.batchNormEval(x, w, b, runningMean: mean, runningVar: variance, eps: c.float("eps", 1e-5))
            }
            r.buffers["running_mean"] = mean
            r.buffers["running_var"] = variance
        case "group_norm":
            r.outputs["y"] = F.groupNorm(try r.input("x"), groups: c.int("groups", 1), try r.param("weight"), try r.param("bias"), eps: c.float("eps", 1e-5))
        case "instance_norm2d":
            r.outputs["y"] = F.instanceNorm(try r.input("x"), try r.param("weight"), try r.param("bias"), eps: c.float("eps", 1e-5))
        case "layer_norm":
            r.outputs["y"] = F.layerNorm(try r.input("x"), try r.param("weight"), try r.param("bias"), eps: c.float("eps", 1e-5))
        case "relu": r.outputs["y"] = F.relu(try r.input("x"))
        case "leaky_relu": r.outputs["y"] = F.activation(try r.input("x"), .leakyRelu(c.float("negative_slope", 0.01)))
        case "gelu": r.outputs["y"] = F.gelu(try r.input("x"))
        case "sigmoid": r.outputs["y"] = F.sigmoid(try r.input("x"))
        case "tanh": r.outputs["y"] = F.activation(try r.input("x"), .tanh)
        case "softmax": r.outputs["y"] = F.softmax(try r.input("x"), axis: c.int("dim", 1))
        case "log_softmax": r.outputs["y"] = F.softmax(try r.input("x"), axis: c.int("dim", 1), log: true)
        case "upsample_bilinear2d", "upsample_nearest2d":
            let size = (c.params["size"] as? [Int]) ?? []
            guard size.count == 2 else { throw SafetensorsError.badHeader(c.file.path, detail: "params.size must be [h, w]") }
            let x = try r.input("x")
            r.outputs["y"] = op == "upsample_nearest2d" ? F.resizeNearest(x, height: size[0], width: size[1])
                : F.resizeBilinear(x, height: size[0], width: size[1], alignCorners: c.bool("align_corners", false))
        case "linear": r.outputs["y"] = F.linear(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"))
        case "bmm": r.outputs["y"] = F.bmm(try r.input("a"), try r.input("b"))
        case "cat": r.outputs["y"] = F.concat([try r.input("x0"), try r.input("x1")], axis: c.int("dim", 1))
        case "multi_head_self_attention":
            let x = try r.input("x")
            func proj(_ w: String, _ b: String) throws -> Variable {
                F.linear(x, try r.requiredParam(w), try r.param(b), weightIsInputMajor: true)
            }
            let (o, attn) = F.multiHeadAttention(q: try proj("wq", "bq"), k: try proj("wk", "bk"), v: try proj("wv", "bv"), heads: c.int("heads", 1))
            r.outputs["y"] = F.linear(o, try r.requiredParam("wo"), try r.param("bo"), weightIsInputMajor: true)
            let (n, l) = (x.shape[0], x.shape[1])
            r.outputs["attn"] = F.reshape(attn, [n, c.int("heads", 1), l, l])
        default:
            try LossParity.forward(op, r)
        }
    }

    static func optimizer(_ c: ReferenceCase, _ result: inout ParityResult) throws {
        let w = Variable(try c.tensor("param.w"), requiresGrad: true)
        let betas = (c.params["betas"] as? [Double]) ?? [0.9, 0.999]
        let kind: OptimizerKind
        switch c.op {
        case "sgd": kind = .sgd(momentum: c.float("momentum", 0), dampening: c.float("dampening", 0), nesterov: c.bool("nesterov", false), weightDecay: c.float("weight_decay", 0))
        case "adam": kind = .adam(beta1: Float(betas[0]), beta2: Float(betas[1]), eps: c.float("eps", 1e-8), weightDecay: c.float("weight_decay", 0))
        case "adamw": kind = .adamw(beta1: Float(betas[0]), beta2: Float(betas[1]), eps: c.float("eps", 1e-8), weightDecay: c.float("weight_decay", 0.01))
        case "rmsprop": kind = .rmsprop(alpha: c.float("alpha", 0.99), eps: c.float("eps", 1e-8), momentum: c.float("momentum", 0), centered: c.bool("centered", false), weightDecay: c.float("weight_decay", 0))
        default: kind = .adagrad(lrDecay: c.float("lr_decay", 0), eps: c.float("eps", 1e-10), initialAccumulator: c.float("initial_accumulator_value", 0), weightDecay: c.float("weight_decay", 0))
        }
        let opt = Optimizer(kind, lr: c.float("lr", 0.01), parameters: [w])
        for k in 1...c.int("steps", 3) {
            w.grad = try c.tensor("grad.step\(k).w")
            opt.update()
            c.compare("out.step\(k).w", w.value, into: &result)
            for (stateName, t) in opt.state(of: w) { c.compare("out.step\(k).\(stateName).w", t, into: &result) }
        }
    }
}
