import Architecture
import Diagnostics

/// The typed IR of one checked spec (or one sweep variant of it).
///
/// Every field is documented in SpecSchema (the single description of the
/// language); the IR keeps the `Value` each part came from so that checks can
/// point at the exact key the user wrote.
public struct Spec: Sendable {
    public var name: String?
    public var data: DataSpec
    public var models: [ModelSpec]
    public var stages: [StageSpec]
    public var evaluate: EvaluateSpec
    /// The whole document with every default explicit (`distill plan --lock` writes it).
    public var document: Value

    public func model(_ name: String) -> ModelSpec? { models.first { $0.name == name } }
    public func stage(_ name: String) -> StageSpec? { stages.first { $0.name == name } }
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
    public func double(_ key: String) -> Double? { self[key]?.number }
    public func integer(_ key: String) -> Int? { self[key]?.int }
    public func text(_ key: String) -> String? { self[key]?.string }
    public func flag(_ key: String) -> Bool { self[key]?.bool ?? false }
}

// MARK: data

public enum DataSource: Sendable {
    case msd(path: String)
    case phantom(PhantomSpec)
}

public struct PhantomSpec: Hashable, Sendable {
    public var cases: Int, seed: Int, size: Int, slices: Int
    public var noise: Double, hardCases: Double
}

public enum IntensityWindow: Hashable, Sendable {
    /// HU window scaled to [0, 1].
    case hounsfield(low: Double, high: Double)
    /// The study's implicit clip to [0, 255] then division by 255.
    case clip255
}

public struct SubsetSpec: Sendable {
    public var name: String
    public var fraction: Double
    public var parent: Ref?
    public var part: String
    public var stratify: Bool
    public var source: Value
}

public struct DataSpec: Sendable {
    public var source: DataSource
    public var foreground: [Int]
    public var sliceAxis: String
    public var window: IntensityWindow
    public var height: Int, width: Int
    public var channels: Int
    public var keepEmpty: Double
    public var splitUnit: String
    public var testFraction: Double, valFraction: Double
    public var splitSeed: Int
    public var folds: Int?, fold: Int?
    public var subsets: [SubsetSpec]
    public var value: Value

    public func subset(_ name: String) -> SubsetSpec? { subsets.first { $0.name == name } }
}

// MARK: models

public struct ModelSpec: Sendable {
    public var name: String
    public var architecture: ModelArchitecture
    public var source: Value
    public var nameRange: SourceRange?
}

// MARK: stages

public struct LossTermSpec: Sendable {
    public var kind: String
    public var head: String
    public var weight: Double
    /// Kind-specific settings (smooth, gamma, target), as written or defaulted.
    public var source: Value
}

public struct OptimizerSpec: Sendable {
    public var kind: String
    public var lr: Double
    /// Every hyperparameter of the kind, defaults filled (momentum, betas, eps, ...).
    public var source: Value
}

public struct ScheduleSpec: Sendable {
    public var kind: String
    public var warmupEpochs: Int
    public var source: Value
}

public enum InitSource: Sendable {
    case stage(Ref)
    case file(String)
}

public struct AdapterSpec: Sendable {
    public var side: String
    public var kind: String
    public var trainable: Bool
    public var reinitEachStep: Bool
    public var source: Value
}

public struct TapPairSpec: Sendable {
    public var name: String
    public var teacher: Ref
    public var student: Ref
    public var adapter: AdapterSpec?
    public var resample: String
    public var lossKind: String
    public var weight: Double
    public var source: Value
}

public struct LogitDistillationSpec: Sendable {
    public var kind: String
    public var head: String
    public var temperature: Double
    public var weight: Double
    public var acceptZeroGradient: Bool
    public var source: Value
}

public struct SupConSpec: Sendable {
    public var tap: Ref
    public var temperature: Double
    public var samplesPerClass: Int
    public var weight: Double
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
}

public struct StageSpec: Sendable {
    public var name: String
    public var nameRange: SourceRange?
    public var model: Ref
    public var data: Ref
    public var loss: [LossTermSpec]
    public var optimizer: OptimizerSpec
    public var schedule: ScheduleSpec
    public var epochs: Int
    public var batch: Int
    public var seed: Int
    public var clipGradNorm: Double?
    public var selectMetric: String
    public var selectSplit: String
    public var initFrom: InitSource?
    public var distill: DistillSpec?
    public var source: Value
}

public struct EvaluateSpec: Sendable {
    public var metrics: [String]
    public var pooling: String
    public var threshold: Double
    public var thresholdOn: String
    public var source: Value
}
