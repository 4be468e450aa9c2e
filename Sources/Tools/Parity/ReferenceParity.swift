import Architecture
import Foundation
import NN
import StageConfig
import Tensor

/// Runs reference cases (the format of ../shared/reference) against the runtime:
/// forward outputs, updated buffers, and gradients of L = sum(out * gout) or of the loss.
public enum ReferenceParity {
    /// The architectures of the model cases in `directory` (for the NN/Architecture contract).
    public static func architectures(in directory: String) throws -> [(name: String, architecture: ModelArchitecture)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".safetensors") }.sorted()
        return try files.flatMap { f -> [(name: String, architecture: ModelArchitecture)] in
            let c = try ReferenceCase(path: (directory as NSString).appendingPathComponent(f))
            return try ModelParity.architectures(c).map { (c.name, $0) }
        }
    }

    /// The ops whose cases run convolutions, which `distill parity` also checks with
    /// the direct convolution kernel forced wherever it applies.
    public static let convolutionOps: Set<String> = ["conv2d", "conv3d", "unet", "unet3d", "multitask_unet", "transunet", "kd_step"]

    /// Whether the case at `path` runs convolutions (false for a file that does not read as a case: `run` reports it).
    public static func usesConvolutions(path: String) -> Bool {
        (try? ReferenceCase(path: path)).map { convolutionOps.contains($0.op) } ?? false
    }

    /// Runs one case; `convolutions` forces an algorithm on every convolution that can take it.
    public static func run(path: String, convolutions: ConvAlgorithm?) -> ParityResult {
        ConvAlgorithm.$forced.withValue(convolutions) { run(path: path) }
    }

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
        if ["unet", "unet3d", "multitask_unet", "transunet", "kd_step"].contains(c.op) {
            try ModelParity.evaluate(c, &result)
            return
        }
        let run = Run(c)
        let tape = Tape()
        try tape.record { try forward(c.op, run) }
        let unsupported = c.unsupportedParams()
        if !unsupported.isEmpty { throw ParityError.unsupported(c.name, unsupported) }
        var seeds: [(Variable, Tensor)] = []
        for (name, v) in run.outputs {
            // A seed of another shape than its output would be read out of bounds by backward.
            if c.has("gout.\(name)") { seeds.append((v, try c.tensor("gout.\(name)", shape: v.shape.map { $0 }))) }
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
        try checkShapes(op, r)
        switch op {
        case "conv2d":
            r.outputs["y"] = F.conv2d(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"),
                                      stride: try c.int("stride"), padding: try c.int("padding"), dilation: try c.int("dilation"))
        case "conv_transpose2d":
            r.outputs["y"] = F.convTranspose2d(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"),
                                               stride: try c.int("stride"), padding: try c.int("padding"))
        case "conv3d":
            r.outputs["y"] = F.conv3d(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"), stride: try c.ints("stride", count: 3),
                                      padding: try c.ints("padding", count: 3), dilation: try c.ints("dilation", count: 3))
        case "conv_transpose3d":
            r.outputs["y"] = F.convTranspose3d(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"),
                                               stride: try c.ints("stride", count: 3), padding: try c.ints("padding", count: 3))
        case "max_pool3d", "avg_pool3d":
            let (x, kernel, stride) = (try r.input("x"), try c.ints("kernel_size", count: 3), try c.ints("stride", count: 3))
            r.outputs["y"] = op == "max_pool3d" ? F.maxPool3d(x, kernel: kernel, stride: stride) : F.avgPool3d(x, kernel: kernel, stride: stride)
        case "max_pool2d": r.outputs["y"] = F.maxPool2d(try r.input("x"), kernel: try c.int("kernel_size"), stride: try c.int("stride"))
        case "avg_pool2d": r.outputs["y"] = F.avgPool2d(try r.input("x"), kernel: try c.int("kernel_size"), stride: try c.int("stride"))
        case "batch_norm2d", "batch_norm3d":
            let mean = try c.tensor("param.running_mean").copy(), variance = try c.tensor("param.running_var").copy()
            let x = try r.input("x"), w = try r.param("weight"), b = try r.param("bias")
            if try c.bool("training") {
                r.outputs["y"] = F.batchNormTrain(x, w, b, runningMean: mean, runningVar: variance,
                                                  momentum: try c.float("momentum"), eps: try c.float("eps"))
            } else {
                r.outputs["y"] = F.batchNormEval(x, w, b, runningMean: mean, runningVar: variance, eps: try c.float("eps"))
            }
            r.buffers["running_mean"] = mean
            r.buffers["running_var"] = variance
        case "group_norm":
            r.outputs["y"] = F.groupNorm(try r.input("x"), groups: try c.int("groups"), try r.param("weight"), try r.param("bias"), eps: try c.float("eps"))
        case "instance_norm2d", "instance_norm3d":
            r.outputs["y"] = F.instanceNorm(try r.input("x"), try r.param("weight"), try r.param("bias"), eps: try c.float("eps"))
        case "layer_norm":
            r.outputs["y"] = F.layerNorm(try r.input("x"), try r.param("weight"), try r.param("bias"), eps: try c.float("eps"))
        case "relu": r.outputs["y"] = F.relu(try r.input("x"))
        case "leaky_relu": r.outputs["y"] = F.activation(try r.input("x"), .leakyRelu(try c.float("negative_slope")))
        case "gelu": r.outputs["y"] = F.gelu(try r.input("x"))
        case "sigmoid": r.outputs["y"] = F.sigmoid(try r.input("x"))
        case "tanh": r.outputs["y"] = F.activation(try r.input("x"), .tanh)
        case "softmax": r.outputs["y"] = F.softmax(try r.input("x"), axis: try c.int("dim"))
        case "log_softmax": r.outputs["y"] = F.softmax(try r.input("x"), axis: try c.int("dim"), log: true)
        case "upsample_bilinear2d", "upsample_nearest2d":
            let size = (c.params["size"] as? [Int]) ?? []
            guard size.count == 2 else { throw SafetensorsError.badHeader(c.file.path, detail: "params.size must be [h, w]") }
            let x = try r.input("x")
            r.outputs["y"] = op == "upsample_nearest2d" ? F.resizeNearest(x, height: size[0], width: size[1])
                : F.resizeBilinear(x, height: size[0], width: size[1], alignCorners: try c.bool("align_corners"))
        case "linear": r.outputs["y"] = F.linear(try r.input("x"), try r.requiredParam("weight"), try r.param("bias"))
        case "bmm": r.outputs["y"] = F.bmm(try r.input("a"), try r.input("b"))
        case "cat": r.outputs["y"] = F.concat([try r.input("x0"), try r.input("x1")], axis: try c.int("dim"))
        case "multi_head_self_attention":
            let x = try r.input("x")
            func proj(_ w: String, _ b: String) throws -> Variable {
                F.linear(x, try r.requiredParam(w), try r.param(b), weightIsInputMajor: true)
            }
            let (o, attn) = F.multiHeadAttention(q: try proj("wq", "bq"), k: try proj("wk", "bk"), v: try proj("wv", "bv"), heads: try c.int("heads"))
            r.outputs["y"] = F.linear(o, try r.requiredParam("wo"), try r.param("bo"), weightIsInputMajor: true)
            let (n, l) = (x.shape[0], x.shape[1])
            r.outputs["attn"] = F.reshape(attn, [n, try c.int("heads"), l, l])
        default:
            try LossParity.forward(op, r)
        }
    }

    /// The shapes an op's kernels assume, checked before they run: a weight whose channels do
    /// not fit its input is a failure naming the case and the key, never a trap.
    static func checkShapes(_ op: String, _ r: Run) throws {
        let c = r.c
        func shape(_ key: String) -> [Int]? { (try? c.tensor(key))?.shape }
        func fail(_ key: String, _ expected: String) throws -> Never {
            throw ParityError.shape(c.name, key, expected, shape(key) ?? [])
        }
        switch op {
        case "conv2d", "conv3d", "conv_transpose2d", "conv_transpose3d":
            let rank = op.hasSuffix("3d") ? 5 : 4
            guard let x = shape("in.x"), x.count == rank else { try fail("in.x", "\(rank) axes") }
            guard let w = shape("param.weight"), w.count == rank else { try fail("param.weight", "\(rank) axes") }
            let inputs = op.hasPrefix("conv_transpose") ? w[0] : w[1]
            guard inputs == x[1] else { try fail("param.weight", "\(x[1]) input channels (the input's)") }
            let outputs = op.hasPrefix("conv_transpose") ? w[1] : w[0]
            if let b = shape("param.bias"), b != [outputs] { try fail("param.bias", "[\(outputs)]") }
        case "linear":
            guard let x = shape("in.x"), let w = shape("param.weight"), w.count == 2, x.last == w[1] else {
                try fail("param.weight", "[outputs, \(shape("in.x")?.last ?? 0)]")
            }
        case "bmm":
            guard let a = shape("in.a"), let b = shape("in.b"), a.count == 3, b.count == 3, a[0] == b[0], a[2] == b[1] else {
                try fail("in.b", "[\(shape("in.a")?.first ?? 0), \(shape("in.a")?.last ?? 0), _]")
            }
        case "batch_norm2d", "batch_norm3d", "instance_norm2d", "instance_norm3d", "group_norm":
            guard let x = shape("in.x"), x.count >= 3 else { try fail("in.x", "[batch, channels, ...]") }
            for key in ["param.weight", "param.bias", "param.running_mean", "param.running_var"] {
                if let t = shape(key), t != [x[1]] { try fail(key, "[\(x[1])]") }
            }
        default:
            break
        }
    }

    /// An optimiser case runs the stage optimiser built from the case's hyperparameters,
    /// read as a spec's `optimizer` block (every field required).
    static func optimizer(_ c: ReferenceCase, _ result: inout ParityResult) throws {
        let w = Variable(try c.tensor("param.w"), requiresGrad: true)
        guard case .object(var fields) = c.paramsJSON else { throw ParityError.param(c.name, "params", "an object") }
        fields["steps"] = nil
        fields["kind"] = .string(c.op)
        let opt = Optimizer(try OptimizerSettings(json: .object(fields), at: "params"), parameters: [w])
        for k in 1...(try c.int("steps")) {
            w.grad = try c.tensor("grad.step\(k).w")
            opt.update()
            c.compare("out.step\(k).w", w.value, into: &result)
            for (stateName, t) in opt.state(of: w) { c.compare("out.step\(k).\(stateName).w", t, into: &result) }
        }
    }
}
