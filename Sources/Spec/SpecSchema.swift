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
    ])

    // MARK: data

    public static let phantom = PhantomSettings.declaration

    static let source = DataSource.declaration

    static let normalizationName = SchemaType.enumeration(["window", "zscore"])

    static let zscore = ObjectSchema("ZScore", "Per-volume z-score.", fields: [
        Field("mask", .enumeration(ZScoreMask.names), default: .string("all"),
              "`all` voxels, or `nonzero` ones (the others stay 0, as nnU-Net's `use_mask_for_norm`)."),
    ])

    static let normalization = ObjectSchema("Normalization", "A normalisation with settings: exactly one of `zscore` or `percentile`.", fields: [
        Field("zscore", .object(zscore), "Per-volume z-score with a mask."),
        Field("percentile", .list(.number(min: 0, exclusiveMin: false, max: 100), minCount: 2, maxCount: 2),
              "`[low, high]` percentiles of the training cases' foreground voxels to clip to, then z-score with their mean and sd."),
    ], exactlyOne: ["zscore", "percentile"])

    public static let preprocess = ObjectSchema("Preprocess", "How volumes become 2D training slices.", fields: [
        Field("slice_axis", .enumeration(SliceAxis.names), default: .string("axial"),
              "Which axis slices are taken along, after reorientation to a canonical axis order."),
        Field("window", .oneOf([.list(.number(min: nil, exclusiveMin: false, max: nil), minCount: 2, maxCount: 2), .enumeration(["clip255"])]),
              default: .list([.number(-160), .number(240)]),
              "Intensity window `[low, high]` in HU, scaled to [0, 1]; or `clip255`, the study's clip to [0, 255] then /255."),
        Field("modalities", .list(.string, minCount: 1, maxCount: 64),
              "Modalities (names from dataset.json's `modality`, e.g. `[T2, ADC]`) that become input channels, in this order; without it the dataset must have one."),
        Field("normalize", .oneOf([normalizationName, .object(normalization), .list(.oneOf([normalizationName, .object(normalization)]), minCount: 1, maxCount: 64)]),
              default: .string("window"),
              "How intensities are normalised: `window` (the `window` above, for CT), `zscore` (per volume), `{zscore: {mask: nonzero}}` (per volume, over non-zero voxels; the rest stay 0), or `{percentile: [0.5, 99.5]}` (clip to the training cases' foreground percentiles, then z-score with their mean and sd, as nnU-Net does for CT). A list gives one per modality, in the order of `modalities`."),
        Field("size", .oneOf([.integer(min: 8, max: 2048), .list(.integer(min: 8, max: 2048), minCount: 2, maxCount: 2)]),
              default: .int(256), "Target slice size: one side, or `[height, width]`."),
        Field("channels", .integer(min: 1, max: 64), default: .int(1),
              "Input channels: the number of modalities; with one modality, 1 or 3 (the grey value replicated, as the study's RGB PNGs)."),
        Field("keep_empty", .number(min: 0, exclusiveMin: false, max: 1), default: .number(1),
              "Share of slices without foreground that are kept."),
    ])

    static let split = SplitSettings.declaration

    static let subset = ObjectSchema("Subset", "A named share of a split part that a stage trains on.", fields: [
        Field("fraction", .fraction, required: true, "Share of the parent drawn (seeded by the split seed)."),
        Field("of", .identifier, "Parent subset: this one is drawn inside it (the student's half inside the teacher's full)."),
        Field("part", .enumeration(SplitPart.names), default: .string("train"), "Which split part it is drawn from."),
        Field("stratify", .boolean, default: .bool(false), "Draw so that the share of slices with foreground is kept."),
    ])

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

    static let heads = SchemaType.dictionary(.integer(min: 1, max: 4096), keys: .identifier)
    static let widths = SchemaType.list(.integer(min: 1, max: 16384), minCount: 1, maxCount: 8)

    static func unetFields(heads defaultHeads: [(String, Int)]) -> [Field] {
        [
            Field("widths", widths, required: true, "Channels of each encoder level, full resolution first; the depth is its length."),
            Field("bottleneck", .integer(min: 1, max: 65536), required: true, "Channels of the bottleneck block."),
            Field("convs_per_block", .integer(min: 1, max: 8), default: .int(2), "3x3 conv + norm + ReLU units per block."),
            Field("norm", .enumeration(NormKind.names), default: .string("batch"), "Normalisation after each conv."),
            Field("groups", .positiveInteger, default: .int(8), "Groups of `norm: group`."),
            Field("up", .enumeration(UpsamplingKind.names), default: .string("transpose"), "Decoder up-sampling."),
            Field("heads", heads, default: .object(defaultHeads.map { ($0.0, .int($0.1)) }),
                  "Output heads and their channels."),
        ]
    }

    static let vit = ObjectSchema("ViT", "The transformer bottleneck of a TransUNet.", fields: [
        Field("blocks", .integer(min: 0, max: 64), default: .int(8), "Post-norm transformer blocks."),
        Field("heads", .integer(min: 1, max: 128), default: .int(12), "Attention heads; each has floor(dim/heads) features."),
        Field("dim", .integer(min: 1, max: 16384), default: .int(256), "Token width."),
        Field("mlp", .integer(min: 1, max: 65536), default: .int(2048), "MLP hidden width."),
        Field("patch", .integer(min: 1, max: 64), default: .int(16), "Patch side on the deepest CNN map."),
    ])

    static let model = ObjectSchema("Model", "A network architecture; its `arch` decides which keys apply.", fields: [
        Field("in_channels", .integer(min: 1, max: 64), "Input channels; default: `data.preprocess.channels`."),
    ], discriminator: Discriminator(key: "arch", [
        .init("unet", "A U-Net with one decoder (the study's students).", unetFields(heads: [("segmentation", 1)])),
        .init("multitask_unet", "A U-Net with a shared encoder and one decoder per head (the study's T1).",
              unetFields(heads: [("segmentation", 1), ("reconstruction", 3)])),
        .init("transunet", "A hybrid CNN + ViT encoder with bilinear decoders, one per head (the study's T2).", [
            Field("stem_width", .integer(min: 1, max: 16384), default: .int(128), "Channels of the 7x7 stride-2 stem."),
            Field("stage_widths", widths, default: .list([256, 512, 1024].map { .int($0) }), "Residual stage widths, each stride 2."),
            Field("bottleneck", .integer(min: 1, max: 65536), default: .int(512), "Channels of the conv after the ViT."),
            Field("decoder_widths", widths, default: .list([256, 128, 64, 16].map { .int($0) }), "Decoder block widths, deepest first."),
            Field("vit", .object(vit), default: .object([]), "The transformer bottleneck."),
            Field("heads", heads, default: .object([("segmentation", 1), ("reconstruction", 3)].map { ($0.0, .int($0.1)) }),
                  "Output heads and their channels."),
        ]),
    ]))

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
