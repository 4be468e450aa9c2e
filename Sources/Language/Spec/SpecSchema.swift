import Architecture
import StageConfig

/// The Distillery spec language, version 1: every key, its type, default and meaning.
/// `distill schema` prints this as JSON Schema; grammar/README.md documents it.
public enum SpecSchema {
    public static let version = 1

    public static let root = ObjectSchema("Spec", "A knowledge-distillation study: data, models, training stages, evaluation and the sweep.", fields: [
        Field("version", .integer(min: 1, max: 1), default: .int(1), "Spec language version; 1 today."),
        Field("name", .string, "A title for reports."),
        Field("description", .string, "Free text for reports."),
        Field("extends", .oneOf([.path, .list(.path, minCount: 1, maxCount: nil)]),
              "Spec file(s) this one builds on, relative to this file; later keys override earlier ones, `null` deletes a key."),
        Field("data", .object(data), required: true, "The dataset, its preprocessing, split and training subsets."),
        Field("models", .dictionary(.object(model), keys: .identifier), required: true, "Named network architectures."),
        Field("stages", .dictionary(.object(stage), keys: .identifier), required: true, "Named training stages (teachers, baseline students, distilled students)."),
        Field("evaluate", .object(evaluate), default: .object([]), "How every trained stage is evaluated on the test split."),
        Field("report", .object(report), default: .object([]), "How the report compares stages: the level of its tests and how many runs it would take."),
        Field("sweep", .object(sweep), "The ablation grid: axes over spec paths and how to combine them."),
        Field("execution", .object(execution), "Where the plan runs; never part of a stage's identity."),
    ])

    /// `execution.slurm` as a spec without one has it: the schema's defaults.
    public static func defaultSlurmSettings() throws -> SlurmSettings {
        try SlurmSettings(json: slurm.canonicalDefaults, at: "execution.slurm")
    }

    static let slurm = SlurmSettings.declaration

    static let execution = ObjectSchema("Execution", "Where and how the plan's stages run.", fields: [
        Field("slurm", .object(slurm), "Slurm settings."),
        Field("memory", .number(min: 0, exclusiveMin: true, max: 1_048_576), default: .number(defaultMemoryGiB),
              "GiB a training step may take: `auto` 3D recipes (`patch`, `batch`) are fitted to it by the plan's memory model, as nnU-Net fits its recipes to an 8 GB GPU. The default is that GPU as this runtime's memory model counts a step (float32 on a CPU, freed buffers kept for the next step): with it, `auto` chose nnU-Net's own patches."),
    ])

    /// `execution.memory`'s default, in GiB: nnU-Net's 8 GB GPU in the plan's memory model
    /// (nnU-Net 2.8.1's patches on 1 and 0.8 mm CT-like and 1 mm volumes are the largest within
    /// 17.4-17.6 GiB); it leaves a machine of 24 GiB room for the data and the system.
    public static let defaultMemoryGiB = 17.5

    // MARK: data

    public static let phantom = PhantomSettings.declaration

    static let source = DataSource.declaration

    static let normalizationName = Preprocessing.normalizationName
    public static let preprocess = Preprocessing.declaration

    static let split = SplitSettings.declaration

    static let subset = SubsetLevel.declaration

    static let labelValues = SchemaType.list(.integer(min: 1, max: LabelClasses.largestValue), minCount: 1, maxCount: nil)

    static let augment = AugmentationSettings.declaration

    static let data = ObjectSchema("Data", "The dataset, its preprocessing, split and training subsets.", fields: [
        Field("source", .object(source), required: true, "Where the volumes come from."),
        Field("foreground", .oneOf([labelValues, .dictionary(.oneOf([.integer(min: 1, max: LabelClasses.largestValue), labelValues]), keys: .identifier)]),
              default: .list([.int(1)]),
              "Label values that count as foreground: a list merges them into one class (binary segmentation); a mapping names classes in channel order, each one value or several (`{liver: 1, tumour: 2}`, `{tumour_core: [2, 3]}`)."),
        Field("background", .list(.integer(min: 0, max: LabelClasses.largestValue), minCount: 1, maxCount: nil), default: .list([.int(0)]),
              "Label values that are background (`[0, 2, 3]` when only the spleen of a multi-organ map is a class). A value that is neither a class's nor background's is an error when the data is prepared."),
        Field("preprocess", .object(preprocess), default: .object([]), "Slicing, intensity window, size and channels."),
        Field("augment", .object(augment), "Augmentation of every training stage's batches; none without it."),
        Field("split", .object(split), default: .object([]), "Train, validation and test parts."),
        Field("subsets", .dictionary(.object(subset), keys: .identifier),
              default: .object([("full", .object([("fraction", .number(1))]))]),
              "Named training subsets; default `full: {fraction: 1.0}`."),
    ])

    // MARK: models

    static let model = ModelArchitecture.declaration

    // MARK: stages

    static let lossTerm = SupervisedTerm.declaration

    static let optimizer = OptimizerSettings.declaration

    static let schedule = LearningRateSchedule.declaration

    static let select = CheckpointSelection.declaration

    static let initFrom = ObjectSchema("Init", "Initial weights: exactly one of `stage` or `file`.", fields: [
        Field("stage", .identifier, "Start from the selected checkpoint of another stage."),
        Field("file", .path, "Start from a safetensors file."),
    ], exactlyOne: ["stage", "file"])

    static let adapter = Adapter.declaration

    static let featureLoss = FeatureLoss.declaration

