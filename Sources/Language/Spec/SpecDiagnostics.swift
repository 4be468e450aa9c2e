import Diagnostics

/// The spec layer's diagnostic catalog. Every id is documented, with an example,
/// in grammar/README.md, and each has a golden test in Tests/SpecTests/Fixtures.
public enum SpecDiagnostics {
    /// A spec that passed validation but that its typed configuration cannot read:
    /// the schema and a StageConfig type disagree. A bug in Distillery, never in a spec.
    public static let internalInconsistency = DiagnosticID("E0001", .error, "internal inconsistency between the schema and the runtime's configuration")

    // Structure and types.
    public static let emptySpec = DiagnosticID("E0100", .error, "the spec is empty")
    public static let unknownKey = DiagnosticID("E0201", .error, "unknown key")
    public static let wrongType = DiagnosticID("E0202", .error, "wrong type")
    public static let unknownTap = DiagnosticID("E0203", .error, "unknown tap")
    public static let missingKey = DiagnosticID("E0204", .error, "missing key")
    public static let unknownValue = DiagnosticID("E0205", .error, "value not among the choices")
    public static let outOfRange = DiagnosticID("E0206", .error, "value out of range")
    public static let invalidName = DiagnosticID("E0207", .error, "invalid name")
    public static let exactlyOne = DiagnosticID("E0208", .error, "exactly one key expected")
    public static let listLength = DiagnosticID("E0209", .error, "wrong number of items")
    public static let notASpec = DiagnosticID("E0210", .error, "not a spec")
    public static let noTrainingSet = DiagnosticID("E0211", .error, "split leaves no training set")
    public static let badPattern = DiagnosticID("E0212", .error, "invalid regular expression")

    // References.
    public static let unknownModel = DiagnosticID("E0301", .error, "unknown model")
    public static let unknownSubset = DiagnosticID("E0302", .error, "unknown subset")
    public static let unknownStage = DiagnosticID("E0303", .error, "unknown stage")
    public static let stageCycle = DiagnosticID("E0304", .error, "stages depend on each other in a cycle")
    public static let unknownHead = DiagnosticID("E0305", .error, "unknown head")
    public static let unknownTerm = DiagnosticID("E0306", .error, "unknown distillation term")
    public static let subsetCycle = DiagnosticID("E0307", .error, "subsets nest in a cycle")

    // Shapes.
    public static let channelMismatch = DiagnosticID("E0401", .error, "channel mismatch at a tap pair")
    public static let spatialMismatch = DiagnosticID("E0402", .error, "spatial size mismatch at a tap pair")
    public static let inputSize = DiagnosticID("E0403", .error, "input size does not fit the architecture")
    public static let tokenTap = DiagnosticID("E0404", .error, "token tap where a feature map is needed")
    public static let logitChannels = DiagnosticID("E0405", .error, "teacher and student heads differ in channels")
    public static let lossHead = DiagnosticID("E0406", .error, "loss does not fit its head")
    public static let inChannels = DiagnosticID("E0407", .error, "input channels differ from the data")
    public static let vitShape = DiagnosticID("E0408", .error, "ViT shape is inconsistent")
    public static let headClasses = DiagnosticID("E0410", .error, "segmentation head does not fit the classes")
    public static let badClasses = DiagnosticID("E0411", .error, "classes are inconsistent")
    public static let squareOnly = DiagnosticID("W0412", .warning, "quarter turns of non-square slices")
    public static let weightsMismatch = DiagnosticID("E0413", .error, "weight file does not fit the model")
    public static let uselessResample = DiagnosticID("W0409", .warning, "resample with nothing to resample")
    public static let dimensions = DiagnosticID("E0414", .error, "network and data differ in dimensions")

