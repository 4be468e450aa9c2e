import Foundation
@testable import Plan
import Spec
import StageConfig
import Testing

/// Stage times from work measured on this machine: each training and evaluation stage names
/// the work its time is built from, and where a throughput holds their measurements the
/// stage's time is built from them (steps, validation passes, evaluation batches), not FLOPs.
@Suite struct MeasuredWorkTests {
    static func plan(_ throughput: Throughput) throws -> ExecutionPlan {
        let checked = try #require(SpecChecker.check(path: "specs/quickstart.yaml", loader: SpecLoader(workingDirectory: PlanSupport.repository)))
        return Planner(throughput: throughput, specDirectory: PlanSupport.repository + "/specs").plan(checked)
    }

    @Test func measuredStepsDecideTheTimesOfTheStagesThatHaveThem() throws {
        let unmeasured = try Self.plan(.fallback)
        #expect(unmeasured.stages.allSatisfy { !$0.cost.measured })
        #expect(unmeasured.text(title: "q").contains("stage times: 0 of 9 from steps measured on this machine, the others (and prepare) from FLOPs"))
        let teacher = try #require(unmeasured.stages.first { $0.label.hasPrefix("train teacher") })
        #expect(teacher.cost.work.map(\.kind) == [.train, .forward] && teacher.cost.work[0].batch == 8 && teacher.cost.work[1].batch == 16)
        #expect(teacher.cost.work[0].description.hasPrefix("training step of teacher_net at 8 x 96x96"), "\(teacher.cost.work[0].description)")
        let outputs = try #require(unmeasured.stages.first { $0.kind == .teacherOutputs })
        #expect(outputs.cost.work.map(\.batch) == [8])
        // A distilled student's step differs from its baseline's (its objective and teacher maps): another key.
        let baseline = try #require(unmeasured.stages.first { $0.label.hasPrefix("train baseline") })
        let kd = try #require(unmeasured.stages.first { $0.label.hasPrefix("distill kd") })
        #expect(baseline.cost.work[0].key != kd.cost.work[0].key && baseline.cost.work[1].key == kd.cost.work[1].key)

        // Every training step measured at 0.5 s and every forward pass at 0.1 s.
        var rate = Throughput.fallback
        for s in unmeasured.stages { for w in s.cost.work { rate.steps[w.key] = w.kind == .train ? 0.5 : 0.1 } }
        let measured = try Self.plan(rate)
        #expect(measured.text(title: "q").contains("stage times: from steps measured on this machine"))
        let t = try #require(measured.stages.first { $0.hash == teacher.hash })
        #expect(t.cost.measured && t.cost.flops == teacher.cost.flops)
        // The quickstart's teacher validates on the validation part every epoch, 16 slices a pass.
        let validationSlices = 4 * 24.0  // 4 validation cases of 24 slices (split val 0.1 of 40 cases)
        let expected = Double(t.cost.steps) * 0.5 + 12 * (validationSlices / 16).rounded(.up) * 0.1
        #expect(abs(t.cost.seconds - expected) < 1e-9, "\(t.cost.seconds) against \(expected)")
        let o = try #require(measured.stages.first { $0.hash == outputs.hash })
        // Teacher outputs: whole batches of 8, 0.1 s each.
        let batches = o.cost.seconds / 0.1
        #expect(o.cost.measured && batches >= 1 && abs(batches - batches.rounded()) < 1e-6, "\(o.cost.seconds)")
    }

    /// `plan --from-store`: a kind of work is scaled by what the store's stages of it took
    /// against their prediction; stages of under 2 s (mostly fixed costs) teach nothing.
    @Test func finishedStagesCorrectTheStepTimesOfTheirWork() throws {
        var rate = Throughput.fallback
        for s in try Self.plan(.fallback).stages { for w in s.cost.work { rate.steps[w.key] = w.kind == .train ? 0.5 : 0.1 } }
        let plan = try Self.plan(rate)
        let teacher = try #require(plan.stages.first { $0.label.hasPrefix("train teacher") })
        let evaluate = try #require(plan.stages.first { $0.label == "evaluate baseline" })
        let recorded = [teacher.hash: RecordedCost(seconds: 2 * teacher.cost.seconds, peakBytes: nil),
                        evaluate.hash: RecordedCost(seconds: 1.5, peakBytes: nil)]
        let (corrected, stages) = rate.corrected(by: plan, recorded: recorded)
        #expect(stages == 1 && corrected.source.hasSuffix("step times corrected by 1 finished stage of the store"))
        #expect(corrected.steps[teacher.cost.work[0].key] == 1.0 && corrected.steps[teacher.cost.work[1].key] == 0.1)
        let again = try Self.plan(corrected)
        let t = try #require(again.stages.first { $0.hash == teacher.hash })
        #expect(t.cost.seconds > 1.9 * teacher.cost.seconds && t.cost.seconds < 2 * teacher.cost.seconds)
        #expect(again.stages.first { $0.hash == evaluate.hash }?.cost.seconds == evaluate.cost.seconds)
    }

    /// Step times belong to the build that measured them: another build of the runtime on the same machine
    /// finds none of them, and keeping its own drops the other build's (an older slot without a build too);
    /// another machine's and another thread count's stay.
    @Test func measuredStepsAreKeptPerBuildOfTheRuntime() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("distill-steps-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let work = try #require(Self.plan(.fallback).stages.first { $0.label.hasPrefix("train teacher") }?.cost.work.first)
        let step = MeasuredSteps.Measurement(seconds: 0.5, peakBytes: 1 << 20)
        try Calibration.write(["steps": .object(["cpu | 2 threads": .object([work.key: .object(["seconds": .number(9)])])])], to: path)
        try MeasuredSteps.keep([(work, step)], process: nil, machine: "cpu", threads: 2, build: "a", at: path)
        try MeasuredSteps.keep([(work, step)], process: nil, machine: "other cpu", threads: 2, build: "a", at: path)
        try MeasuredSteps.keep([(work, step)], process: nil, machine: "cpu", threads: 1, build: "a", at: path)
        #expect(MeasuredSteps.kept(machine: "cpu", threads: 2, build: "a", at: path) == [work.key: step])
        #expect(MeasuredSteps.kept(machine: "cpu", threads: 2, build: "b", at: path).isEmpty)
        try MeasuredSteps.keep([(work, MeasuredSteps.Measurement(seconds: 0.25, peakBytes: nil))], process: nil, machine: "cpu", threads: 2,
                               build: "b", at: path)
        #expect(MeasuredSteps.kept(machine: "cpu", threads: 2, build: "a", at: path).isEmpty)
        #expect(MeasuredSteps.kept(machine: "cpu", threads: 2, build: "b", at: path)[work.key]?.seconds == 0.25)
        let slots = Set((Calibration.document(at: path)["steps"]?.object ?? [:]).keys)
        #expect(slots == ["cpu | 2 threads | build b", "other cpu | 2 threads | build a", "cpu | 1 threads | build a"])
    }
}
