import Architecture
import Diagnostics
import StageConfig

/// The typed IR of one checked spec (or one sweep variant of it).
///
/// Every setting is a StageConfig type, decoded from the validated document by
/// the same code that reads a plan file, so the checker, the planner and the
/// runtime read one typed value. The IR keeps the `Value` each part came from
/// so that checks can point at the exact key the user wrote.
public struct Spec: Sendable {
    public var name: String?
    public var data: DataSpec
    public var models: [ModelSpec]
    /// Stages trained here.
    public var stages: [StageSpec]
    /// Stages whose weights come from a file (`kind: pretrained`).
    public var pretrained: [PretrainedStageSpec] = []
    public var evaluate: EvaluateSpec
    /// How the report compares stages (`report`).
    public var report: ComparisonSettings
    /// What `distill submit` asks Slurm for (`execution.slurm`, or the schema's defaults);
    /// nil only when the spec's own settings have errors.
    public var slurm: SlurmSettings? = nil
    /// The whole document with every default explicit (`distill plan --lock` writes it).
    public var document: Value

    public func model(_ name: String) -> ModelSpec? { models.first { $0.name == name } }
    public func stage(_ name: String) -> StageSpec? { stages.first { $0.name == name } }
    public func pretrainedStage(_ name: String) -> PretrainedStageSpec? { pretrained.first { $0.name == name } }

    /// The model a stage of either kind produces (what a teacher or `init` reference reads).
    public func producedModel(_ stage: String) -> Ref? {
        self.stage(stage)?.model ?? pretrainedStage(stage)?.model
    }

    /// Every stage name, trained or pretrained.
    public var stageNames: [String] { stages.map(\.name) + pretrained.map(\.name) }
}

/// A name that refers to something else in the spec, with where it was written.
public struct Ref: Hashable, Sendable {
    public var name: String
    public var range: SourceRange?
}

extension Value {
    public func ref(_ key: String) -> Ref? {
        guard let s = self[key]?.string else { return nil }
        return Ref(name: s, range: self[key]?.range ?? range)
    }
    public func text(_ key: String) -> String? { self[key]?.string }
}

// MARK: data

public struct SubsetSpec: Sendable {
    public var name: String
    public var level: SubsetLevel
    public var parent: Ref?
    public var source: Value

    public var fraction: Double { level.fraction }
    public var part: SplitPart { level.part }
}

public struct DataSpec: Sendable {
    public var source: DataSource
    /// What the label values mean (`data.foreground`).
    public var classes: LabelClasses
    /// Label values that are background (`data.background`).
    public var background: [Int]
    public var preprocess: Preprocessing
    public var split: SplitSettings
    public var subsets: [SubsetSpec]
    /// Augmentation of every training stage's batches (`data.augment`); nil for none.
    public var augment: AugmentationSettings?
    public var value: Value

    public func subset(_ name: String) -> SubsetSpec? { subsets.first { $0.name == name } }

    public var height: Int { preprocess.height }
    public var width: Int { preprocess.width }
    public var channels: Int { preprocess.channels }

    /// The subset chain of `name`, root first: what a stage trains on, independent of names.
    public func chain(_ name: String) -> [SubsetSpec] {
        var chain: [SubsetSpec] = []
        var cursor = subset(name)
        while let s = cursor, !chain.contains(where: { $0.name == s.name }) {
            chain.insert(s, at: 0)
            cursor = s.parent.flatMap { subset($0.name) }
        }
        return chain
    }
}

// MARK: models

public struct ModelSpec: Sendable {
    public var name: String
    public var architecture: ModelArchitecture { didSet { taps = architecture.tapManifest } }
    /// The architecture's taps, derived once: the rules read them for every tap pair of every variant.
    public private(set) var taps: TapManifest
    public var source: Value
    public var nameRange: SourceRange?

    public init(name: String, architecture: ModelArchitecture, source: Value, nameRange: SourceRange?) {
        self.name = name
        self.architecture = architecture
        self.taps = architecture.tapManifest
        self.source = source
        self.nameRange = nameRange
    }
}

// MARK: stages

public struct LossTermSpec: Sendable {
    public var term: SupervisedTerm
    public var source: Value
}

public enum InitSource: Sendable {
    case stage(Ref)
    case file(String)
}

public struct TapPairSpec: Sendable {
    public var pair: TapPair
    public var teacher: Ref
    public var student: Ref
    public var source: Value

    public var name: String { pair.name }
}

public struct LogitDistillationSpec: Sendable {
    public var term: LogitTerm
    public var source: Value
}

public struct SupConSpec: Sendable {
    public var term: SupConTerm
    public var tap: Ref
    public var source: Value
}

public struct DistillSpec: Sendable {
    public var teacher: Ref
    public var taps: [TapPairSpec]
    public var logits: LogitDistillationSpec?
    public var supcon: SupConSpec?
    /// Active term names; nil means all.
    public var use: [Ref]?
    public var source: Value

    /// Whether the named term (a tap pair's name, `logits` or `supcon`) is active.
    public func isActive(_ term: String) -> Bool {
        use.map { $0.contains { $0.name == term } } ?? true
    }

    /// The active terms, as the runtime's objective receives them.
    public var activeTerms: DistillationTerms {
        DistillationTerms(pairs: taps.filter { isActive($0.name) }.map(\.pair),
                          logits: logits.flatMap { isActive("logits") ? $0.term : nil },
                          supcon: supcon.flatMap { isActive("supcon") ? $0.term : nil })
    }
}

public struct StageSpec: Sendable {
    public var name: String
    public var nameRange: SourceRange?
    public var model: Ref
    public var data: Ref
    public var loss: [LossTermSpec]
    public var optimizer: OptimizerSettings
    public var schedule: LearningRateSchedule
    public var epochs: Int
    public var batch: Int
    public var seed: Int
    public var clipGradNorm: Double?
    public var select: CheckpointSelection
    public var initFrom: InitSource?
    public var distill: DistillSpec?
    public var source: Value
}

/// A stage whose network is read from a weight file instead of trained.
public struct PretrainedStageSpec: Sendable {
    public var name: String
    public var nameRange: SourceRange?
    public var model: Ref
    /// The file as written, and resolved against the directory of the spec file that names it.
    public var file: String
    public var resolvedFile: String
    public var rename: [WeightRename]
    public var source: Value
}

public struct EvaluateSpec: Sendable {
    public var config: EvaluateConfiguration
    public var source: Value
}
