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
        let set = try data.slices(for: "a teacher-output cache")
        let teacherStage = try ctx.input("teacher")
        let model = try ModelInput.build(try teacherStage.producedModel(), for: data, classes: data.classes, seed: 0)
        try Checkpoint.loadModel(model, from: ctx.store.file(teacherStage.hash, "best.safetensors"))
        let slices = data.split.subset(c.subset, of: set, seed: data.seed)
        let taps = c.taps
        // Streamed: each batch's maps go to their rows of the file, in fp16, so memory stays one batch
        // whatever the cache's size (the study's is 12 GiB); students read it memory-mapped.
        var writer: SafetensorsStreamWriter?
        let batch = WorkBatch.teacherOutputs
        for b in stride(from: 0, to: slices.count, by: batch) {
            if StopRequest.isSet { throw RuntimeError.interrupted }
            let idx = Array(slices[b..<min(slices.count, b + batch)])
            let (images, _) = set.batch(idx)
            let out = Tape.noGrad { model.forward(Variable(images), training: false, taps: Set(taps)) }
            var maps: [(String, Tensor)] = []
            for t in taps {
                guard let v = out.taps[t]?.value, v.shape.count > 1 else { throw RuntimeError.badPlan("teacher has no tap '\(t)'") }
                maps.append((t, v))
            }
            if writer == nil {
                let specs = maps.map { SafetensorsStreamWriter.Spec(name: $0.0, shape: [slices.count] + Array($0.1.shape.dropFirst()), half: true) }
                    + [SafetensorsStreamWriter.Spec(name: "slices", shape: [slices.count], half: false)]
                writer = try SafetensorsStreamWriter(path: ctx.directory + "/outputs.safetensors", tensors: specs,
                                                     metadata: ["format": "distillery-teacher-outputs"])
            }
            for (t, v) in maps { try writer?.write(t, rows: b, v.pointer, count: v.count) }
        }
        guard let writer else { throw RuntimeError.stage("no slices to cache") }
        let rows = slices.map(Float.init)
        try rows.withUnsafeBufferPointer { p in if let base = p.baseAddress { try writer.write("slices", rows: 0, base, count: rows.count) } }
        try writer.finish()
        ctx.log("cached \(taps.joined(separator: ", ")) for \(slices.count) slices (fp16)")
    }
}
