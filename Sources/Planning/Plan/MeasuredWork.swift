import Architecture
import Foundation
import Hashing
import StageConfig

/// A piece of a stage's work whose time is measured on this machine, not derived from its
/// FLOPs: a training step of one network at its batch, input, objective and optimiser (with
/// a live teacher's forward pass and the augmentation when the stage has them), or a
/// forward pass at a batch (validation, evaluation, teacher outputs). The networks of one
/// study run at rates that differ several times over (direct, Winograd and im2col kernels,
/// memory-bound layers, losses), which one FLOP rate cannot say; a measured step can.
public struct MeasuredWork: Hashable, Sendable {
    public enum Kind: String, Sendable { case train, forward }

    public var kind: Kind
    /// The network's name in the spec (for people; not part of the key).
    public var name: String
    public var model: ModelArchitecture
    /// A sample's spatial extent: [height, width], or [depth, height, width] for a 3D patch.
    public var extent: [Int]
    /// Foreground classes: labels are drawn from 0 ... classes.
    public var classes: Int
    public var batch: Int
    /// A training step's objective and optimiser (empty for a forward pass).
    public var loss: [SupervisedTerm]
    public var optimizer: OptimizerSettings?
    public var clipGradNorm: Double?
    public var distill: DistillationTerms?
    /// The teacher of a distilled step, and whether the step runs it (else its maps come from a cache).
    public var teacher: ModelArchitecture?
    public var teacherLive: Bool
    public var augment: AugmentationSettings?

    public init(kind: Kind, name: String, model: ModelArchitecture, extent: [Int], classes: Int, batch: Int, loss: [SupervisedTerm] = [],
                optimizer: OptimizerSettings? = nil, clipGradNorm: Double? = nil, distill: DistillationTerms? = nil,
                teacher: ModelArchitecture? = nil, teacherLive: Bool = false, augment: AugmentationSettings? = nil) {
        (self.kind, self.name, self.model, self.extent, self.classes, self.batch) = (kind, name, model, extent, classes, batch)
        (self.loss, self.optimizer, self.clipGradNorm, self.distill) = (loss, optimizer, clipGradNorm, distill)
        (self.teacher, self.teacherLive, self.augment) = (teacher, teacherLive, augment)
    }

    public static func forward(_ name: String, _ model: ModelArchitecture, extent: [Int], classes: Int, batch: Int) -> MeasuredWork {
        MeasuredWork(kind: .forward, name: name, model: model, extent: extent, classes: classes, batch: batch)
    }

    /// What determines the time: every field but the name.
    public var json: JSON {
        .object([
            "kind": .string(kind.rawValue), "model": model.json, "extent": .array(extent.map(JSON.int)), "classes": .int(classes),
            "batch": .int(batch), "loss": .array(loss.map(\.json)), "optimizer": optimizer?.json ?? .null,
            "clip": clipGradNorm.map(JSON.number) ?? .null, "distill": distill?.json ?? .null, "teacher": teacher?.json ?? .null,
            "teacher_live": .bool(teacherLive), "augment": augment?.json ?? .null,
        ])
    }

    /// The key a measurement is kept under.
    public var key: String { String(SHA256.hex(json.canonical).prefix(20)) }

    public var description: String {
        let shape = "\(batch) x " + extent.map(String.init).joined(separator: "x")
        switch kind {
        case .train:
            let extras = [distill != nil ? (teacherLive ? "live teacher" : "cached teacher maps") : nil, augment != nil ? "augmented" : nil].compactMap { $0 }
            return "training step of \(name) at \(shape)" + (extras.isEmpty ? "" : " (" + extras.joined(separator: ", ") + ")")
        case .forward:
            return "forward pass of \(name) at \(shape)"
        }
    }
}

/// How many samples the runtime's passes take at once: what the plan's measured work times,
/// and what the stages run (one place for both).
public enum WorkBatch {
    /// 2D validation and evaluation: slices a forward pass takes (Metrics.batches).
    public static let evaluation = 16
    /// 3D validation: patches of one volume a forward pass takes.
    public static let volumeValidation = 2
    /// Teacher outputs: samples a forward pass takes before its maps are written.
    public static let teacherOutputs = 8
}

