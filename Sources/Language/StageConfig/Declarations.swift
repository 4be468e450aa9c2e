import Architecture

/// The declarations of the spec objects that the typed configuration reads as written: each
/// field's key, type, range, enum values, default and doc, once. The spec checker, the JSON
/// Schema and grammar/README.md read them through SpecSchema; the readers through ConfigReader.

enum DeclarationParts {
    static func chance(_ p: Double) -> Field {
        Field("p", .number(min: 0, exclusiveMin: false, max: 1), default: .number(p), "Probability that an image gets it.")
    }

    static func ranged(_ name: String, _ doc: String, p: Double, range: (Double, Double), positive: Bool = false, max: Double) -> Field {
        Field(name, .object(ObjectSchema(name.capitalized, doc, fields: [
            chance(p),
            Field("range", .list(.number(min: 0, exclusiveMin: positive, max: max), minCount: 2, maxCount: 2),
                  default: .list([.number(range.0), .number(range.1)]), "`[low, high]`: the factor is drawn uniformly from it."),
        ])), doc)
    }

    static let betas = SchemaType.list(.number(min: 0, exclusiveMin: false, max: 1), minCount: 2, maxCount: 2)
}

extension SlurmSettings {
    public static let declaration = ObjectSchema("Slurm", "Defaults for `distill submit --to slurm`; command-line options override them.", fields: [
        Field("partition", .string, "Partition (sbatch --partition)."),
        Field("account", .string, "Account (sbatch --account)."),
        Field("qos", .string, "Quality of service (sbatch --qos)."),
        Field("cpus_per_task", .integer(SlurmSettings.perNodeRange), "CPUs per stage job; default: the cost model's threads (2)."),
        Field("mem", .string, "Memory per job, e.g. `16G`; default: the cost model's peak memory with a margin."),
        Field("time", .string, "Time limit per job, e.g. `12:00:00`; default: the cost model's estimate with a margin."),
        Field("extra", .list(.string, minCount: 0, maxCount: nil), default: .list([]), "Further `#SBATCH` options, e.g. `--qos=normal`."),
        Field("nodes", .integer(SlurmSettings.nodesRange), default: .int(1), "Nodes of every training stage's job; its data-parallel MPI ranks are `nodes` x `ranks_per_node` (`mpirun` in the job), never more than the stage's batch."),
        Field("ranks_per_node", .integer(SlurmSettings.perNodeRange), default: .int(1), "MPI ranks on one node (1: a node's cores go to one rank's threads)."),
        Field("stage_nodes", .dictionary(.integer(SlurmSettings.nodesRange), keys: .identifier), default: .object([]), "Nodes of named training stages, overriding `nodes`: `{teacher_t1: 8}`."),
        Field("max_time", .string, "Wall-time budget of one job (`[D-]HH:MM:SS`): a training stage the cost model puts over it gets the nodes it needs to fit, up to `max_nodes`."),
        Field("max_nodes", .integer(SlurmSettings.nodesRange), default: .int(64), "Most nodes `max_time` may give a stage."),
    ])
}

extension PhantomSettings {
    public static let declaration = ObjectSchema("Phantom", "The built-in synthetic abdominal CT generator (spleen 1, liver 2, kidneys 3), written as an MSD folder.", fields: [
        Field("cases", .integer(PhantomSettings.casesRange), default: .int(24), "Number of patients."),
        Field("seed", .nonNegativeInteger, default: .int(0), "Generator seed."),
        Field("size", .integer(PhantomSettings.sizeRange), default: .int(128), "In-plane voxels per side."),
        Field("slices", .integer(PhantomSettings.slicesRange), default: .int(48), "Axial slices per volume."),
        Field("noise", .nonNegativeNumber, default: .number(20), "Gaussian noise, standard deviation in HU."),
        Field("hard_cases", .number(min: 0, exclusiveMin: false, max: 1), default: .number(0.25),
              "Share of patients whose spleen is small or low-contrast."),
        Field("modalities", .list(.string, minCount: 1, maxCount: 8), default: .list([.string("CT")]),
              "Modality names: the first is the CT; each further one is an MR-like contrast of the same anatomy (zero outside the body), written as a 4D image."),
    ])
}

