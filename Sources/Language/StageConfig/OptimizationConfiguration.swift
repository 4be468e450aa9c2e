/// How a stage updates its weights: the optimiser with PyTorch's semantics, the
/// learning-rate schedule, and which epoch's checkpoint it keeps.

/// The optimiser and its learning rate.
public struct OptimizerSettings: ConfigCodable {
    public var lr: Double
    public var algorithm: OptimizerAlgorithm

    public init(lr: Double, algorithm: OptimizerAlgorithm) {
        (self.lr, self.algorithm) = (lr, algorithm)
    }

    public var json: JSON {
        var o = algorithm.fields
        o["lr"] = .number(lr)
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            OptimizerSettings(lr: try r.double("lr"), algorithm: try OptimizerAlgorithm(&r))
        }
    }
}

/// torch.optim's update rules (foreach off), each with every hyperparameter explicit.
public enum OptimizerAlgorithm: Hashable, Sendable {
    case sgd(momentum: Double, dampening: Double, nesterov: Bool, weightDecay: Double)
    case adam(beta1: Double, beta2: Double, eps: Double, weightDecay: Double)
    /// Adam with decoupled weight decay.
    case adamw(beta1: Double, beta2: Double, eps: Double, weightDecay: Double)
    case rmsprop(alpha: Double, eps: Double, momentum: Double, centered: Bool, weightDecay: Double)
    case adagrad(lrDecay: Double, eps: Double, initialAccumulator: Double, weightDecay: Double)

    public enum Kind: String, CaseIterable, Sendable { case sgd, adam, adamw, rmsprop, adagrad }
    public static let kinds = Kind.allCases.map(\.rawValue)

    public var kind: String {
        switch self {
        case .sgd: return Kind.sgd.rawValue
        case .adam: return Kind.adam.rawValue
        case .adamw: return Kind.adamw.rawValue
        case .rmsprop: return Kind.rmsprop.rawValue
        case .adagrad: return Kind.adagrad.rawValue
        }
    }

    /// Optimiser state tensors kept per parameter (for the memory estimate).
    public var stateSlots: Int {
        switch self {
        case .sgd(let momentum, _, _, _): return momentum > 0 ? 1 : 0
        case .adam, .adamw: return 2
        case .rmsprop(_, _, let momentum, let centered, _): return 1 + (momentum > 0 ? 1 : 0) + (centered ? 1 : 0)
        case .adagrad: return 1
        }
    }

    var fields: [String: JSON] {
        var o: [String: JSON] = ["kind": .string(kind)]
        switch self {
        case .sgd(let momentum, let dampening, let nesterov, let wd):
            o["momentum"] = .number(momentum)
            o["dampening"] = .number(dampening)
            o["nesterov"] = .bool(nesterov)
            o["weight_decay"] = .number(wd)
        case .adam(let b1, let b2, let eps, let wd), .adamw(let b1, let b2, let eps, let wd):
            o["betas"] = .array([.number(b1), .number(b2)])
            o["eps"] = .number(eps)
            o["weight_decay"] = .number(wd)
        case .rmsprop(let alpha, let eps, let momentum, let centered, let wd):
            o["alpha"] = .number(alpha)
            o["eps"] = .number(eps)
            o["momentum"] = .number(momentum)
            o["centered"] = .bool(centered)
            o["weight_decay"] = .number(wd)
        case .adagrad(let lrDecay, let eps, let initial, let wd):
            o["lr_decay"] = .number(lrDecay)
            o["eps"] = .number(eps)
            o["initial_accumulator_value"] = .number(initial)
            o["weight_decay"] = .number(wd)
        }
        return o
    }