/// Measured seconds per call of each kind of work, for one machine at one thread count and one
/// build of the runtime (a rebuilt runtime, with other kernels or another rule for choosing them,
/// measures again), kept in the calibration file beside its sgemm rate.
public enum MeasuredSteps {
    /// A call's time, and the resident memory its work added at the peak (nil where it could not be read).
    public struct Measurement: Sendable, Equatable {
        public var seconds: Double
        public var peakBytes: Int?
        public init(seconds: Double, peakBytes: Int?) { (self.seconds, self.peakBytes) = (seconds, peakBytes) }
    }

    /// The key under which the resident memory of a process that has loaded the runtime (and nothing of a stage) is kept.
    public static let processKey = "process"

    static func slot(machine: String, threads: Int) -> String { "\(machine) | \(threads) threads" }

    static func slot(machine: String, threads: Int, build: String) -> String { "\(slot(machine: machine, threads: threads)) | build \(build)" }

    /// Every measurement kept for `machine` at `threads` by runtime build `build`, by key.
    public static func kept(machine: String, threads: Int, build: String, at path: String = Throughput.calibrationPath) -> [String: Measurement] {
        guard let o = Calibration.document(at: path)["steps"]?[slot(machine: machine, threads: threads, build: build)]?.object else { return [:] }
        return o.compactMapValues { j in j["seconds"]?.number.map { Measurement(seconds: $0, peakBytes: j["peak_bytes"]?.int) } }
    }

    /// Keeps measurements (their descriptions beside them, for a reader of the file), and drops what other
    /// builds measured on this machine at these threads: they no longer describe the runtime that runs.
    public static func keep(_ measured: [(work: MeasuredWork, measurement: Measurement)], process: Int?, machine: String, threads: Int,
                            build: String, at path: String = Throughput.calibrationPath) throws {
        var doc = Calibration.document(at: path)
        let slot = slot(machine: machine, threads: threads, build: build), base = self.slot(machine: machine, threads: threads)
        var all = (doc["steps"]?.object ?? [:]).filter { key, _ in key == slot || (key != base && !key.hasPrefix(base + " | build ")) }
        var mine = all[slot]?.object ?? [:]
        let stamp = ISO8601DateFormatter().string(from: Date())
        for m in measured {
            mine[m.work.key] = .object(["seconds": .number(m.measurement.seconds), "peak_bytes": m.measurement.peakBytes.map(JSON.int) ?? .null,
                                        "what": .string(m.work.description), "measured": .string(stamp)])
        }
        if let process {
            mine[processKey] = .object(["seconds": .number(0), "peak_bytes": .int(process), "what": .string("resident memory of the runtime's process"), "measured": .string(stamp)])
        }
        all[slot] = .object(mine)
        doc["steps"] = .object(all)
        try Calibration.write(doc, to: path)
    }
}

extension Throughput {
    /// The measured step times scaled by what the store's finished stages of `plan` took
    /// against their prediction: per kind of work (each stage's first: its training step, or
    /// its forward pass), the median of recorded over predicted time. A second study on the
    /// same machines is planned from what the first one measured. Returns the throughput and
    /// how many stages corrected it.
    public func corrected(by plan: ExecutionPlan, recorded: [String: RecordedCost]) -> (Throughput, stages: Int) {
        var factors: [String: [Double]] = [:]
        for s in plan.stages where s.cost.measured && s.cost.seconds > 0 {
            // Stages of a second or less are mostly fixed costs (reading, writing), not their work.
            guard let key = s.cost.work.first?.key, let took = recorded[s.hash]?.seconds, took >= 2 else { continue }
            factors[key, default: []].append(took / s.cost.seconds)
        }
        var out = self
        for (key, f) in factors {
            let sorted = f.sorted()
            out.steps[key] = (steps[key] ?? 0) * sorted[sorted.count / 2]
        }
        let n = factors.values.reduce(0) { $0 + $1.count }
        if n > 0 { out.source += "; step times corrected by \(n) finished stage\(n == 1 ? "" : "s") of the store" }
        return (out, n)
    }
}
