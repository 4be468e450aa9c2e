import Foundation
import NN
import Plan
import StageConfig
import Tensor

/// The `teacher_outputs` stage: the frozen teacher's taps and logits over a
/// student's training slices, computed once and stored in fp16 so that every
/// distill stage reading them skips the teacher's forward pass.
enum TeacherOutputsStage {
    static func run(_ stage: PlanStage, _ c: TeacherOutputsConfiguration, _ ctx: StageContext) throws {
        let data = try PreparedData.open(try ctx.input("data").hash, ctx)
        let teacherStage = try ctx.input("teacher")
        let model = try ModelInput.build(try teacherStage.producedModel(), for: data.set, classes: data.classes, seed: 0)
        try Checkpoint.loadModel(model, from: ctx.store.file(teacherStage.hash, "best.safetensors"))
        let slices = data.split.subset(c.subset, of: data.set, seed: data.seed)
        let taps = c.taps
        var outputs: [String: Tensor] = [:]
        let batch = 8
        for b in stride(from: 0, to: slices.count, by: batch) {
            let idx = Array(slices[b..<min(slices.count, b + batch)])
            let (images, _) = data.set.batch(idx)
            let out = Tape.noGrad { model.forward(Variable(images), training: false, taps: Set(taps)) }
            for t in taps {
                guard let v = out.taps[t]?.value, v.shape.count > 1 else { throw RuntimeError.badPlan("teacher has no tap '\(t)'") }
                let row = v.count / idx.count
                if outputs[t] == nil { outputs[t] = Tensor(uninitialized: [slices.count] + Array(v.shape.dropFirst())) }
                outputs[t]?.pointer.advanced(by: b * row).update(from: v.pointer, count: v.count)
            }
        }
        outputs["slices"] = Tensor(shape: [slices.count], values: slices.map(Float.init))
        try SafetensorsFile.write(outputs, metadata: ["format": "distillery-teacher-outputs"], to: ctx.directory + "/outputs.safetensors",
                                  halfNames: Set(taps))
        ctx.log("cached \(taps.joined(separator: ", ")) for \(slices.count) slices (fp16)")
    }
}
