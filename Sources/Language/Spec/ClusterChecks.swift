import Diagnostics
import Foundation
import StageConfig

/// What `execution.slurm` asks of a cluster, checked with the rest of the spec: every
/// rule `distill submit` applies is a located diagnostic here, so a spec that checks
/// clean submits; and nothing that reaches a job script can run a command.
enum ClusterChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [stageNodes, times, scriptValues, names, memory, extraOptions]

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

extension ClusterChecks {
    /// `partition`, `account` and `qos` are scheduler names: one word each.
    static func names(_ spec: Spec) -> [Diagnostic] {
        guard let slurm = spec.slurm, let s = node(spec) else { return [] }
        return [("partition", slurm.partition, true), ("account", slurm.account, false), ("qos", slurm.qos, true)].compactMap { key, value, list in
            guard let value, !SlurmSettings.isName(value, list: list),
                  !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return nil }
            return Diagnostic(SpecDiagnostics.badSlurmName,
                              "execution.slurm.\(key) '\(value)' is not a Slurm name: letters, digits and _ . - +\(list ? ", names separated by commas" : "")",
                              at: s[key]?.range, path: "execution.slurm.\(key)",
                              notes: [DiagnosticNote("a space would make the rest of the value more `#SBATCH` options")])
        }
    }

    /// `mem` as sbatch reads `--mem`: a whole number with an optional unit K, M, G or T.
    static func memory(_ spec: Spec) -> [Diagnostic] {
        guard let mem = spec.slurm?.mem, let s = node(spec) else { return [] }
        if SlurmSettings.isMemory(mem) { return [] }
        return [Diagnostic(SpecDiagnostics.badMemory, "execution.slurm.mem '\(mem)' is not a memory size like 16G, 16000M or 16000 (megabytes)",
                           at: s["mem"]?.range, path: "execution.slurm.mem")]
    }

    /// The options every job script sets itself, from its own fields: an `extra` entry may not set them again.
    static let ownOptions: [String: String] = [
        "output": "the job's log goes to its stage folder", "o": "the job's log goes to its stage folder",
        "error": "the job's log goes to its stage folder", "e": "the job's log goes to its stage folder",
        "chdir": "the job runs where it was submitted", "D": "the job runs where it was submitted",
        "job-name": "each job is named after its stage", "J": "each job is named after its stage",
        "dependency": "the plan sets each job's dependencies", "d": "the plan sets each job's dependencies",
        "wrap": "the job runs its stage",
        "partition": "write execution.slurm.partition", "p": "write execution.slurm.partition",
        "account": "write execution.slurm.account", "A": "write execution.slurm.account",
        "qos": "write execution.slurm.qos", "q": "write execution.slurm.qos",
        "mem": "write execution.slurm.mem", "time": "write execution.slurm.time", "t": "write execution.slurm.time",
        "cpus-per-task": "write execution.slurm.cpus_per_task", "c": "write execution.slurm.cpus_per_task",
        "nodes": "the plan sets each job's nodes", "N": "the plan sets each job's nodes",
        "ntasks": "the plan sets each job's tasks", "n": "the plan sets each job's tasks",
        "ntasks-per-node": "the plan sets each job's tasks",
    ]

    /// Each `extra` entry is one sbatch option (`--name`, `--name=value`, `-x value` is not one
    /// word): no whitespace, and none of the options the script sets itself.
    static func extraOptions(_ spec: Spec) -> [Diagnostic] {
        guard let slurm = spec.slurm, let s = node(spec) else { return [] }
        var out: [Diagnostic] = []
        for (i, option) in slurm.extra.enumerated() {
            let range = s["extra"]?.list[i].range, path = "execution.slurm.extra[\(i)]"
            guard !option.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { continue }
            let name = option.hasPrefix("--") ? String(option.dropFirst(2).prefix { $0 != "=" })
                : option.hasPrefix("-") ? String(option.dropFirst().prefix(1)) : ""
            if name.isEmpty || option.contains(where: \.isWhitespace) {
                out.append(Diagnostic(SpecDiagnostics.badSbatchOption, "execution.slurm.extra[\(i)] '\(option)' is not one sbatch option like --gres=gpu:1",
                                      at: range, path: path, notes: [DiagnosticNote("each entry becomes one `#SBATCH` line; a space would add more options to it")]))
            } else if let why = ownOptions[name] {
                let shown = option.hasPrefix("--") ? "--\(name)" : "-\(name)"
                out.append(Diagnostic(SpecDiagnostics.badSbatchOption, "execution.slurm.extra[\(i)] sets \(shown), which the job script sets itself: \(why)",
                                      at: range, path: path))
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
