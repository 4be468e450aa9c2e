/// The terms of a training objective: supervised losses on heads and, for a
/// distilled student, feature, logit and pixel-contrast terms against a teacher.

/// A supervised loss on one head, with its weight in the total.
public struct SupervisedTerm: ConfigCodable {
    public var head: String
    public var weight: Double
    public var loss: SupervisedLoss

    public init(head: String, weight: Double, loss: SupervisedLoss) {
        (self.head, self.weight, self.loss) = (head, weight, loss)
    }

    public var json: JSON {
        var o = loss.fields
        o["head"] = .string(head)
        o["weight"] = .number(weight)
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            SupervisedTerm(head: try r.string("head"), weight: try r.double("weight"), loss: try SupervisedLoss(&r))
        }
    }
}

/// What reconstruction head compares its output with.
public enum ReconstructionTarget: String, ConfigChoice {
    case input, label
}

public enum SupervisedLoss: Hashable, Sendable {
    /// Soft Dice pooled over the batch: on sigmoid probabilities for a 1-channel head (the
    /// study's form); on softmax probabilities, averaged over foreground classes, for a wider one.
    case dice(smooth: Double)
    /// Binary cross-entropy on logits, mean over pixels.
    case bce
    /// BCE + Dice (the study's teacher and S2 loss).
    case diceBCE(smooth: Double)
    /// Multi-class cross-entropy over pixels.
    case crossEntropy
    /// Cross-entropy + softmax Dice over foreground classes (nnU-Net's loss).
    case diceCE(smooth: Double)
    /// Multi-class focal loss.
    case focal(gamma: Double)
    /// Mean squared error, for reconstruction heads.
    case mse(target: ReconstructionTarget)

    /// The kinds as the spec writes them.
    public enum Kind: String, CaseIterable, Sendable { case dice, bce, diceBCE = "dice_bce", crossEntropy = "ce", diceCE = "dice_ce", focal, mse }
    public static let kinds = Kind.allCases.map(\.rawValue)

    public var kind: String {
        switch self {
        case .dice: return Kind.dice.rawValue
        case .bce: return Kind.bce.rawValue
        case .diceBCE: return Kind.diceBCE.rawValue
        case .crossEntropy: return Kind.crossEntropy.rawValue
        case .diceCE: return Kind.diceCE.rawValue
        case .focal: return Kind.focal.rawValue
        case .mse: return Kind.mse.rawValue
        }
    }

    /// `kind` and the kind's own fields.
    var fields: [String: JSON] {
        var o: [String: JSON] = ["kind": .string(kind)]
        switch self {
        case .dice(let s), .diceBCE(let s), .diceCE(let s): o["smooth"] = .number(s)
        case .focal(let g): o["gamma"] = .number(g)
        case .mse(let t): o["target"] = t.json
        case .bce, .crossEntropy: break
        }
        return o
    }

    init(_ r: inout ConfigReader) throws {
        switch try r.kind(as: Kind.self) {
        case .dice: self = .dice(smooth: try r.double("smooth"))
        case .bce: self = .bce
        case .diceBCE: self = .diceBCE(smooth: try r.double("smooth"))
        case .crossEntropy: self = .crossEntropy
        case .diceCE: self = .diceCE(smooth: try r.double("smooth"))
        case .focal: self = .focal(gamma: try r.double("gamma"))
        case .mse: self = .mse(target: try r.choice("target"))
        }
    }
}

/// How a tap pair's two maps are compared.
public enum FeatureLoss: ConfigCodable {
    case mse
    case l1
    /// 1 - cosine similarity of each image's flattened maps.
    case cosine
    /// Instance contrast: the same image's teacher map is the positive, the batch's others the negatives.
    case infoNCE(temperature: Double)
    /// Attention transfer between spatial attention maps.
    case attention(p: Double)
    /// Channel-wise distillation: KL between per-channel spatial softmax maps.
    case channelWise(temperature: Double)

    public enum Kind: String, CaseIterable, Sendable { case mse, l1, cosine, infoNCE = "infonce", attention, channelWise = "cwd" }
    public static let kinds = Kind.allCases.map(\.rawValue)

