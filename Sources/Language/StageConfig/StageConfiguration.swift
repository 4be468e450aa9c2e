import Architecture

/// A stage's complete, typed configuration: what the planner hashes, what a plan
/// file holds under `params`, and what the runtime executes. One type per kind.

/// What a stage computes.
public enum StageKind: String, Sendable, CaseIterable, Comparable {
    /// Read the dataset, preprocess it, write the split manifest.
    case prepare
    /// Take a model's weights from a file (trained elsewhere) instead of training.
    case pretrained
    /// Train a model from labels alone (a teacher or a baseline student).
    case train
    /// The frozen teacher's taps and logits over a student's training data, in fp16.
    case teacherOutputs = "teacher_outputs"
    /// Train a student against a frozen teacher.
    case distill
    /// Metrics and predictions of a trained stage on the test split.
    case evaluate
    /// The sweep's table and pictures.
    case report

    var order: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (a: StageKind, b: StageKind) -> Bool { a.order < b.order }
}

public enum StageConfiguration: Hashable, Sendable {
    case prepare(PrepareConfiguration)
    case pretrained(PretrainedConfiguration)
    /// A `train` stage, or a `distill` stage when it has distillation terms.
    case train(TrainingConfiguration)
    case teacherOutputs(TeacherOutputsConfiguration)
    case evaluate(EvaluateConfiguration)
    case report(ReportConfiguration)

    public var kind: StageKind {
        switch self {
        case .prepare: return .prepare
        case .pretrained: return .pretrained
        case .train(let t): return t.distill == nil ? .train : .distill
        case .teacherOutputs: return .teacherOutputs
        case .evaluate: return .evaluate
        case .report: return .report
        }
    }

    /// The canonical encoding: a plan file's `params`.
    public var json: JSON {
        switch self {
        case .prepare(let c): return c.json
        case .pretrained(let c): return c.json
        case .train(let c): return c.json
        case .teacherOutputs(let c): return c.json
        case .evaluate(let c): return c.json
        case .report(let c): return c.json
        }
    }

    /// What the stage hash covers: the encoding without where the data or the weights
    /// are read from (a moved dataset or weight file with the same content is the same stage).
    public var identity: JSON {
        switch self {
        case .prepare(let c): return c.identity
        case .pretrained(let c): return c.identity
        default: return json
        }
    }

    /// The network a `pretrained`, `train` or `distill` stage produces.
    public var trainedModel: ModelArchitecture? {
        switch self {
        case .pretrained(let c): return c.model
        case .train(let c): return c.model
        default: return nil
        }
    }

    /// Reads a plan's `params` for a stage of `kind`.
    public init(kind: StageKind, params: JSON, at path: String = "params") throws {
        switch kind {
        case .prepare: self = .prepare(try PrepareConfiguration(json: params, at: path))
        case .pretrained: self = .pretrained(try PretrainedConfiguration(json: params, at: path))
        case .train, .distill:
            let c = try TrainingConfiguration(json: params, at: path)
            guard (c.distill != nil) == (kind == .distill) else {
                throw ConfigError(field: joinPath(path, "distill"),
                                  problem: .inconsistent(kind == .distill ? "a distill stage needs distillation terms" : "a train stage has no distillation terms"),
                                  value: params["distill"])
            }
            self = .train(c)
        case .teacherOutputs: self = .teacherOutputs(try TeacherOutputsConfiguration(json: params, at: path))
        case .evaluate: self = .evaluate(try EvaluateConfiguration(json: params, at: path))
        case .report: self = .report(try ReportConfiguration(json: params, at: path))
        }
    }
}

/// The `prepare` stage: a dataset cut into slices and split.
public struct PrepareConfiguration: ConfigCodable {
    public var source: DataSource
    /// The identity of the data's content (the phantom's settings, or an MSD folder's files).
    public var fingerprint: String
    /// What the label values mean: one merged foreground class or named classes.
    public var classes: LabelClasses
    /// Label values that are background (every other value must be a class's).
    public var background: [Int]
    public var preprocess: Preprocessing
    public var split: SplitSettings

    public init(source: DataSource, fingerprint: String, classes: LabelClasses, background: [Int], preprocess: Preprocessing, split: SplitSettings) {
        (self.source, self.fingerprint, self.classes, self.background, self.preprocess, self.split) = (source, fingerprint, classes, background, preprocess, split)
    }

