import ArgumentParser
import Foundation
import Medical
import Plan
import Runtime
import StageConfig

/// `distill data preview --spec S --augment`: training slices as a stage sees them,
/// each beside draws of the spec's `data.augment`, the label outlined by class.
enum AugmentPreview {
    static func run(spec: String, store: String, draws: Int, output: String) throws {
        let (plan, base) = try SpecPlanning.plan(spec, variant: nil, firstVariant: true, fingerprints: store)
        guard let prepare = plan.stages.first(where: { $0.kind == .prepare }), case .prepare(let config) = prepare.config else {
            throw ValidationError("the spec's plan has no data to prepare")
        }
        let augmentation = plan.stages.lazy.compactMap { s -> AugmentationSettings? in
            if case .train(let c) = s.config { return c.augment }
            return nil
        }.first
        guard let augmentation else { throw ValidationError("\(spec) has no data.augment: there is nothing to preview") }
        guard config.preprocess.volume == nil else {
            throw ValidationError("\(spec) trains 3D networks on patches; augmentation previews show slices and are not drawn for patches yet")
        }
        let runs = RunStore(root: store)
        if !runs.isDone(prepare.hash) {
            try SpecPlanning.execute(plan, base: base, store: store, threads: ProcessInfo.processInfo.activeProcessorCount, only: [prepare.hash])
        }
        let set = try SliceSet(path: runs.file(prepare.hash, "slices.bin"))
        let (canvas, slices) = try AugmentationPreview.canvas(set, config, augmentation, draws: draws, title: "Augmented training slices",
                                                              subtitle: "\(spec): data.augment, first channel, label outlined by class")
        try canvas.png(to: output)
        print("wrote \(output): \(slices) training slices, \(draws) draws each")
    }
}