extension DataSource {
    public static let declaration = ObjectSchema("Source", "Where the volumes come from: exactly one of `msd` or `phantom`.", fields: [
        Field("msd", .path, "A Medical Segmentation Decathlon folder (dataset.json, imagesTr/, labelsTr/)."),
        Field("phantom", .object(PhantomSettings.declaration), "The built-in phantom; `phantom: {}` takes every default."),
        Field("analyze_orientation", .enumeration(AxisOrientation.all),
              "For `msd` folders holding ANALYZE 7.5 files (no NIfTI magic): the orientation they do not record, as nibabel's axis codes (`LAS`: i toward the left, j anterior, k superior). Without it such files are refused."),
    ], exactlyOne: ["msd", "phantom"])
}

extension SplitSettings {
    public static let declaration = ObjectSchema("Split", "How cases are divided into train, validation and test parts.", fields: [
        Field("unit", .enumeration(SplitUnit.names), default: .string("patient"),
              "Split by patient (no leak) or by slice (the study's mode: one patient's slices land on both sides)."),
        Field("test", .fraction, default: .number(0.2), "Share held out for testing."),
        Field("val", .number(min: 0, exclusiveMin: false, max: 1), default: .number(0.1), "Share held out for validation; 0 for none."),
        Field("seed", .nonNegativeInteger, default: .int(42), "Seed of the split."),
        Field("folds", .integer(SplitSettings.foldsRange), "k for k-fold cross-validation (the test part is fold `fold`)."),
        Field("fold", .nonNegativeInteger, "Which fold is the test part, 0-based; requires `folds`."),
        Field("patient", .string, omittedAt: [.null], "Several scans of one patient: a regular expression matched against each case id, whose first group (or whole match) names the patient, so that a split by patient keeps a patient's scans in one part (`'^(sub-[0-9]+)_'`). Every case id must match. Without it each case is its own patient."),
    ])
}

extension AugmentationSettings {
    public static let declaration = ObjectSchema("Augment", "Augmentation of the training batches, drawn per image from the stage's seed, epoch and batch (deterministic); validation, test and teacher caches never see it. A transform is on when its key is written; `{}` takes its defaults (nnU-Net's, for 2D).", fields: [
        Field("flip", .object(ObjectSchema("Flip", "Mirroring.", fields: [
            DeclarationParts.chance(0.5),
            Field("axes", .list(.enumeration(["horizontal", "vertical", "depth"]), minCount: 1, maxCount: 3),
                  default: .list([.string("horizontal"), .string("vertical")]), "Axes mirrored, each with probability p; `depth` (the slice axis) for 3D patches."),
        ])), "Mirror the slice or patch (image and label together)."),
        Field("rotate90", .object(ObjectSchema("Rotate90", "Quarter turns.", fields: [DeclarationParts.chance(0.5)])), "A quarter turn (1, 2 or 3) in the plane, square slices or patches only."),
        Field("rotate", .object(ObjectSchema("Rotate", "Rotation by a small angle.", fields: [
            DeclarationParts.chance(0.2), Field("degrees", .number(min: 0, exclusiveMin: false, max: 180), default: .number(15), "Angles are uniform in [-degrees, degrees]."),
        ])), "Rotate by an angle uniform in [-degrees, degrees] in the plane; 3D patches also about their height and width axes (each angle drawn alike), unless their depth is under a third of their largest side, as nnU-Net turns anisotropic patches in the plane alone. Linear for images, nearest for labels."),
        DeclarationParts.ranged("scale", "Zoom by a factor uniform in the range (above 1 enlarges), along every axis.", p: 0.2, range: (0.85, 1.25), positive: true, max: 10),
        Field("elastic", .object(ObjectSchema("Elastic", "Elastic deformation.", fields: [
            DeclarationParts.chance(0.2),
            Field("alpha", .number(min: 0, exclusiveMin: false, max: 256), default: .number(4), "Displacement at the control points: its standard deviation in pixels."),
            Field("sigma", .number(min: 1, exclusiveMin: false, max: 4096), default: .number(16), "Spacing of the control points in pixels (larger is smoother)."),
        ])), "A smooth random displacement field (control points, linearly interpolated; in 3D along every axis)."),
        DeclarationParts.ranged("brightness", "Multiply intensities by a factor uniform in the range.", p: 0.15, range: (0.75, 1.25), max: 10),
        DeclarationParts.ranged("contrast", "Scale intensities about their mean by a factor uniform in the range.", p: 0.15, range: (0.75, 1.25), max: 10),
        DeclarationParts.ranged("gamma", "x -> x^gamma on the image's own [min, max], gamma uniform in the range.", p: 0.3, range: (0.7, 1.5), positive: true, max: 10),
        DeclarationParts.ranged("noise", "Add noise whose standard deviation is uniform in the range (in normalised units); near-Gaussian: the sum of four uniforms, tails at 3.46 sd.", p: 0.1, range: (0, 0.1), max: 100),
        DeclarationParts.ranged("blur", "Gaussian blur with sigma uniform in the range (pixels; in 3D along every axis).", p: 0.2, range: (0.5, 1.0), max: 16),
    ])
}

