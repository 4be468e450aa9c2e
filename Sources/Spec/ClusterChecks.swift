import Diagnostics
import StageConfig

/// What `execution.slurm` asks of a cluster, checked with the rest of the spec: every
/// rule `distill submit` applies is a located diagnostic here, so a spec that checks
/// clean submits; and nothing that reaches a job script can run a command.
enum ClusterChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [stageNodes, times, scriptValues]

    static func node(_ spec: Spec) -> Value? { spec.document["execution"]?["slurm"] }

    /// `stage_nodes` names training stages that a split over ranks computes exactly.
    static func stageNodes(_ spec: Spec) -> [Diagnostic] {
        guard spec.slurm != nil, let members = node(spec)?["stage_nodes"]?.members else { return [] }
        var out: [Diagnostic] = []
        for m in members {
            let path = "execution.slurm.stage_nodes.\(m.key)"
            if spec.pretrainedStage(m.key) != nil {
                out.append(Diagnostic(SpecDiagnostics.cannotSplit, "'\(m.key)' takes its weights from a file: only stages trained here run on several nodes",
                                      at: m.keyRange, path: path))
                continue
            }
            guard spec.stage(m.key) != nil else {
                out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownStage, "stage", Ref(name: m.key, range: m.keyRange), spec.stageNames, path: path, plural: "stages"))
                continue
            }
        }
        return out
    }

    /// `time` and `max_time` are times sbatch reads.
    static func times(_ spec: Spec) -> [Diagnostic] {
        guard let slurm = spec.slurm, let s = node(spec) else { return [] }
        return [("time", slurm.time), ("max_time", slurm.maxTime)].compactMap { key, value in
            guard let value, SlurmSettings.seconds(value) == nil else { return nil }
            return Diagnostic(SpecDiagnostics.badTime, "execution.slurm.\(key) '\(value)' is not a time like 2-00:00:00, 12:00:00 or 90 (minutes)",
                              at: s[key]?.range, path: "execution.slurm.\(key)")
        }
    }

    /// A value written into a job script holds no line break or other control character:
    /// a shared spec must not smuggle a command into `#SBATCH --partition=...`.
    static func scriptValues(_ spec: Spec) -> [Diagnostic] {
        guard let slurm = spec.slurm, let s = node(spec) else { return [] }
        return slurm.scriptValues.compactMap { key, value in
            guard let bad = value.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) else { return nil }
            let range = key.hasPrefix("extra[") ? s["extra"]?.list[Int(key.dropFirst(6).dropLast()) ?? 0].range : s[key]?.range
            return Diagnostic(SpecDiagnostics.scriptInjection,
                "execution.slurm.\(key) holds a control character (U+\(String(bad.value, radix: 16, uppercase: true).leftPadded(4))): it would be written into a job script",
                at: range, path: "execution.slurm.\(key)", notes: [DiagnosticNote("a value reaches `#SBATCH` lines as one line of text; write it without line breaks")])
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
