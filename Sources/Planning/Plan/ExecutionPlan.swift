import Foundation
import StageConfig

/// The estimated bill of one stage.
public struct StageCost: Hashable, Sendable {
    public var parameters = 0
    /// Forward multiply-accumulates per sample of the trained (or evaluated) model.
    public var macsPerSample = 0
    /// Floating-point operations of the whole stage.
    public var flops = 0.0
    /// Peak memory of one step: activations at the stage's batch size, weights, gradients, optimiser state.
    public var memoryBytes = 0
    /// What the stage leaves on disk.
    public var diskBytes = 0
    /// Estimated wall time on this machine.
    public var seconds = 0.0
    /// Optimiser steps (training stages): how often a data-parallel run exchanges gradients.
    public var steps = 0
    /// What a data-parallel step gathers besides the gradients: the rows of every
    /// rank's batch-contrastive embeddings (InfoNCE, SupCon and its labels), as the
    /// doubles of one allreduce.
    public var gatheredBytesPerStep = 0
    /// The work whose measured times this stage's time is built from (not part of the plan file).
    public var work: [MeasuredWork] = []
    /// Whether `seconds` comes from measured work (else from FLOPs at the sgemm rate).
    public var measured = false

    public init() {}

    var json: JSON {
        .object(["parameters": .int(parameters), "macs_per_sample": .int(macsPerSample), "flops": .number(flops.rounded()),
                 "memory_bytes": .int(memoryBytes), "disk_bytes": .int(diskBytes), "seconds": .number((seconds * 10).rounded() / 10),
                 "steps": .int(steps), "gathered_bytes_per_step": .int(gatheredBytesPerStep)])
    }
}

/// One unit of work, named by the hash of everything that determines its result.
public struct PlanStage: Sendable {
    public var hash: String
    /// A human label: `train teacher (t1)`; not part of the identity.
    public var label: String
    /// Upstream stage hashes by role (`data`, `teacher`, `init`, `teacher_outputs`, `model`).
    public var inputs: [String: String]
    /// Everything the runtime needs to execute the stage; its canonical encoding is
    /// what is hashed and what a plan file holds under `params`.
    public var config: StageConfiguration
    public var cost: StageCost
    /// Variants that contain the stage, in sweep order.
    public var variants: [String]
    /// Why the stage exists or was chosen the way it was (the cache decision).
    public var note: String?

    public var shortHash: String { String(hash.prefix(12)) }
    public var kind: StageKind { config.kind }

    public init(hash: String, label: String, inputs: [String: String], config: StageConfiguration, cost: StageCost,
                variants: [String], note: String?) {
        (self.hash, self.label, self.inputs, self.config, self.cost, self.variants, self.note) =
            (hash, label, inputs, config, cost, variants, note)
    }

    /// The stage's hash: kind, runtime format, canonical configuration (without
    /// where data is read from) and the hashes of its inputs by role.
    public static func hash(_ config: StageConfiguration, inputs: [String: String]) -> String {
        // Which cache serves a student is not part of what it computes: the cache holds the teacher's maps (an
        // input already) over the student's subset (in its configuration) in fp16, whatever other students'
        // taps it holds besides. So one cache can serve every student of a teacher, and a cache widened for a
        // new student leaves the finished students' names alone.
        var named = inputs
        if named["teacher_outputs"] != nil { named["teacher_outputs"] = "fp16 cache" }
        return JSON.object(["kind": .string(config.kind.rawValue), "runtime_format": .int(RuntimeFormat.version), "params": config.identity,
                            "inputs": .object(named.mapValues(JSON.string))]).sha256
    }
}

/// One variant's view of the plan: which stage computes each of its spec stages.
public struct PlanVariant: Sendable {
    public var name: String
    public var choices: [(axis: String, value: String)]
    /// Spec stage name -> (training stage hash, evaluation stage hash).
    public var stages: [(name: String, train: String, evaluate: String)]
}