extension SupervisedTerm {
    public static let declaration = ObjectSchema("LossTerm", "A supervised loss on one head.", fields: [
        Field("head", .identifier, default: .string("segmentation"), "The head it applies to."),
        Field("weight", .nonNegativeNumber, default: .number(1), "Weight in the total loss."),
    ], discriminator: Discriminator(key: "kind", [
        .init("dice", "Soft Dice pooled over the batch: on sigmoid probabilities for a 1-channel head (the study's form), on softmax probabilities averaged over the foreground classes for a wider head.", [
            Field("smooth", .nonNegativeNumber, default: .number(1), "Added to numerator and denominator."),
        ]),
        .init("bce", "Binary cross-entropy on logits, mean over pixels."),
        .init("dice_bce", "BCE + Dice (the study's teacher and S2 loss).", [
            Field("smooth", .nonNegativeNumber, default: .number(1), "Dice smoothing."),
        ]),
        .init("ce", "Multi-class cross-entropy over pixels (heads with 2 or more channels)."),
        .init("dice_ce", "Cross-entropy + softmax Dice over the foreground classes, pooled over the batch (nnU-Net's loss; heads with 2 or more channels).", [
            Field("smooth", .nonNegativeNumber, default: .number(1e-5), "Dice smoothing (nnU-Net's 1e-5)."),
        ]),
        .init("focal", "Multi-class focal loss.", [
            Field("gamma", .nonNegativeNumber, default: .number(2), "Focusing exponent."),
        ]),
        .init("mse", "Mean squared error, for reconstruction heads.", [
            Field("target", .enumeration(ReconstructionTarget.names), default: .string("input"), "What the head reconstructs."),
        ]),
    ]))
}

extension OptimizerSettings {
    public static let declaration = ObjectSchema("Optimizer", "The optimiser, with PyTorch's semantics and defaults.", fields: [
        Field("lr", .positiveNumber, required: true, "Learning rate."),
    ], discriminator: Discriminator(key: "kind", [
        .init("sgd", "SGD with optional momentum.", [
            Field("momentum", .nonNegativeNumber, default: .number(0), "Momentum factor."),
            Field("dampening", .number(min: 0, exclusiveMin: false, max: 1), default: .number(0), "Dampening of the momentum."),
            Field("nesterov", .boolean, default: .bool(false), "Nesterov momentum."),
            Field("weight_decay", .nonNegativeNumber, default: .number(0), "L2 penalty added to the gradient."),
        ]),
        .init("adam", "Adam.", [
            Field("betas", DeclarationParts.betas, default: .list([.number(0.9), .number(0.999)]), "Moment decay rates."),
            Field("eps", .positiveNumber, default: .number(1e-8), "Denominator term."),
            Field("weight_decay", .nonNegativeNumber, default: .number(0), "L2 penalty added to the gradient."),
        ]),
        .init("adamw", "Adam with decoupled weight decay (the study's teachers and baselines).", [
            Field("betas", DeclarationParts.betas, default: .list([.number(0.9), .number(0.999)]), "Moment decay rates."),
            Field("eps", .positiveNumber, default: .number(1e-8), "Denominator term."),
            Field("weight_decay", .nonNegativeNumber, default: .number(0.01), "Decoupled weight decay."),
        ]),
        .init("rmsprop", "RMSprop (the study's KD students).", [
            Field("alpha", .number(min: 0, exclusiveMin: false, max: 1), default: .number(0.99), "Smoothing constant."),
            Field("eps", .positiveNumber, default: .number(1e-8), "Denominator term."),
            Field("momentum", .nonNegativeNumber, default: .number(0), "Momentum factor."),
            Field("centered", .boolean, default: .bool(false), "Normalise by the estimated variance."),
            Field("weight_decay", .nonNegativeNumber, default: .number(0), "L2 penalty added to the gradient."),
        ]),
        .init("adagrad", "Adagrad.", [
            Field("lr_decay", .nonNegativeNumber, default: .number(0), "Learning-rate decay."),
            Field("eps", .positiveNumber, default: .number(1e-10), "Denominator term."),
            Field("initial_accumulator_value", .nonNegativeNumber, default: .number(0), "Starting sum of squares."),
            Field("weight_decay", .nonNegativeNumber, default: .number(0), "L2 penalty added to the gradient."),
        ]),
    ]))
}

