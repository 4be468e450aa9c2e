import Diagnostics
import Plan
import Spec
import StageConfig
import Testing

/// `data.augment` is part of each training stage's identity, and a distilled student
/// that augments reads a live teacher (a cache holds maps of unaugmented slices).
@Suite struct AugmentPlanTests {
    static func spec(augment: String) -> String {
        """
        data:
          source: {phantom: {cases: 8}}
          preprocess: {size: 64}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        \(augment)
        models:
          t: {arch: unet, widths: [8, 16], bottleneck: 16}
          s: {arch: unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1}
        stages:
          teacher: {model: t, data: full, loss: [{kind: dice_bce}], optimizer: {kind: adamw, lr: 0.001}, epochs: 4, batch: 4}
          kd:
            model: s
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: adamw, lr: 0.001}
            epochs: 4
            batch: 4
            distill: {teacher: teacher, taps: {ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}}}}

        """
    }

    @Test func augmentationChangesTrainingStagesAndTurnsTheCacheOff() throws {
        let plain = try PlanSupport.plan(text: Self.spec(augment: ""))
        let augmented = try PlanSupport.plan(text: Self.spec(augment: "  augment: {flip: {}, elastic: {p: 0.3}, gamma: {}}"))
        let (p, a) = (PlanSupport.hashes(plain), PlanSupport.hashes(augmented))
        #expect(p["teacher"] != a["teacher"] && p["kd"] != a["kd"])
        // The data itself is prepared once either way.
        #expect(plain.stages.first { $0.kind == .prepare }?.hash == augmented.stages.first { $0.kind == .prepare }?.hash)
        #expect(plain.stages.contains { $0.kind == .teacherOutputs })
        #expect(!augmented.stages.contains { $0.kind == .teacherOutputs })
        let kd = try #require(augmented.stages.first { $0.kind == .distill })
        #expect(kd.inputs["teacher_outputs"] == nil && kd.note?.contains("augmented batch") == true)
        guard case .train(let c) = kd.config else { Issue.record("not a training stage"); return }
        // `{}` takes the schema's defaults.
        #expect(c.augment?.flip == .init(p: 0.5, horizontal: true, vertical: true))
        #expect(c.augment?.elastic == .init(p: 0.3, alpha: 4, sigma: 16))
        #expect(c.augment?.gamma == .init(p: 0.3, low: 0.7, high: 1.5) && c.augment?.noise == nil)
    }

    @Test func aBackwardRangeIsLocated() throws {
        let checked = SpecChecker.check(source: SourceFile(displayPath: "a.yaml", text: Self.spec(augment: "  augment: {brightness: {range: [1.2, 0.8]}}")))
        let d = try #require(checked.diagnostics.first { $0.path == "data.augment.brightness.range" })
        #expect(d.message == "augment.brightness: the range [1.2, 0.8] runs backwards; write [low, high]")
        #expect(d.range?.startPosition.line == 5)
    }
}