    public var kind: String {
        switch self {
        case .mse: return Kind.mse.rawValue
        case .l1: return Kind.l1.rawValue
        case .cosine: return Kind.cosine.rawValue
        case .infoNCE: return Kind.infoNCE.rawValue
        case .attention: return Kind.attention.rawValue
        case .channelWise: return Kind.channelWise.rawValue
        }
    }

    /// Whether the loss compares the maps channel by channel (so channel counts must meet).
    public var comparesChannels: Bool {
        if case .attention = self { return false }
        return true
    }

    public var json: JSON {
        var o: [String: JSON] = ["kind": .string(kind)]
        switch self {
        case .infoNCE(let t), .channelWise(let t): o["temperature"] = .number(t)
        case .attention(let p): o["p"] = .number(p)
        case .mse, .l1, .cosine: break
        }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            switch try r.kind(as: Kind.self) {
            case .mse: return .mse
            case .l1: return .l1
            case .cosine: return .cosine
            case .infoNCE: return .infoNCE(temperature: try r.double("temperature"))
            case .attention: return .attention(p: try r.double("p"))
            case .channelWise: return .channelWise(temperature: try r.double("temperature"))
            }
        }
    }
}

/// Which map an adapter projects.
public enum AdapterSide: String, ConfigChoice {
    case teacher, student
}

/// A projection that makes channel counts meet at a tap pair.
public enum Adapter: ConfigCodable {
    /// No projection: the channel counts must already be equal.
    case identity
    /// A 1x1 convolution with bias on one side. `reinitEachStep` re-creates it with random
    /// weights every step and never trains it: the study's defect, reproduced on purpose.
    case conv1x1(side: AdapterSide, trainable: Bool, reinitEachStep: Bool)

    public enum Kind: String, CaseIterable, Sendable { case conv1x1, identity }
    public static let kinds = Kind.allCases.map(\.rawValue)

    public var kind: String {
        switch self {
        case .identity: return Kind.identity.rawValue
        case .conv1x1: return Kind.conv1x1.rawValue
        }
    }

    public var json: JSON {
        switch self {
        case .identity: return .object(["kind": .string(kind)])
        case .conv1x1(let side, let trainable, let reinit):
            return .object(["kind": .string(kind), "side": side.json, "trainable": .bool(trainable), "reinit_each_step": .bool(reinit)])
        }
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            switch try r.kind(as: Kind.self) {
            case .identity: return .identity
            case .conv1x1: return .conv1x1(side: try r.choice("side"), trainable: try r.bool("trainable"), reinitEachStep: try r.bool("reinit_each_step"))
            }
        }
    }

    /// Whether the optimiser trains it: a persistent, trainable projection.
    public var isTrained: Bool {
        if case .conv1x1(_, let trainable, let reinit) = self { return trainable && !reinit }
        return false
    }
}

/// How the teacher map is brought to the student map's size.
public enum Resampling: String, ConfigChoice {
    case none, bilinear, nearest, avgpool
}

/// A feature term between a teacher tap and a student tap.
public struct TapPair: ConfigCodable {
    /// The term's name (`ee`, `bb`, `dd`); its key in the stage's `distill.taps`.
    public var name: String
    public var teacherTap: String
    public var studentTap: String
    public var adapter: Adapter?
    public var resample: Resampling
    public var loss: FeatureLoss
    public var weight: Double

    public init(name: String, teacherTap: String, studentTap: String, adapter: Adapter?, resample: Resampling, loss: FeatureLoss, weight: Double) {
        (self.name, self.teacherTap, self.studentTap, self.adapter, self.resample, self.loss, self.weight) =
            (name, teacherTap, studentTap, adapter, resample, loss, weight)
    }

    /// The encoding without the name (the name is the key it is stored under).
    public var json: JSON {
        .object(["teacher": .string(teacherTap), "student": .string(studentTap), "adapter": adapter?.json ?? .null,
                 "resample": resample.json, "loss": loss.json, "weight": .number(weight)])
    }

    /// Reads a pair stored under the last component of `path`.
    public init(json: JSON, at path: String) throws {
        let name = path.split(separator: ".").last.map(String.init) ?? path
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            TapPair(name: name, teacherTap: try r.string("teacher"), studentTap: try r.string("student"),
                    adapter: try r.optional("adapter") { r, k in try r.decode(k, as: Adapter.self) },
                    resample: try r.choice("resample"), loss: try r.decode("loss"), weight: try r.double("weight"))
        }
    }
}