extension LearningRateSchedule {
    public static let declaration = ObjectSchema("Schedule", "How the learning rate changes over epochs.", fields: [
        Field("warmup_epochs", .nonNegativeInteger, default: .int(0), "Linear warm-up from 0."),
    ], discriminator: Discriminator(key: "kind", default: "constant", [
        .init("constant", "The same rate throughout."),
        .init("cosine", "Cosine annealing to `min_lr`.", [
            Field("min_lr", .nonNegativeNumber, default: .number(0), "Final learning rate."),
        ]),
        .init("poly", "Polynomial decay `(1 - epoch/epochs)^power` (nnU-Net's choice).", [
            Field("power", .positiveNumber, default: .number(0.9), "Exponent."),
        ]),
        .init("step", "Multiply by `gamma` every `step_size` epochs.", [
            Field("step_size", .positiveInteger, required: true, "Epochs between drops."),
            Field("gamma", .positiveNumber, default: .number(0.1), "Factor per drop."),
        ]),
    ]))
}

extension CheckpointSelection {
    public static let declaration = ObjectSchema("Select", "Which epoch's checkpoint the stage keeps.", fields: [
        Field("metric", .enumeration(SelectionMetric.names), default: .string("dice"), "What is compared between epochs."),
        Field("split", .enumeration(SelectionSplit.names), default: .string("val"),
              "Where it is measured; `last` keeps the final epoch; `test` is the study's leak, flagged."),
    ])
}

extension Adapter {
    public static let declaration = ObjectSchema("Adapter", "A projection that makes channel counts meet at a tap pair.", fields: [],
        discriminator: Discriminator(key: "kind", default: "conv1x1", [
            .init("conv1x1", "A 1x1 convolution with bias on one side.", [
                Field("side", .enumeration(AdapterSide.names), default: .string("teacher"), "Which map it projects."),
                Field("trainable", .boolean, default: .bool(true), "Trained with the student."),
                Field("reinit_each_step", .boolean, default: .bool(false),
                      "Re-created with random weights every step and never trained: the study's defect, reproduced on purpose."),
            ]),
            .init("identity", "No projection: the channel counts must already be equal."),
        ]))
}

extension FeatureLoss {
    public static let declaration = ObjectSchema("FeatureLoss", "How a tap pair's two maps are compared.", fields: [],
        discriminator: Discriminator(key: "kind", default: "mse", [
            .init("mse", "Mean squared error."),
            .init("l1", "Mean absolute error."),
            .init("cosine", "1 - cosine similarity of each image's flattened maps."),
            .init("infonce", "Instance contrast: the same image's teacher map is the positive, the batch's others the negatives.", [
                Field("temperature", .positiveNumber, default: .number(0.1), "Softmax temperature."),
            ]),
            .init("attention", "Attention transfer between spatial attention maps.", [
                Field("p", .positiveNumber, default: .number(2), "Exponent of the channel pooling."),
            ]),
            .init("cwd", "Channel-wise distillation: KL between per-channel spatial softmax maps.", [
                Field("temperature", .positiveNumber, default: .number(1), "Softmax temperature."),
            ]),
        ]))
}