    static let tapPair = TapPair.declaration

    static let logits = LogitTerm.declaration

    static let supcon = SupConTerm.declaration

    static let distill = ObjectSchema("Distill", "What a student learns from a frozen teacher.", fields: [
        Field("teacher", .identifier, required: true, "The stage that trains the teacher (frozen, eval mode)."),
        Field("taps", .dictionary(.object(tapPair), keys: .identifier), default: .object([]), "Named feature terms, e.g. `ee`, `bb`, `dd`."),
        Field("logits", .object(logits), "Logit distillation (the study's PMD)."),
        Field("supcon", .object(supcon), "Supervised pixel contrast."),
        Field("use", .list(.identifier, minCount: 0, maxCount: nil), "Which named terms are active (tap names, `logits`, `supcon`); default all. Sweeps set this for scale ablations."),
    ])

    static let rename = WeightRename.declaration

    static let weights = ObjectSchema("Weights", "A network's weights from a safetensors file (e.g. a PyTorch state_dict saved with safetensors).", fields: [
        Field("file", .path, required: true, "The safetensors file; relative to the spec file that names it."),
        Field("rename", .list(.object(rename), minCount: 0, maxCount: nil), default: .list([]),
              "Rewrites from the file's names to the reference names (`encoder.0.conv0.weight`). PyTorch's `num_batches_tracked` counters are skipped."),
    ])

    static let stage = ObjectSchema("Stage", "A stage that produces a trained network: trained on a subset with losses (optionally distilled from a teacher), or taken from a weight file.", fields: [
        Field("model", .identifier, required: true, "The model it produces."),
    ], discriminator: Discriminator(key: "kind", default: "train", [
        .init("train", "Trained here.", [
            Field("data", .identifier, required: true, "The training subset."),
            Field("loss", .list(.object(lossTerm), minCount: 1, maxCount: nil), required: true, "Supervised loss terms."),
            Field("optimizer", .object(optimizer), required: true, "The optimiser."),
            Field("schedule", .object(schedule), default: .object([]), "Learning-rate schedule."),
        ] + TrainingConfiguration.recipe + [
            Field("select", .object(select), default: .object([]), "Checkpoint selection."),
            Field("init", .object(initFrom), "Initial weights."),
            Field("distill", .object(distill), "Distillation from a teacher stage."),
        ]),
        .init("pretrained", "Weights trained elsewhere (a teacher trained in PyTorch on GPUs): checked against the model's weight manifest, evaluated, and usable as a teacher or as `init`.", [
            Field("weights", .object(weights), required: true, "Where the weights come from."),
        ]),
    ]))

    // MARK: evaluation and sweep

    static let evaluate = EvaluateConfiguration.declaration

    static let report = ComparisonSettings.declaration

    static let axis = ObjectSchema("Axis", "One sweep axis: named values at one spec path, or named sets of path/value pairs.", fields: [
        Field("path", .string, "The spec path each value is written to, e.g. `stages.kd.distill.teacher`; without it each value is a mapping of path to value."),
        Field("values", .dictionary(.any, keys: .label), required: true, "Named values."),
    ])

    static let seedList = SchemaType.list(.nonNegativeInteger, minCount: 1, maxCount: 1000)

    static let seeds = ObjectSchema("Seeds", "Replication: the same recipe trained again with other seeds, so that a comparison covers training randomness, not only the test cases. Every variant of the sweep is run once per teacher seed and student seed.", fields: [
        Field("students", seedList, "The `seed` of every trained stage that is not a teacher (baselines and distilled students), one run each; runs of the same seed pair across stages."),
        Field("teachers", seedList, "The `seed` of every trained stage that some stage distils from; each student seed runs under each teacher seed."),
    ])

    static let sweep = ObjectSchema("Sweep", "How the axes combine into variants.", fields: [
        Field("axes", .dictionary(.object(axis), keys: .identifier), default: .object([]), "Named axes."),
        Field("grid", .list(.identifier, minCount: 1, maxCount: nil), "Axes combined as a Cartesian product; default: every axis not in `zip`."),
        Field("zip", .list(.identifier, minCount: 2, maxCount: nil), "Axes advanced together (equal lengths); the group is one factor of the grid."),
        Field("variants", .dictionary(.dictionary(.any, keys: .label), keys: .label), "Explicit named variants: mappings of path to value."),
        Field("exclude", .list(.dictionary(.string, keys: .identifier), minCount: 1, maxCount: nil), "Combinations left out: `{axis: value, ...}` matches when every pair matches."),
        Field("seeds", .object(seeds), "Seeds to replicate every variant with (the axes `\(Replication.teacherAxis)` and `\(Replication.studentAxis)`)."),
        Field("max_variants", .integer(min: 1, max: 1_000_000), "Upper bound on the expansion, seeds included; required above \(defaultVariantCap) variants."),
    ])

    /// A grid larger than this needs an explicit `max_variants`.
    public static let defaultVariantCap = 256
}

extension SpecSchema {
    /// The type of one entry of `models` and of `stages` (what a sweep variant rebuilds alone).
    static let modelEntryType = SchemaType.object(model)
    static let stageEntryType = SchemaType.object(stage)

    /// The declared type of a top-level key of the spec.
    static func fieldType(_ key: String) -> SchemaType {
        guard let field = root.fields.first(where: { $0.key == key }) else { preconditionFailure("no top-level field '\(key)' in SpecSchema.root") }
        return field.type
    }
}