    public var json: JSON {
        var o = identityFields
        o["source"] = source.json
        return .object(o)
    }

    var identity: JSON { .object(identityFields) }

    private var identityFields: [String: JSON] {
        ["fingerprint": .string(fingerprint), "foreground": classes.json, "background": .array(background.map(JSON.int)),
         "preprocess": preprocess.json, "split": split.json]
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path) { r in
            PrepareConfiguration(source: try r.decode("source"), fingerprint: try r.string("fingerprint"),
                                 classes: try r.decode("foreground"),
                                 background: try r.list("background", minCount: 1) { j, p in try ConfigValue.int(j, at: p, min: 0, max: LabelClasses.largestValue) },
                                 preprocess: try r.decode("preprocess"), split: try r.decode("split"))
        }
    }
}

/// A `train` or `distill` stage: a model, its data, its objective and its optimisation.
public struct TrainingConfiguration: ConfigCodable {
    public var model: ModelArchitecture
    /// The training subset, root first (independent of the subsets' names).
    public var subset: SubsetChain
    public var loss: [SupervisedTerm]
    public var optimizer: OptimizerSettings
    public var schedule: LearningRateSchedule
    public var epochs: Int
    public var batch: Int
    public var seed: Int
    public var clipGradNorm: Double?
    public var select: CheckpointSelection
    /// Initial weights from a safetensors file (initial weights from a stage are an input instead).
    public var initFile: String?
    /// The active distillation terms; nil for a stage trained from labels alone.
    public var distill: DistillationTerms?
    /// Augmentation of the training batches; nil for none.
    public var augment: AugmentationSettings?

    public init(model: ModelArchitecture, subset: SubsetChain, loss: [SupervisedTerm], optimizer: OptimizerSettings,
                schedule: LearningRateSchedule, epochs: Int, batch: Int, seed: Int, clipGradNorm: Double?,
                select: CheckpointSelection, initFile: String?, distill: DistillationTerms?, augment: AugmentationSettings?) {
        self.model = model
        self.subset = subset
        self.loss = loss
        self.optimizer = optimizer
        self.schedule = schedule
        self.epochs = epochs
        self.batch = batch
        self.seed = seed
        self.clipGradNorm = clipGradNorm
        self.select = select
        self.initFile = initFile
        self.distill = distill
        self.augment = augment
    }

    public var json: JSON {
        .object([
            "model": model.json, "subset": subset.json, "loss": .array(loss.map(\.json)), "optimizer": optimizer.json,
            "schedule": schedule.json, "epochs": .int(epochs), "batch": .int(batch), "seed": .int(seed),
            "clip_grad_norm": clipGradNorm.map(JSON.number) ?? .null, "select": select.json,
            "init_file": initFile.map(JSON.string) ?? .null, "distill": distill?.json ?? .null, "augment": augment?.json ?? .null,
        ])
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.recipeDeclaration) { r in
            TrainingConfiguration(
                model: try r.decode("model"), subset: try r.decode("subset"),
                loss: try r.list("loss", minCount: 1) { j, p in try SupervisedTerm(json: j, at: p) },
                optimizer: try r.decode("optimizer"), schedule: try r.decode("schedule"),
                epochs: try r.int("epochs"), batch: try r.int("batch"), seed: try r.int("seed"),
                clipGradNorm: try r.optional("clip_grad_norm") { r, k in try r.double(k) },
                select: try r.decode("select"),
                initFile: try r.optional("init_file") { r, k in try r.string(k) },
                distill: try r.optional("distill") { r, k in try r.decode(k, as: DistillationTerms.self) },
                augment: try r.optional("augment") { r, k in try r.decode(k, as: AugmentationSettings.self) })
        }
    }
}

/// Precision of the teacher-output cache.
public enum CachePrecision: String, ConfigChoice {
    case fp16
}

/// The `teacher_outputs` stage: a frozen teacher's taps over a student's training slices.
public struct TeacherOutputsConfiguration: ConfigCodable {
    public var subset: SubsetChain
    public var taps: [String]
    public var precision: CachePrecision

    public init(subset: SubsetChain, taps: [String], precision: CachePrecision) {
        (self.subset, self.taps, self.precision) = (subset, taps.sorted(), precision)
    }