/// The lowered sweep: the runtime's only input.
public struct ExecutionPlan: Sendable {
    public static let format = "distillery-plan"
    public static let formatVersion = 2

    public var specName: String?
    public var stages: [PlanStage]
    public var variants: [PlanVariant]
    public var throughput: Throughput
    /// Where relative data paths resolve (the spec's folder); written by `distill plan --format json`.
    public var baseDirectory: String?
    /// Stage instances before de-duplication: each variant's stages, counted per variant.
    public var plannedInstances: Int { stages.reduce(0) { $0 + $1.variants.count } }

    public func stage(_ hash: String) -> PlanStage? { stages.first { $0.hash == hash } }

    /// The spec's name for a trained stage (`teacher_t2`), or its short hash when no variant names it.
    public func specName(of hash: String) -> String {
        for v in variants { if let s = v.stages.first(where: { $0.train == hash }) { return s.name } }
        return String(hash.prefix(12))
    }

    public var totals: StageCost {
        var t = StageCost()
        for s in stages {
            t.flops += s.cost.flops
            t.seconds += s.cost.seconds
            t.diskBytes += s.cost.diskBytes
            t.memoryBytes = max(t.memoryBytes, s.cost.memoryBytes)
        }
        return t
    }

    /// The stable JSON document a later process (or a Slurm job) executes stage by stage.
    public var json: JSON {
        .object([
            "format": .string(Self.format),
            "version": .int(Self.formatVersion),
            "runtime_format": .int(RuntimeFormat.version),
            "spec": specName.map(JSON.string) ?? .null,
            "throughput": throughput.json,
            "stages": .array(stages.map { s in
                var o: [String: JSON] = [
                    "hash": .string(s.hash), "kind": .string(s.kind.rawValue), "label": .string(s.label),
                    "inputs": .object(s.inputs.mapValues(JSON.string)), "params": s.config.json, "cost": s.cost.json,
                    "variants": .array(s.variants.map(JSON.string)),
                ]
                if let n = s.note { o["note"] = .string(n) }
                return .object(o)
            }),
            "variants": .array(variants.map { v in
                .object([
                    "name": .string(v.name),
                    "choices": .object(Dictionary(v.choices.map { ($0.axis, JSON.string($0.value)) }, uniquingKeysWith: { a, _ in a })),
                    "stages": .object(Dictionary(v.stages.map { ($0.name, JSON.object(["train": .string($0.train), "evaluate": .string($0.evaluate)])) },
                                                 uniquingKeysWith: { a, _ in a })),
                ])
            }),
            "totals": totals.json,
        ].merging(baseDirectory.map { ["base_directory": JSON.string($0)] } ?? [:]) { a, _ in a })
    }