    init(_ r: inout ConfigReader) throws {
        let kind = try r.kind(as: Kind.self)
        func betas() throws -> (Double, Double) {
            let b = try r.list("betas") { j, p in try ConfigValue.double(j, at: p) }
            guard b.count == 2 else { throw ConfigError(field: r.child("betas"), problem: .wrongType(expected: "two numbers [beta1, beta2]"), value: .array(b.map(JSON.number))) }
            return (b[0], b[1])
        }
        switch kind {
        case .sgd:
            self = .sgd(momentum: try r.double("momentum"), dampening: try r.double("dampening"),
                        nesterov: try r.bool("nesterov"), weightDecay: try r.double("weight_decay"))
        case .adam, .adamw:
            let (b1, b2) = try betas()
            let eps = try r.double("eps"), wd = try r.double("weight_decay")
            self = kind == .adam ? .adam(beta1: b1, beta2: b2, eps: eps, weightDecay: wd) : .adamw(beta1: b1, beta2: b2, eps: eps, weightDecay: wd)
        case .rmsprop:
            self = .rmsprop(alpha: try r.double("alpha"), eps: try r.double("eps"),
                            momentum: try r.double("momentum"), centered: try r.bool("centered"), weightDecay: try r.double("weight_decay"))
        case .adagrad:
            self = .adagrad(lrDecay: try r.double("lr_decay"), eps: try r.double("eps"),
                            initialAccumulator: try r.double("initial_accumulator_value"), weightDecay: try r.double("weight_decay"))
        }
    }
}

/// How the learning rate changes over epochs (applied at the start of each epoch).
public struct LearningRateSchedule: ConfigCodable {
    public enum Curve: Hashable, Sendable {
        case constant
        /// Cosine annealing to `minLR`.
        case cosine(minLR: Double)
        /// `(1 - epoch/epochs)^power` (nnU-Net's choice).
        case poly(power: Double)
        /// Multiply by `gamma` every `size` epochs.
        case step(size: Int, gamma: Double)
    }

    public enum Kind: String, CaseIterable, Sendable { case constant, cosine, poly, step }
    public static let kinds = Kind.allCases.map(\.rawValue)

    public var warmupEpochs: Int
    public var curve: Curve

    public init(warmupEpochs: Int, curve: Curve) {
        (self.warmupEpochs, self.curve) = (warmupEpochs, curve)
    }

    public var json: JSON {
        var o: [String: JSON] = ["warmup_epochs": .int(warmupEpochs)]
        switch curve {
        case .constant: o["kind"] = .string("constant")
        case .cosine(let minLR): o["kind"] = .string("cosine"); o["min_lr"] = .number(minLR)
        case .poly(let power): o["kind"] = .string("poly"); o["power"] = .number(power)
        case .step(let size, let gamma): o["kind"] = .string("step"); o["step_size"] = .int(size); o["gamma"] = .number(gamma)
        }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let curve: Curve
            switch try r.kind(as: Kind.self) {
            case .constant: curve = .constant
            case .cosine: curve = .cosine(minLR: try r.double("min_lr"))
            case .poly: curve = .poly(power: try r.double("power"))
            case .step: curve = .step(size: try r.int("step_size"), gamma: try r.double("gamma"))
            }
            return LearningRateSchedule(warmupEpochs: try r.int("warmup_epochs"), curve: curve)
        }
    }
}

/// What is compared between epochs to choose the kept checkpoint.
public enum SelectionMetric: String, ConfigChoice {
    case dice, iou, loss
}

/// Where the selection metric is measured: `last` keeps the final epoch; `test` is the study's leak.
public enum SelectionSplit: String, ConfigChoice {
    case val, test, last
}

/// Which epoch's checkpoint a stage keeps.
public struct CheckpointSelection: ConfigCodable {
    public var metric: SelectionMetric
    public var split: SelectionSplit

    public init(metric: SelectionMetric, split: SelectionSplit) {
        (self.metric, self.split) = (metric, split)
    }

    public var json: JSON { .object(["metric": metric.json, "split": split.json]) }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            CheckpointSelection(metric: try r.choice("metric"), split: try r.choice("split"))
        }
    }
}