    public var json: JSON { .object(["subset": subset.json, "taps": .array(taps.map(JSON.string)), "precision": precision.json]) }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path) { r in
            TeacherOutputsConfiguration(subset: try r.decode("subset"),
                                        taps: try r.list("taps", minCount: 1) { j, p in try ConfigValue.string(j, at: p) },
                                        precision: try r.choice("precision"))
        }
    }
}

/// A metric the evaluation reports.
public enum EvaluationMetric: String, ConfigChoice {
    case dice, iou, precision, recall, hd95, nsd
}

/// The normalised surface distance's tolerance in mm: one for every class, or one per class.
public enum SurfaceTolerance: ConfigCodable, Hashable {
    case uniform(Double)
    case perClass([String: Double])

    /// The tolerance of class `name` (nil when a per-class setting leaves it out).
    public func millimetres(_ name: String) -> Double? {
        switch self {
        case .uniform(let t): return t
        case .perClass(let t): return t[name]
        }
    }

    public var json: JSON {
        switch self {
        case .uniform(let t): return .number(t)
        case .perClass(let t): return .object(t.mapValues(JSON.number))
        }
    }

    public init(json: JSON, at path: String) throws {
        if case .object(let o) = json {
            self = .perClass(try o.mapValues { v in try ConfigValue.double(v, at: path, min: 0, exclusiveMin: true) })
        } else {
            self = .uniform(try ConfigValue.double(json, at: path, min: 0, exclusiveMin: true))
        }
    }
}

/// How metrics are aggregated over the test slices.
public enum MetricPooling: String, ConfigChoice {
    /// TP/FP/FN summed over all test slices (the study's way).
    case global
    /// Mean and sd over patients.
    case perCase = "per_case"
    case both
}

/// What the decision threshold applies to.
public enum ThresholdTarget: String, ConfigChoice {
    case probability, logit
}

/// How the 95th-percentile Hausdorff distance combines the two directions (prediction to
/// truth, truth to prediction): the conventions of the two libraries the field uses.
public enum HausdorffConvention: String, ConfigChoice {
    /// MONAI's `compute_hausdorff_distance(percentile=95)`: the larger of the two directed 95th percentiles.
    case monai
    /// MedPy's `hd95`: the 95th percentile of both directions' distances pooled.
    case medpy

    /// The definition, as metrics.json and the report state it.
    public var definition: String {
        switch self {
        case .monai: "MONAI's: the larger of the two directed 95th percentiles of surface distances"
        case .medpy: "MedPy's: the 95th percentile of both directions' surface distances pooled"
        }
    }
}

/// The `evaluate` stage (the spec's `evaluate` block).
public struct EvaluateConfiguration: ConfigCodable {
    public var metrics: [EvaluationMetric]
    public var pooling: MetricPooling
    public var threshold: Double
    public var thresholdOn: ThresholdTarget
    public var nsdTolerance: SurfaceTolerance
    /// Spatial axes of a 3D network's input (0 depth, 1 height, 2 width) mirrored at test time.
    public var mirror: [Int]
    /// How HD95 combines the two directions.
    public var hd95: HausdorffConvention

    /// The names of `mirror`'s axes, in axis order.
    public static let mirrorAxes = ["depth", "height", "width"]

    public init(metrics: [EvaluationMetric], pooling: MetricPooling, threshold: Double, thresholdOn: ThresholdTarget, nsdTolerance: SurfaceTolerance,
                mirror: [Int] = [], hd95: HausdorffConvention) {
        (self.metrics, self.pooling, self.threshold, self.thresholdOn, self.nsdTolerance) = (metrics, pooling, threshold, thresholdOn, nsdTolerance)
        (self.mirror, self.hd95) = (mirror, hd95)
    }

    public var json: JSON {
        // The convention is always written: the HD95 an evaluation computes is part of what it is.
        var o: [String: JSON] = ["metrics": .array(metrics.map(\.json)), "pooling": pooling.json, "threshold": .number(threshold), "threshold_on": thresholdOn.json,
                                 "nsd_tolerance": nsdTolerance.json, "hd95": hd95.json]
        // Written only when set: evaluations without mirroring keep their hashes.
        if !mirror.isEmpty { o["mirror"] = .array(mirror.map { .string(Self.mirrorAxes[$0]) }) }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let mirror = try r.ifPresent("mirror") { r, k in
                try r.list(k) { j, p -> Int in
                    let name = try ConfigValue.string(j, at: p)
                    guard let axis = Self.mirrorAxes.firstIndex(of: name) else { throw ConfigError(field: p, problem: .unknownValue(expected: Self.mirrorAxes), value: j) }
                    return axis
                }
            } ?? []
            return EvaluateConfiguration(metrics: try r.list("metrics") { j, p in try EvaluationMetric(json: j, at: p) },
                                         pooling: try r.choice("pooling"), threshold: try r.double("threshold"), thresholdOn: try r.choice("threshold_on"),
                                         nsdTolerance: try r.decode("nsd_tolerance"), mirror: Array(Set(mirror)).sorted(), hd95: try r.choice("hd95"))
        }
    }
}