    /// Reads a plan written by `json` (a cluster job runs one stage of it). Every
    /// stage's configuration is read strictly: a missing or unknown field, or a value
    /// the runtime does not know, is a `PlanFormatError.stage` naming the stage, the
    /// field and the value; a stage whose hash does not match its content is refused.
    public init(json: JSON) throws {
        guard json["format"]?.string == Self.format, let stages = json["stages"]?.array else {
            throw PlanFormatError.notAPlan("not a distillery plan (format \(json["format"]?.canonical ?? "missing"))")
        }
        guard json["version"]?.int == Self.formatVersion, json["runtime_format"]?.int == RuntimeFormat.version else {
            throw PlanFormatError.notAPlan("plan format \(json["version"]?.canonical ?? "missing"), runtime format \(json["runtime_format"]?.canonical ?? "missing"); "
                                           + "this runtime reads plan format \(Self.formatVersion), runtime format \(RuntimeFormat.version): plan the spec again")
        }
        specName = json["spec"]?.string
        baseDirectory = json["base_directory"]?.string
        guard let gflops = json["throughput"]?["gflops"]?.number, let source = json["throughput"]?["source"]?.string else {
            throw PlanFormatError.notAPlan("the plan has no throughput")
        }
        throughput = Throughput(gflops: gflops, source: source)
        self.stages = try stages.enumerated().map { i, s in
            guard let hash = s["hash"]?.string, hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
                throw PlanFormatError.notAPlan("stage \(i) has no valid hash")
            }
            let short = String(hash.prefix(12))
            guard let kindText = s["kind"]?.string, let kind = StageKind(rawValue: kindText) else {
                throw PlanFormatError.stage(short, ConfigError(field: "kind", problem: .unknownValue(expected: StageKind.allCases.map(\.rawValue)), value: s["kind"]))
            }
            guard case .object(let inputObject)? = s["inputs"] else {
                throw PlanFormatError.stage(short, ConfigError(field: "inputs", problem: .wrongType(expected: "an object of stage hashes"), value: s["inputs"]))
            }
            var inputs: [String: String] = [:]
            for (role, value) in inputObject {
                guard let h = value.string, h.count == 64, h.allSatisfy(\.isHexDigit) else {
                    throw PlanFormatError.stage(short, ConfigError(field: "inputs.\(role)", problem: .wrongType(expected: "a stage hash"), value: value))
                }
                inputs[role] = h
            }
            let config: StageConfiguration
            do {
                config = try StageConfiguration(kind: kind, params: s["params"] ?? .null)
            } catch let e as ConfigError {
                throw PlanFormatError.stage(short, e)
            }
            guard PlanStage.hash(config, inputs: inputs) == hash else {
                throw PlanFormatError.stage(short, ConfigError(field: "params", problem: .inconsistent("the stage's content does not hash to its name; was the plan edited? plan the spec again"), value: nil))
            }
            return PlanStage(hash: hash, label: s["label"]?.string ?? kind.rawValue, inputs: inputs, config: config, cost: StageCost(),
                             variants: s["variants"]?.array?.compactMap(\.string) ?? [], note: s["note"]?.string)
        }
        variants = try (json["variants"]?.array ?? []).map { v in
            guard let name = v["name"]?.string, case .object(let stageMap)? = v["stages"] else { throw PlanFormatError.notAPlan("a variant lacks a name or stages") }
            let stages = try stageMap.sorted { $0.key < $1.key }.map { name, s -> (name: String, train: String, evaluate: String) in
                guard let train = s["train"]?.string, let evaluate = s["evaluate"]?.string else { throw PlanFormatError.notAPlan("variant stage '\(name)' lacks train or evaluate") }
                return (name, train, evaluate)
            }
            return PlanVariant(name: name, choices: (v["choices"]?.object ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value.string ?? "") },
                               stages: stages)
        }
    }

    public init(specName: String?, stages: [PlanStage], variants: [PlanVariant], throughput: Throughput) {
        self.specName = specName
        self.stages = stages
        self.variants = variants
        self.throughput = throughput
    }
}

/// Why a plan file cannot be executed.
public enum PlanFormatError: Error, CustomStringConvertible {
    /// Not a plan of this format: usage or I/O (exit 2).
    case notAPlan(String)
    /// A stage's content is wrong: the plan would run another experiment (exit 1).
    case stage(String, ConfigError)

    public var description: String {
        switch self {
        case .notAPlan(let s): return s
        case .stage(let hash, let e): return "plan stage \(hash): \(e)"
        }
    }
}

/// The version of what the runtime writes for a stage; part of every stage hash,
/// so a runtime whose outputs change meaning never reuses old results.
public enum RuntimeFormat {
    /// 2: typed stage configurations (every field explicit; hashes of version 1 plans are not reused).
    /// 3: float32 slices with classes, modalities, normalisation and augmentation; batch-norm
    /// sums over eight accumulators (results differ from version 2 in the last bits, so its
    /// stages are not reused).
    /// 4: every slice prepared (keep_empty thins the training part only), label values accounted
    ///    for (`background`), test metrics on each case's own grid (HD95 in mm, NSD), the
    ///    training state committed as one file per epoch.
    public static let version = 4
}
