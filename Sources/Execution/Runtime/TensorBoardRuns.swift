import Foundation
import Interchange
import Plan
import StageConfig

/// Training curves for TensorBoard. Each training stage keeps its scalars, one step
/// per epoch, in `stages/<hash>/scalars.tb-events` (a TensorBoard event file,
/// rewritten from the committed epochs after each one). The store's `tensorboard/`
/// folder names them as the spec does, `tensorboard/<spec>/<variant>/<stage>/`, by
/// relative links, so that `tensorboard --logdir runs` shows one run per stage under
/// the spec's names (a stage shared by variants, a teacher say, under the first).
public enum TensorBoardRuns {
    /// Not matched by TensorBoard's "tfevents" rule, so stages/ adds no unnamed runs.
    static let fileName = "scalars.tb-events"
    public static let folder = "tensorboard"

    /// An epoch's metrics record as tagged scalars: `train/<term>`, `val/<metric>`, `lr`.
    static func scalars(_ record: JSON) -> [(tag: String, value: Float)] {
        guard case .object(let fields) = record else { return [] }
        var out: [(tag: String, value: Float)] = []
        for key in fields.keys.sorted() where key != "epoch" {
            guard let v = fields[key]?.number else { continue }
            let tag: String
            if key.hasPrefix("train_") { tag = "train/" + key.dropFirst(6) } else if key.hasPrefix("val_") { tag = "val/" + key.dropFirst(4) } else { tag = key }
            out.append((tag, Float(v)))
        }
        return out
    }

    /// A name that is one folder: letters, digits and `._=,+-` kept, anything else `_`.
    static func component(_ s: String) -> String {
        let kept = s.unicodeScalars.map { c -> Character in
            CharacterSet.alphanumerics.contains(c) || "._=,+-".unicodeScalars.contains(c) ? Character(c) : "_"
        }
        let name = String(kept)
        return name.isEmpty || name.hasPrefix(".") ? "_" + name : name
    }

    /// The folder of the stage's run in tensorboard/, relative to the store: nil when no variant trains it.
    public static func runFolder(_ hash: String, plan: ExecutionPlan) -> String? {
        for v in plan.variants {
            if let s = v.stages.first(where: { $0.train == hash }) {
                return [folder, component(plan.specName ?? "spec"), component(v.name.isEmpty ? "base" : v.name), component(s.name)].joined(separator: "/")
            }
        }
        return nil
    }

    /// Links the stage's event file into tensorboard/ (once; a failure costs the curves, never the stage).
    static func link(_ hash: String, plan: ExecutionPlan, store: RunStore) {
        guard let run = runFolder(hash, plan: plan) else { return }
        let dir = store.root + "/" + run
        let link = "\(dir)/events.out.tfevents.\(hash.prefix(12))"
        let fm = FileManager.default
        if (try? fm.destinationOfSymbolicLink(atPath: link)) != nil { return }
        let depth = run.split(separator: "/").count
        let target = String(repeating: "../", count: depth) + "stages/\(hash)/\(fileName)"
        try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? fm.createSymbolicLink(atPath: link, withDestinationPath: target)
    }

    /// Links every trained stage of the plan that has curves in the store.
    public static func linkAll(_ plan: ExecutionPlan, store: RunStore) {
        for stage in plan.stages {
            guard case .train = stage.config, FileManager.default.fileExists(atPath: store.file(stage.hash, fileName)) else { continue }
            link(stage.hash, plan: plan, store: store)
        }
    }
}