extension TapPair {
    public static let declaration = ObjectSchema("TapPair", "A feature-distillation term between a teacher tap and a student tap.", fields: [
        Field("teacher", .string, required: true, "The teacher's tap, e.g. `pool.1`."),
        Field("student", .string, required: true, "The student's tap."),
        Field("adapter", .object(Adapter.declaration), "Projection when channel counts differ."),
        Field("resample", .enumeration(Resampling.names), default: .string("none"),
              "How the teacher map is brought to the student map's size."),
        Field("loss", .object(FeatureLoss.declaration), default: .object([]), "The comparison."),
        Field("weight", .nonNegativeNumber, default: .number(1), "Weight in the total loss."),
    ])
}

extension LogitTerm {
    public static let declaration = ObjectSchema("LogitDistillation", "Distillation of the output logits, scaled by T^2.", fields: [
        Field("head", .identifier, default: .string("segmentation"), "Head compared on both sides."),
        Field("temperature", .positiveNumber, default: .number(4), "Temperature T."),
        Field("weight", .nonNegativeNumber, default: .number(1), "Weight in the total loss."),
    ], discriminator: Discriminator(key: "kind", [
        .init("binary_kl", "Bernoulli KL on sigmoid outputs, for 1-channel heads."),
        .init("kl", "Softmax KL over channels, for heads with 2 or more channels.", [
            Field("accept_zero_gradient", .boolean, default: .bool(false),
                  "Allow softmax KL on a 1-channel head (identically zero: the study's defect, reproduced on purpose)."),
        ]),
    ]))
}

extension SupConTerm {
    public static let declaration = ObjectSchema("SupCon", "Supervised pixel contrast on one student tap (labels from the down-sampled mask).", fields: [
        Field("tap", .string, required: true, "The student tap whose pixels are contrasted."),
        Field("temperature", .positiveNumber, default: .number(0.1), "Softmax temperature."),
        Field("samples_per_class", .integer(SupConTerm.samplesRange), default: .int(64), "Pixels sampled per class per image (seeded)."),
        Field("weight", .nonNegativeNumber, default: .number(1), "Weight in the total loss."),
    ])
}

extension WeightRename {
    public static let declaration = ObjectSchema("Rename",
        "One rewrite of a weight file's tensor names, applied in order: exactly one of `prefix`, `regex` or `drop`.", fields: [
        Field("prefix", .string, "Names starting with this text get `to` in its place (`module.` -> ``)."),
        Field("regex", .string, "Every match of this regular expression is replaced by `to`; `$1`... insert its groups."),
        Field("drop", .string, "Names matching this regular expression are not loaded."),
        Field("to", .string, "The replacement, for `prefix` and `regex`."),
    ], exactlyOne: ["prefix", "regex", "drop"])
}

extension EvaluateConfiguration {
    public static let declaration = ObjectSchema("Evaluate", "Metrics on the test split, measured on each test case's own voxel grid: its predictions placed back in the volume, against its label file.", fields: [
        Field("metrics", .list(.enumeration(EvaluationMetric.names), minCount: 1, maxCount: nil),
              default: .list(["dice", "iou", "precision", "recall"].map { .string($0) }), "Metrics reported."),
        Field("pooling", .enumeration(MetricPooling.names), default: .string("both"),
              "Global: TP/FP/FN summed over all test slices (the study); per case: mean and sd over patients."),
        Field("threshold", .number(min: nil, exclusiveMin: false, max: nil), default: .number(0.5), "Decision threshold."),
        Field("nsd_tolerance", .oneOf([.positiveNumber, .dictionary(.positiveNumber, keys: .identifier)]), default: .number(2),
              "Tolerance of the normalised surface distance (NSD) in mm: one for every class, or `{class: mm}` for each class (the Decathlon set one per task and class)."),
        Field("threshold_on", .enumeration(ThresholdTarget.names), default: .string("probability"),
              "What the threshold applies to; the study compared logits with 0.5."),
        Field("hd95", .enumeration(HausdorffConvention.names), default: .string("monai"),
              "How HD95 combines the two directions: `monai`, the larger of the directed 95th percentiles (MONAI's `compute_hausdorff_distance`); `medpy`, the 95th percentile of both directions pooled (MedPy's `hd95`), which reads lower."),
        Field("mirror", .list(.enumeration(EvaluateConfiguration.mirrorAxes), minCount: 0, maxCount: 3), default: .list([]), omittedAt: [.list([])],
              "3D: test-time mirroring, as nnU-Net predicts: every window is also predicted flipped along every subset of these axes and the logits averaged (2^k passes); `[depth, height, width]` for nnU-Net's default."),
    ])
}

