import Foundation
import Medical
import NN
import Plan
import StageConfig
import Tensor

/// What a reader must know before believing a report, derived from the plan and
/// the trained models (not from logs, so a report of an old store says it too):
/// distillation terms that read a teacher map which is the same for every image,
/// and checkpoints chosen on the test split.
enum ReportWarnings {
    /// How many test slices (spread over the test split) the teachers' taps are checked on.
    static let checkedSlices = 16

    static func collect(_ plan: ExecutionPlan, _ store: RunStore, _ summaries: [ReportData.StageSummary]) -> [String] {
        var warnings: [(text: String, students: [String])] = []
        func add(_ text: String, _ student: String) {
            if let i = warnings.firstIndex(where: { $0.text == text }) {
                if !warnings[i].students.contains(student) { warnings[i].students.append(student) }
            } else {
                warnings.append((text, [student]))
            }
        }
        var teacherMaps: [String: [String: Tensor]] = [:]
        let test = testImages(plan, store)
        for s in summaries {
            guard let run = s.runs.first, let stage = plan.stage(run.train), case .train(let c) = stage.config else { continue }
            if c.select.split == .test {
                add("checkpoints chosen on the test split (as the study did): the test score of these stages is optimistic", s.stage)
            }
            guard let terms = c.distill, let teacherHash = stage.inputs["teacher"], let (set, images, classes) = test else { continue }
            if teacherMaps[teacherHash] == nil {
                do {
                    teacherMaps[teacherHash] = try forward(teacherHash, plan, store, set, images, classes: classes)
                } catch {
                    teacherMaps[teacherHash] = [:]
                    add("the taps of teacher \(plan.specName(of: teacherHash)) could not be checked: \(error)", s.stage)
                }
            }
            for w in TapSpread.constantTaps(teacherMaps[teacherHash] ?? [:], terms: terms, teacher: plan.specName(of: teacherHash)) {
                add(w, s.stage)
            }
        }
        return warnings.map { "\($0.text) (\($0.students.count == 1 ? "stage" : "stages") \($0.students.joined(separator: ", ")))" }
    }

    /// Up to `checkedSlices` test slices, evenly spread over the test split.
    static func testImages(_ plan: ExecutionPlan, _ store: RunStore) -> (SliceSet, Tensor, LabelClasses)? {
        guard let (set, slices, classes) = Report.testSlices(plan, store) else { return nil }
        guard slices.count >= 2 else { return nil }
        let step = max(1, slices.count / checkedSlices)
        let picked = Array(stride(from: 0, to: slices.count, by: step).map { slices[$0] }.prefix(checkedSlices))
        return (set, set.batch(picked).0, classes)
    }

    /// Every tap and logit of a trained teacher over `images`, in evaluation mode.
    static func forward(_ hash: String, _ plan: ExecutionPlan, _ store: RunStore, _ set: SliceSet, _ images: Tensor, classes: LabelClasses) throws -> [String: Tensor] {
        guard let stage = plan.stage(hash), store.isDone(hash) else { return [:] }
        let model = try ModelInput.build(try stage.producedModel(), for: set, classes: classes, seed: 0)
        try Checkpoint.loadModel(model, from: store.file(hash, "best.safetensors"))
        let out = Tape.noGrad { model.forward(Variable(images), training: false) }
        var maps = out.taps.mapValues(\.value)
        for (head, v) in out.logits { maps["logits.\(head)"] = v.value }
        return maps
    }
}