/// How output logits are distilled.
public enum LogitLoss: Hashable, Sendable {
    /// Bernoulli KL on sigmoid outputs, for 1-channel heads.
    case binaryKL
    /// Softmax KL over channels. On a 1-channel head it is identically zero; it runs
    /// there only with `acceptZeroGradient` (the study's defect, reproduced on purpose).
    case kl(acceptZeroGradient: Bool)

    public enum Kind: String, CaseIterable, Sendable { case binaryKL = "binary_kl", kl }
    public static let kinds = Kind.allCases.map(\.rawValue)

    public var kind: String {
        switch self {
        case .binaryKL: return Kind.binaryKL.rawValue
        case .kl: return Kind.kl.rawValue
        }
    }
}

/// Distillation of one head's logits, scaled by T^2.
public struct LogitTerm: ConfigCodable {
    public var head: String
    public var temperature: Double
    public var weight: Double
    public var loss: LogitLoss

    public init(head: String, temperature: Double, weight: Double, loss: LogitLoss) {
        (self.head, self.temperature, self.weight, self.loss) = (head, temperature, weight, loss)
    }

    public var json: JSON {
        var o: [String: JSON] = ["kind": .string(loss.kind), "head": .string(head), "temperature": .number(temperature), "weight": .number(weight)]
        if case .kl(let accept) = loss { o["accept_zero_gradient"] = .bool(accept) }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let loss: LogitLoss
            switch try r.kind(as: LogitLoss.Kind.self) {
            case .kl: loss = .kl(acceptZeroGradient: try r.bool("accept_zero_gradient"))
            case .binaryKL: loss = .binaryKL
            }
            return LogitTerm(head: try r.string("head"), temperature: try r.double("temperature"),
                             weight: try r.double("weight"), loss: loss)
        }
    }
}

/// Supervised pixel contrast on one student tap (labels from the down-sampled mask).
public struct SupConTerm: ConfigCodable {
    /// Pixels sampled per class per image.
    public static let samplesRange = 1...100_000

    public var tap: String
    public var temperature: Double
    public var samplesPerClass: Int
    public var weight: Double

    public init(tap: String, temperature: Double, samplesPerClass: Int, weight: Double) {
        (self.tap, self.temperature, self.samplesPerClass, self.weight) = (tap, temperature, samplesPerClass, weight)
    }

    public var json: JSON {
        .object(["tap": .string(tap), "temperature": .number(temperature), "samples_per_class": .int(samplesPerClass), "weight": .number(weight)])
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            SupConTerm(tap: try r.string("tap"), temperature: try r.double("temperature"),
                       samplesPerClass: try r.int("samples_per_class"), weight: try r.double("weight"))
        }
    }
}

/// The active distillation terms of a student stage (the spec's `use` already applied).
public struct DistillationTerms: ConfigCodable {
    /// Feature terms, in name order.
    public var pairs: [TapPair]
    public var logits: LogitTerm?
    public var supcon: SupConTerm?

    public init(pairs: [TapPair], logits: LogitTerm?, supcon: SupConTerm?) {
        self.pairs = pairs.sorted { $0.name < $1.name }
        self.logits = logits
        self.supcon = supcon
    }

    public var json: JSON {
        .object(["taps": .object(Dictionary(pairs.map { ($0.name, $0.json) }, uniquingKeysWith: { a, _ in a })),
                 "logits": logits?.json ?? .null, "supcon": supcon?.json ?? .null])
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path) { r in
            DistillationTerms(pairs: try r.dictionary("taps") { _, j, p in try TapPair(json: j, at: p) },
                              logits: try r.optional("logits") { r, k in try r.decode(k, as: LogitTerm.self) },
                              supcon: try r.optional("supcon") { r, k in try r.decode(k, as: SupConTerm.self) })
        }
    }

    /// Teacher taps a step reads (for the cache and the live teacher alike), sorted.
    public var teacherTaps: [String] {
        var taps = Set(pairs.map(\.teacherTap))
        if let l = logits { taps.insert("logits.\(l.head)") }
        return taps.sorted()
    }
}