extension ComparisonSettings {
    public static let declaration = ObjectSchema("Report", "How `distill report` compares each distilled student with its baseline over training runs and test cases.", fields: [
        Field("alpha", .number(min: 0, exclusiveMin: true, max: 0.5), default: .number(0.05), "Level of every test, after Holm's correction over the report's comparisons."),
        Field("power", .number(min: 0.5, exclusiveMin: false, max: 0.9999), default: .number(0.8), "Power of the runs-needed estimate: how many seeds per arm would detect an effect this often."),
        Field("min_effect", .positiveNumber, "The smallest difference in Dice worth detecting; the report says how many seeds per arm would detect it, beside the observed effect."),
        Field("variance", .object(PlannedVariance.declaration), "Variance components to plan with: `distill plan` says what the design can detect and which design would reach `min_effect` or `margin` (`distill plan --from-store` takes them from a finished study instead)."),
        Field("margin", .positiveNumber, "The equivalence margin in Dice: with it, a comparison whose difference lies within +-margin (two one-sided tests, Holm-adjusted with every other claim) reads \"equivalent\"; without it no comparison can."),
    ])
}

extension PlannedVariance {
    public static let declaration = ObjectSchema("Variance", "Standard deviations (in Dice) of a distilled-minus-baseline difference, by source; each is required.", fields: [
        Field("teacher", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Between teacher runs."),
        Field("seed", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Between student seeds (the baseline's and the distilled student's shared draws)."),
        Field("case", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Between test cases."),
        Field("teacher_seed", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Teacher run x seed: each distilled run's own."),
        Field("teacher_case", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Teacher run x test case."),
        Field("seed_case", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Seed x test case."),
        Field("residual", .number(min: 0, exclusiveMin: false, max: 1), required: true, "Teacher run x seed x test case."),
    ])
}

extension TrainingConfiguration {
    /// The fields of a spec's `train` stage that the configuration keeps as written: declared
    /// once, for the spec checker (SpecSchema's stage) and for this configuration's reader.
    public static let recipe: [Field] = [
        Field("epochs", .integer(min: 1, max: 100_000), required: true, "Training epochs."),
        Field("batch", .integer(min: 1, max: 65536), required: true, "Batch size; `auto` in 3D: the recipe's (nnU-Net's rule: what `execution.memory` holds, at most 5% of the dataset's voxels, at least 2)."),
        Field("seed", .nonNegativeInteger, default: .int(42), "Seed of initialisation, shuffling and sampling."),
        Field("clip_grad_norm", .positiveNumber, "Clip the global gradient norm to this value."),
    ]

    /// What the reader checks the encoded configuration's own fields against (the others are
    /// objects with their own declarations, or resolved by the planner: model, subset, init file).
    static let recipeDeclaration = ObjectSchema("TrainingRecipe", "A training stage's fields as its spec writes them.", fields: recipe)
}

extension ModelArchitecture {
    static let headsType = SchemaType.dictionary(.integer(min: 1, max: 4096), keys: .identifier)
    static let widthsType = SchemaType.list(.integer(min: 1, max: 16384), minCount: 1, maxCount: 8)

    static func unetFields(heads defaultHeads: [(String, Int)]) -> [Field] {
        [
            Field("widths", widthsType, required: true, "Channels of each encoder level, full resolution first; the depth is its length. `auto` (3D): nnU-Net's, 32 doubling up to 320, one level per pooling the data's recipe allows."),
            Field("bottleneck", .integer(min: 1, max: 65536), required: true, "Channels of the bottleneck block; `auto` (3D): nnU-Net's for the recipe's depth."),
            Field("convs_per_block", .integer(min: 1, max: 8), default: .int(2), "3x3 conv + norm + ReLU units per block."),
            Field("norm", .enumeration(NormKind.names), default: .string("batch"), "Normalisation after each conv."),
            Field("groups", .positiveInteger, default: .int(8), "Groups of `norm: group`."),
            Field("up", .enumeration(UpsamplingKind.names), default: .string("transpose"), "Decoder up-sampling."),
            Field("dims", .integer(2...3), default: .int(2), omittedAt: [.int(2)], "2: a U-Net over slices (3x3 kernels, 2x2 pooling); 3: over volumes, trained on patches (`data.preprocess.patch`), with `kernels` and `pools`."),
            Field("kernels", .list(.list(.integer(VolumeLevels.kernelRange), minCount: 3, maxCount: 3), minCount: 2, maxCount: 9),
                  omittedAt: [.null], "With `dims: 3`: the convolution kernel `[depth, height, width]` of each encoder level, then the bottleneck's (one more than `widths`; odd sides). Default: `[3, 3, 3]` at every level. `auto`: the data's recipe (a side is 3 once its axis is within a factor 2 of the finest spacing), its first levels for a shallower network."),
            Field("pools", .list(.list(.integer(VolumeLevels.poolRange), minCount: 3, maxCount: 3), minCount: 1, maxCount: 8),
                  omittedAt: [.null], "With `dims: 3`: the pooling `[depth, height, width]` after each encoder level (as many as `widths`), mirrored by the decoder's transposed convolutions; nnU-Net's plans for thick slices start with `[1, 2, 2]`. Default: `[2, 2, 2]` at every level. `auto`: the data's recipe (nnU-Net pools the axes within a factor 2 of the finest spacing while their maps keep 8 voxels), its first levels for a shallower network, so a student pools as its teacher."),
            Field("heads", headsType, default: .object(defaultHeads.map { ($0.0, .int($0.1)) }),
                  "Output heads and their channels."),
        ]
    }

    static let vitDeclaration = ObjectSchema("ViT", "The transformer bottleneck of a TransUNet.", fields: [
        Field("blocks", .integer(min: 0, max: 64), default: .int(8), "Post-norm transformer blocks."),
        Field("heads", .integer(min: 1, max: 128), default: .int(12), "Attention heads; each has floor(dim/heads) features."),
        Field("dim", .integer(min: 1, max: 16384), default: .int(256), "Token width."),
        Field("mlp", .integer(min: 1, max: 65536), default: .int(2048), "MLP hidden width."),
        Field("patch", .integer(min: 1, max: 64), default: .int(16), "Patch side on the deepest CNN map."),
    ])

    public static let declaration = ObjectSchema("Model", "A network architecture; its `arch` decides which keys apply.", fields: [
        Field("in_channels", .integer(min: 1, max: 64), "Input channels; default: `data.preprocess.channels`."),
    ], discriminator: Discriminator(key: "arch", [
        .init("unet", "A U-Net with one decoder (the study's students).", unetFields(heads: [("segmentation", 1)])),
        .init("multitask_unet", "A U-Net with a shared encoder and one decoder per head (the study's T1).",
              unetFields(heads: [("segmentation", 1), ("reconstruction", 3)])),
        .init("transunet", "A hybrid CNN + ViT encoder with bilinear decoders, one per head (the study's T2).", [
            Field("stem_width", .integer(min: 1, max: 16384), default: .int(128), "Channels of the 7x7 stride-2 stem."),
            Field("stage_widths", widthsType, default: .list([256, 512, 1024].map { .int($0) }), "Residual stage widths, each stride 2."),
            Field("bottleneck", .integer(min: 1, max: 65536), default: .int(512), "Channels of the conv after the ViT."),
            Field("decoder_widths", widthsType, default: .list([256, 128, 64, 16].map { .int($0) }), "Decoder block widths, deepest first."),
            Field("vit", .object(vitDeclaration), default: .object([]), "The transformer bottleneck."),
            Field("heads", headsType, default: .object([("segmentation", 1), ("reconstruction", 3)].map { ($0.0, .int($0.1)) }),
                  "Output heads and their channels."),
        ]),
    ]))
}

extension Preprocessing {
    /// The normalisations a name alone selects; `percentile` needs its percentiles (a mapping).
    public static let normalizationName = SchemaType.enumeration(Normalization.Kind.allCases.filter { $0 != .percentile }.map(\.rawValue))

    static let zscoreDeclaration = ObjectSchema("ZScore", "Per-volume z-score.", fields: [
        Field("mask", .enumeration(ZScoreMask.names), default: .string("all"),
              "`all` voxels, or `nonzero` ones (the others stay 0, as nnU-Net's `use_mask_for_norm`)."),
    ])

    static let normalizationDeclaration = ObjectSchema("Normalization", "A normalisation with settings: exactly one of `zscore` or `percentile`.", fields: [
        Field("zscore", .object(zscoreDeclaration), "Per-volume z-score with a mask."),
        Field("percentile", .list(.number(min: Normalization.percentileRange.lowerBound, exclusiveMin: false, max: Normalization.percentileRange.upperBound), minCount: 2, maxCount: 2),
              "`[low, high]` percentiles of the training cases' foreground voxels to clip to, then z-score with their mean and sd."),
    ], exactlyOne: ["zscore", "percentile"])

    public static let declaration = ObjectSchema("Preprocess", "How volumes become network inputs: 2D slices, or (with `patch`) resampled volumes for 3D networks.", fields: [
        Field("slice_axis", .enumeration(SliceAxis.names), default: .string("axial"),
              "Which axis slices are taken along, after reorientation to a canonical axis order."),
        Field("window", .oneOf([.list(.number(min: nil, exclusiveMin: false, max: nil), minCount: 2, maxCount: 2), .enumeration(["clip255"])]),
              default: .list([.number(-160), .number(240)]),
              "Intensity window `[low, high]` in HU, scaled to [0, 1]; or `clip255`, the study's clip to [0, 255] then /255."),
        Field("modalities", .list(.string, minCount: 1, maxCount: 64),
              "Modalities (names from dataset.json's `modality`, e.g. `[T2, ADC]`) that become input channels, in this order; without it the dataset must have one."),
        Field("normalize", .oneOf([normalizationName, .object(normalizationDeclaration), .list(.oneOf([normalizationName, .object(normalizationDeclaration)]), minCount: 1, maxCount: 64)]),
              default: .string("window"),
              "How intensities are normalised: `window` (the `window` above, for CT), `zscore` (per volume), `{zscore: {mask: nonzero}}` (per volume, over non-zero voxels; the rest stay 0), or `{percentile: [0.5, 99.5]}` (clip to the training cases' foreground percentiles, then z-score with their mean and sd, as nnU-Net does for CT). A list gives one per modality, in the order of `modalities`."),
        Field("size", .oneOf([.integer(min: 8, max: 2048), .list(.integer(min: 8, max: 2048), minCount: 2, maxCount: 2)]),
              default: .int(256), "Target slice size: one side, or `[height, width]`."),
        Field("channels", .integer(min: 1, max: 64), default: .int(1),
              "Input channels: the number of modalities; with one modality, 1 or 3 (the grey value replicated, as the study's RGB PNGs)."),
        Field("keep_empty", .number(min: 0, exclusiveMin: false, max: 1), default: .number(1),
              "Share of slices without foreground that are kept."),
        Field("patch", .list(.integer(VolumeSampling.patchRange), minCount: 3, maxCount: 3),
              omittedAt: [.null], "3D: volumes are resampled whole (to `spacing`) and networks with `dims: 3` train on random patches of `[depth, height, width]` voxels, depth along `slice_axis`, a third of them centred on foreground (nnU-Net's 3d_fullres); `size` and `keep_empty` then do not apply. `auto`: computed from the data's fingerprint by nnU-Net's rules (the spacing's aspect at the volume of 256^3, at most the median case, fitted to `execution.memory`)."),
        Field("spacing", .oneOf([.enumeration(["median"]), .list(.positiveNumber, minCount: 3, maxCount: 3)]),
              omittedAt: [.null], "3D: the spacing in mm `[depth, height, width]` volumes are resampled to (third-order B-spline for images, linear on one-hot for labels), or `median`, the training cases' median spacing (the default here), or `auto`, nnU-Net's rule: the median, except that the coarse axis of anisotropic data (over 3 times the others' spacing, under a third of their voxels) takes the 10th percentile of its spacings."),
    ])
}

extension SubsetLevel {
    public static let declaration = ObjectSchema("Subset", "A named share of a split part that a stage trains on.", fields: [
        Field("fraction", .fraction, required: true, "Share of the parent drawn (seeded by the split seed)."),
        Field("of", .identifier, "Parent subset: this one is drawn inside it (the student's half inside the teacher's full)."),
        Field("part", .enumeration(SplitPart.names), default: .string("train"), "Which split part it is drawn from."),
        Field("stratify", .boolean, default: .bool(false), "Draw so that the share of slices with foreground is kept."),
    ])
}
