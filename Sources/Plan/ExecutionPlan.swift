import Foundation

/// What a stage computes.
public enum StageKind: String, Sendable, CaseIterable, Comparable {
    /// Read the dataset, preprocess it, write the split manifest.
    case prepare
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

    public init() {}

    var json: JSON {
        .object(["parameters": .int(parameters), "macs_per_sample": .int(macsPerSample), "flops": .number(flops.rounded()),
                 "memory_bytes": .int(memoryBytes), "disk_bytes": .int(diskBytes), "seconds": .number((seconds * 10).rounded() / 10)])
    }
}

/// One unit of work, named by the hash of everything that determines its result.
public struct PlanStage: Sendable {
    public var hash: String
    public var kind: StageKind
    /// A human label: `train teacher (t1)`; not part of the identity.
    public var label: String
    /// Upstream stage hashes by role (`data`, `teacher`, `init`, `teacher_outputs`, `model`).
    public var inputs: [String: String]
    /// Everything the runtime needs to execute the stage (this is what is hashed).
    public var params: JSON
    public var cost: StageCost
    /// Variants that contain the stage, in sweep order.
    public var variants: [String]
    /// Why the stage exists or was chosen the way it was (the cache decision).
    public var note: String?

    public var shortHash: String { String(hash.prefix(12)) }

    public init(hash: String, kind: StageKind, label: String, inputs: [String: String], params: JSON, cost: StageCost,
                variants: [String], note: String?) {
        (self.hash, self.kind, self.label, self.inputs, self.params, self.cost, self.variants, self.note) =
            (hash, kind, label, inputs, params, cost, variants, note)
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
    public static let formatVersion = 1

    public var specName: String?
    public var stages: [PlanStage]
    public var variants: [PlanVariant]
    public var throughput: Throughput
    /// Where relative data paths resolve (the spec's folder); written by `distill plan --format json`.
    public var baseDirectory: String?
    /// Stage instances before de-duplication: each variant's stages, counted per variant.
    public var plannedInstances: Int { stages.reduce(0) { $0 + $1.variants.count } }

    public func stage(_ hash: String) -> PlanStage? { stages.first { $0.hash == hash } }

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
                    "inputs": .object(s.inputs.mapValues(JSON.string)), "params": s.params, "cost": s.cost.json,
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

    /// Reads a plan written by `json` (a cluster job runs one stage of it).
    public init(json: JSON) throws {
        guard json["format"]?.string == Self.format, let stages = json["stages"]?.array else {
            throw PlanFormatError("not a distillery plan (format \(json["format"]?.string ?? "missing"))")
        }
        guard json["runtime_format"]?.int == RuntimeFormat.version else {
            throw PlanFormatError("plan for runtime format \(json["runtime_format"]?.int ?? 0); this runtime reads format \(RuntimeFormat.version)")
        }
        specName = json["spec"]?.string
        baseDirectory = json["base_directory"]?.string
        throughput = Throughput(gflops: json["throughput"]?["gflops"]?.number ?? Throughput.defaultGflops, source: json["throughput"]?["source"]?.string ?? "plan")
        self.stages = try stages.map { s in
            guard let hash = s["hash"]?.string, hash.count == 64, hash.allSatisfy(\.isHexDigit),
                  let kind = s["kind"]?.string.flatMap(StageKind.init(rawValue:)), let params = s["params"] else {
                throw PlanFormatError("a stage lacks a valid hash, kind or params")
            }
            return PlanStage(hash: hash, kind: kind, label: s["label"]?.string ?? kind.rawValue,
                             inputs: (s["inputs"]?.object ?? [:]).compactMapValues(\.string), params: params, cost: StageCost(),
                             variants: s["variants"]?.array?.compactMap(\.string) ?? [], note: s["note"]?.string)
        }
        variants = (json["variants"]?.array ?? []).map { v in
            PlanVariant(name: v["name"]?.string ?? "", choices: (v["choices"]?.object ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value.string ?? "") },
                        stages: (v["stages"]?.object ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value["train"]?.string ?? "", $0.value["evaluate"]?.string ?? "") })
        }
    }

    public init(specName: String?, stages: [PlanStage], variants: [PlanVariant], throughput: Throughput) {
        self.specName = specName
        self.stages = stages
        self.variants = variants
        self.throughput = throughput
    }
}

public struct PlanFormatError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// The version of what the runtime writes for a stage; part of every stage hash,
/// so a runtime whose outputs change meaning never reuses old results.
public enum RuntimeFormat {
    public static let version = 1
}
