import Foundation
import Plan
import Spec
import Testing

/// A stage's hash changes with what changes its result, and with nothing else.
@Suite struct StageHashTests {
    static let spec = """
        name: hash test
        data:
          source: {phantom: {cases: 8}}
          preprocess: {size: 64}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          big: {arch: multitask_unet, widths: [8, 16, 32], bottleneck: 64, heads: {segmentation: 1, reconstruction: 1}}
          small: {arch: unet, widths: [4, 8], bottleneck: 16, convs_per_block: 1}
        stages:
          teacher:
            model: big
            data: full
            loss: [{kind: dice_bce}, {kind: mse, head: reconstruction, weight: 0.2}]
            optimizer: {kind: adamw, lr: 1.0e-3}
            epochs: 2
            batch: 4
          baseline:
            model: small
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: adamw, lr: 1.0e-3}
            epochs: 2
            batch: 4
          kd:
            model: small
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: rmsprop, lr: 1.0e-2}
            epochs: 2
            batch: 4
            distill:
              teacher: teacher
              taps:
                ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}, loss: {kind: infonce, temperature: 0.4}}
              logits: {kind: binary_kl, temperature: 4}

        """

    func hashes(_ text: String) throws -> [String: String] {
        PlanSupport.hashes(try PlanSupport.plan(text: text))
    }

    @Test func keyOrderCommentsAndDefaultsWrittenOutDoNotChangeHashes() throws {
        let base = try hashes(Self.spec)
        let reordered = Self.spec
            .replacingOccurrences(of: "optimizer: {kind: adamw, lr: 1.0e-3}", with: "optimizer: {lr: 0.001, kind: adamw}  # same thing")
            .replacingOccurrences(of: "name: hash test", with: "name: another title\ndescription: words")
            .replacingOccurrences(of: "    epochs: 2\n    batch: 4\n  baseline:", with: "    batch: 4\n    epochs: 2\n    seed: 42\n  baseline:")
        #expect(try hashes(reordered) == base)
    }

    @Test func renamingStagesModelsAndSubsetsDoesNotChangeHashes() throws {
        let base = try hashes(Self.spec)
        let renamed = Self.spec
            .replacingOccurrences(of: "half", with: "fifty")
            .replacingOccurrences(of: "small", with: "tiny")
        let r = try hashes(renamed)
        #expect(Set(r.values) == Set(base.values))
    }

    @Test func changingALeafChangesExactlyItsStageAndDescendants() throws {
        let base = try hashes(Self.spec)
        // The teacher's learning rate: teacher, its evaluation, kd (which reads the teacher) and kd's evaluation.
        let changed = try hashes(Self.spec.replacingOccurrences(of: "optimizer: {kind: adamw, lr: 1.0e-3}\n    epochs: 2\n    batch: 4\n  baseline:",
                                                                with: "optimizer: {kind: adamw, lr: 2.0e-3}\n    epochs: 2\n    batch: 4\n  baseline:"))
        let moved = Set(base.keys.filter { base[$0] != changed[$0] })
        #expect(moved == ["teacher", "teacher/evaluate", "kd", "kd/evaluate"])
        // A distillation temperature: only kd and its evaluation.
        let kdOnly = try hashes(Self.spec.replacingOccurrences(of: "temperature: 0.4", with: "temperature: 0.2"))
        #expect(Set(base.keys.filter { base[$0] != kdOnly[$0] }) == ["kd", "kd/evaluate"])
        // The evaluation threshold: every evaluation, no training.
        let eval = try hashes(Self.spec + "evaluate: {threshold: 0.4}\n")
        #expect(Set(base.keys.filter { base[$0] != eval[$0] }) == ["teacher/evaluate", "baseline/evaluate", "kd/evaluate"])
        // The data: everything.
        let data = try hashes(Self.spec.replacingOccurrences(of: "cases: 8", with: "cases: 9"))
        #expect(base.keys.allSatisfy { base[$0] != data[$0] })
    }

    @Test func extendsRefactoringDoesNotChangeHashes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-hash-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let split = Self.spec.components(separatedBy: "stages:\n")
        try split[0].write(toFile: dir + "/common.yaml", atomically: true, encoding: .utf8)
        let child = "extends: common.yaml\nstages:\n" + split[1]
        #expect(try PlanSupport.hashes(PlanSupport.plan(text: child, directory: dir)) == hashes(Self.spec))
    }

    @Test func renamedVariantsKeepTheirStageHashes() throws {
        let a = try PlanSupport.plan(text: Self.spec + "sweep:\n  axes:\n    t: {path: stages.kd.distill.taps.ee.loss.temperature, values: {cold: 0.1, warm: 0.4}}\n")
        let b = try PlanSupport.plan(text: Self.spec + "sweep:\n  axes:\n    temp: {path: stages.kd.distill.taps.ee.loss.temperature, values: {t01: 0.1, t04: 0.4}}\n")
        #expect(PlanSupport.hashes(a, variant: 0) == PlanSupport.hashes(b, variant: 0))
        #expect(PlanSupport.hashes(a, variant: 1) == PlanSupport.hashes(b, variant: 1))
        #expect(PlanSupport.hashes(a, variant: 1) == PlanSupport.hashes(try PlanSupport.plan(text: Self.spec)))
    }

    @Test func inactiveTermsDoNotChangeTheHash() throws {
        let base = try hashes(Self.spec.replacingOccurrences(of: "teacher: teacher\n", with: "teacher: teacher\n      use: [logits]\n"))
        let other = try hashes(Self.spec.replacingOccurrences(of: "teacher: teacher\n", with: "teacher: teacher\n      use: [logits]\n")
            .replacingOccurrences(of: "temperature: 0.4", with: "temperature: 0.9"))
        #expect(base == other)
    }
}