    // The study's silent defects and leaks.
    public static let softmaxOneChannel = DiagnosticID("E0501", .error, "softmax KL on a 1-channel output is identically zero")
    public static let softmaxOneChannelAccepted = DiagnosticID("W0502", .warning, "softmax KL on a 1-channel output, accepted")
    public static let reinitAdapter = DiagnosticID("W0503", .warning, "adapter is never trained")
    public static let sliceSplit = DiagnosticID("W0504", .warning, "split by slice leaks patients")
    public static let subsetOutsideTeacher = DiagnosticID("E0505", .error, "student data outside the teacher's")
    public static let trainsOnTest = DiagnosticID("E0506", .error, "training data touches the test set")
    public static let selectOnTest = DiagnosticID("W0507", .warning, "checkpoint chosen on the test set")
    public static let thresholdOnLogit = DiagnosticID("W0508", .warning, "threshold applied to logits")
    public static let patientKeyOnSlices = DiagnosticID("E0509", .error, "patient key on a split by slice")

    // Sweeps.
    public static let unknownAxis = DiagnosticID("E0601", .error, "unknown sweep axis")
    public static let badPath = DiagnosticID("E0602", .error, "sweep path does not exist")
    public static let duplicateVariant = DiagnosticID("W0603", .warning, "duplicate variants")
    public static let tooManyVariants = DiagnosticID("E0604", .error, "sweep too large")
    public static let zipLengths = DiagnosticID("E0605", .error, "zipped axes differ in length")
    public static let badExclude = DiagnosticID("E0606", .error, "exclude rule names nothing")
    public static let axisTwice = DiagnosticID("E0607", .error, "axis used twice")
    public static let badAxisValue = DiagnosticID("E0608", .error, "axis value is not a path mapping")
    public static let unusedAxis = DiagnosticID("W0609", .warning, "axis not used")
    public static let reservedAxis = DiagnosticID("E0610", .error, "reserved axis name")
    public static let nothingToSeed = DiagnosticID("E0611", .error, "seeds with no stage to seed")
    public static let seedTwice = DiagnosticID("E0612", .error, "seed listed twice")

    // Execution: what a cluster is asked for.
    public static let cannotSplit = DiagnosticID("E0901", .error, "stage cannot run on several nodes")
    public static let badTime = DiagnosticID("E0902", .error, "not a Slurm time")
    public static let scriptInjection = DiagnosticID("E0903", .error, "control character in a job-script value")
    public static let badSlurmName = DiagnosticID("E0904", .error, "not a Slurm name")
    public static let badMemory = DiagnosticID("E0905", .error, "not a Slurm memory size")
    public static let badSbatchOption = DiagnosticID("E0906", .error, "not one sbatch option")

    // Files and composition.
    public static let unreadable = DiagnosticID("E0701", .error, "file cannot be read")
    public static let extendsCycle = DiagnosticID("E0702", .error, "extends cycle")
    public static let undefinedVariable = DiagnosticID("E0703", .error, "undefined environment variable")
    public static let badInterpolation = DiagnosticID("E0704", .error, "malformed interpolation")
    public static let extendsNotASpec = DiagnosticID("E0705", .error, "extends names a file that is not a spec")

    public static let all: [DiagnosticID] = [
        internalInconsistency, emptySpec,
        unknownKey, wrongType, unknownTap, missingKey, unknownValue, outOfRange, invalidName, exactlyOne, listLength,
        notASpec, noTrainingSet, badPattern,
        unknownModel, unknownSubset, unknownStage, stageCycle, unknownHead, unknownTerm, subsetCycle,
        channelMismatch, spatialMismatch, inputSize, tokenTap, logitChannels, lossHead, inChannels, vitShape, uselessResample, headClasses, badClasses, squareOnly, weightsMismatch, dimensions,
        AutoRecipe.notComputed,
        softmaxOneChannel, softmaxOneChannelAccepted, reinitAdapter, sliceSplit, subsetOutsideTeacher, trainsOnTest,
        selectOnTest, thresholdOnLogit, patientKeyOnSlices,
        unknownAxis, badPath, duplicateVariant, tooManyVariants, zipLengths, badExclude, axisTwice, badAxisValue, unusedAxis,
        reservedAxis, nothingToSeed, seedTwice,
        cannotSplit, badTime, scriptInjection, badSlurmName, badMemory, badSbatchOption,
        unreadable, extendsCycle, undefinedVariable, badInterpolation, extendsNotASpec,
    ]
}