/// How a report compares stages: the level of its tests, and the power and smallest
/// effect of the runs-needed estimate (the spec's `report`).
public struct ComparisonSettings: ConfigCodable, Hashable {
    public var alpha: Double
    public var power: Double
    /// The smallest difference in Dice worth detecting, if the spec states one.
    public var minEffect: Double?
    /// The equivalence margin in Dice: a difference inside +-margin counts as none.
    public var margin: Double?
    /// Variance components to plan with (`report.variance`), before any run measured them.
    public var variance: PlannedVariance?

    public init(alpha: Double, power: Double, minEffect: Double?, margin: Double? = nil, variance: PlannedVariance? = nil) {
        (self.alpha, self.power, self.minEffect, self.margin, self.variance) = (alpha, power, minEffect, margin, variance)
    }

    public var json: JSON {
        .object(["alpha": .number(alpha), "power": .number(power), "min_effect": minEffect.map(JSON.number) ?? .null,
                 "margin": margin.map(JSON.number) ?? .null, "variance": variance?.json ?? .null])
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            ComparisonSettings(alpha: try r.double("alpha"), power: try r.double("power"),
                               minEffect: try r.optional("min_effect") { r, k in try r.double(k) },
                               margin: try r.optional("margin") { r, k in try r.double(k) },
                               variance: try r.optional("variance") { r, k in try r.decode(k, as: PlannedVariance.self) })
        }
    }
}

/// How a distilled-minus-baseline difference in Dice varies, as standard deviations, for
/// `distill plan` to say what a design can detect before it runs (`report.variance`).
public struct PlannedVariance: ConfigCodable, Hashable {
    /// Standard deviations by source, in the declaration's order: teacher run, seed, test
    /// case, teacher run x seed, teacher run x case, seed x case, residual.
    public var sd: [Double]
    /// The sources' keys, as declared.
    public static var keys: [String] { declaration.fields.map(\.key) }

    public init(sd: [Double]) { self.sd = sd }

    public var json: JSON { .object(Dictionary(uniqueKeysWithValues: zip(Self.keys, sd.map(JSON.number)))) }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            PlannedVariance(sd: try Self.keys.map { try r.double($0) })
        }
    }
}

/// The `report` stage: which evaluation stage holds each spec stage's metrics, per
/// variant, and how the report compares them.
public struct ReportConfiguration: ConfigCodable {
    public struct Variant: Hashable, Sendable {
        public var name: String
        /// Spec stage name -> evaluation stage hash.
        public var evaluate: [String: String]
        public init(name: String, evaluate: [String: String]) { (self.name, self.evaluate) = (name, evaluate) }
    }

    public var spec: String?
    public var variants: [Variant]
    public var comparison: ComparisonSettings

    public init(spec: String?, variants: [Variant], comparison: ComparisonSettings) {
        (self.spec, self.variants, self.comparison) = (spec, variants, comparison)
    }

    public var json: JSON {
        .object(["spec": spec.map(JSON.string) ?? .null, "comparison": comparison.json,
                 "variants": .array(variants.map { v in
                     .object(["name": .string(v.name), "evaluate": .object(v.evaluate.mapValues(JSON.string))])
                 })])
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path) { r in
            ReportConfiguration(spec: try r.optional("spec") { r, k in try r.string(k) },
                                variants: try r.list("variants") { j, p in
                                    try ConfigReader.read(j, at: p) { v in
                                        Variant(name: try v.string("name"),
                                                evaluate: Dictionary(try v.dictionary("evaluate") { name, h, hp in (name, try ConfigValue.string(h, at: hp)) },
                                                                     uniquingKeysWith: { a, _ in a }))
                                    }
                                },
                                comparison: try r.decode("comparison"))
        }
    }
}
