import Architecture
import Foundation
import Plan
import Spec
import StageConfig
import Testing

@Suite struct PlanTests {
    /// The thesis grid (specs/thesis/ablation.yaml), derived by hand:
    /// - 1 prepare: every variant reads the same data;
    /// - 8 fixed spec stages (2 teachers, 2 baselines, 4 KD pairs), each train + evaluate: 16;
    /// - the swept `kd` stage: 2 teachers x 2 students x 4 scale sets x 3 feature losses x 3 optimisers
    ///   = 144 configurations, all different; one of them (t1, s1, all scales, InfoNCE 0.4, RMSprop) is
    ///   exactly kd_t1_s1, so 143 new distill stages + 143 evaluations: 286;
    /// - teacher outputs, one per (teacher, student subset), holding the taps of every student of the
    ///   teacher over the whole grid: 2;
    /// - 1 report.
    /// 1 + 16 + 286 + 2 + 1 = 306.
    @Test func thesisGridDedupsToTheExpectedStageCount() throws {
        let plan = try PlanSupport.plan("specs/thesis/ablation.yaml")
        #expect(plan.variants.count == 144)
        #expect(plan.stages.count == 306)
        #expect(plan.stages.filter { $0.kind == .prepare }.count == 1)
        #expect(plan.stages.filter { $0.kind == .teacherOutputs }.count == 2)
        let teachers = plan.stages.filter { $0.kind == .train && $0.label.contains("teacher_t") }
        #expect(teachers.count == 2)
        #expect(teachers.allSatisfy { $0.variants.count == 144 })
    }

    @Test func jsonPlanRoundTrips() throws {
        let plan = try PlanSupport.plan("specs/quickstart.yaml")
        let text = plan.json.pretty
        let parsed = try #require(JSON.parse(Data(text.utf8)))
        #expect(parsed == plan.json)
        #expect(parsed["format"]?.string == "distillery-plan")
        let stages = try #require(parsed["stages"]?.array)
        // Every input names a stage of the plan, listed before it.
        var seen = Set<String>()
        for s in stages {
            for input in s["inputs"]?.object?.values ?? [:].values { #expect(seen.contains(input.string ?? "")) }
            seen.insert(s["hash"]?.string ?? "")
        }
    }

    @Test func stageHashIsTheHashOfItsIdentity() throws {
        let plan = try PlanSupport.plan("specs/thesis/study.yaml")
        for s in plan.stages where s.kind != .prepare {
            // A student names its teacher (an input) and its taps and subset (its configuration); which
            // cache holds those maps is not part of it.
            var inputs = s.inputs.mapValues(JSON.string)
            if inputs["teacher_outputs"] != nil { inputs["teacher_outputs"] = .string("fp16 cache") }
            let identity = JSON.object(["kind": .string(s.kind.rawValue), "runtime_format": .int(RuntimeFormat.version),
                                        "params": s.config.json, "inputs": .object(inputs)])
            #expect(identity.sha256 == s.hash)
        }
    }

    /// One cache serves every student of a teacher: a new student reading another tap widens it, and the
    /// students already planned keep their names (their finished results stay valid).
    @Test func oneTeacherCacheServesEveryStudent() throws {
        let study = try PlanSupport.plan("specs/thesis/study.yaml")
        let caches = study.stages.filter { $0.kind == .teacherOutputs }
        #expect(caches.count == 2, "one per teacher over the students' half")
        for cache in caches {
            let students = study.stages.filter { $0.inputs["teacher_outputs"] == cache.hash }
            #expect(students.count == 2)
            guard case .teacherOutputs(let c) = cache.config else { continue }
            for student in students {
                guard case .train(let t) = student.config, let terms = t.distill else { continue }
                #expect(Set(terms.teacherTaps).isSubset(of: Set(c.taps)), "\(student.label) reads taps the cache lacks")
            }
        }
        // The quickstart's student reads pool.1, the bottleneck and the logits; a second student reading a decoder map joins it.
        let alone = try PlanSupport.plan(text: "extends: specs/quickstart.yaml\nsweep: null\n")
        let joined = try PlanSupport.plan(text: Self.quickstart(withStudents: [
            ("kd_dec", "{teacher: teacher, taps: {dd: {teacher: decoder.segmentation.3, student: decoder.1, adapter: {side: teacher}, loss: {kind: mse}}}}")]))
        let kd = try #require(alone.stages.first { $0.label.hasPrefix("distill kd ") })
        #expect(joined.stage(kd.hash) != nil, "the first student keeps its name when the cache widens")
        let aloneCache = try #require(alone.stages.first { $0.kind == .teacherOutputs })
        let joinedCaches = joined.stages.filter { $0.kind == .teacherOutputs }
        #expect(joinedCaches.count == 1 && joinedCaches.first?.hash != aloneCache.hash)
        if case .teacherOutputs(let wide) = joinedCaches.first?.config, case .teacherOutputs(let narrow) = aloneCache.config {
            #expect(wide.taps == (narrow.taps + ["decoder.segmentation.3"]).sorted(), "\(wide.taps)")
        }
        #expect(joined.stages.filter { $0.inputs["teacher_outputs"] == joinedCaches.first?.hash }.count == 2)
    }

    /// The quickstart without its sweep, plus S1-sized students distilled as `distill` says.
    static func quickstart(withStudents students: [(name: String, distill: String)]) -> String {
        var text = "extends: specs/quickstart.yaml\nsweep: null\nstages:\n"
        for s in students {
            text += """
                  \(s.name):
                    model: student_net
                    data: half
                    loss: [{kind: dice_bce}]
                    optimizer: {kind: adamw, lr: 5.0e-3}
                    epochs: 40
                    batch: 8
                    distill: \(s.distill)

                """
        }
        return text
    }

    /// A student that teaches two others is lowered in the survey pass (which skips the stages nothing
    /// builds on), so both its students' taps reach one cache of its outputs.
    @Test func aStudentThatTeachesGetsOneCacheForItsStudents() throws {
        let plan = try PlanSupport.plan(text: Self.quickstart(withStudents: [
            ("kd2", "{teacher: kd, taps: {pp: {teacher: pool.1, student: pool.1, loss: {kind: mse}}}}"),
            ("kd3", "{teacher: kd, taps: {bb: {teacher: bottleneck, student: bottleneck, loss: {kind: mse}}}}")]))
        let kd = try #require(plan.stages.first { $0.label.hasPrefix("distill kd ") })
        let students = plan.stages.filter { $0.inputs["teacher"] == kd.hash && $0.kind == .distill }
        #expect(students.count == 2)
        let caches = plan.stages.filter { $0.kind == .teacherOutputs && $0.inputs["teacher"] == kd.hash }
        #expect(caches.count == 1, "one cache of kd's outputs serves both its students")
        #expect(students.allSatisfy { $0.inputs["teacher_outputs"] == caches.first?.hash })
        if case .teacherOutputs(let c)? = caches.first?.config { #expect(Set(c.taps).isSuperset(of: ["pool.1", "bottleneck"]), "\(c.taps)") }
    }

    @Test func teacherOutputCacheIsChosenWithItsReason() throws {
        let plan = try PlanSupport.plan("specs/thesis/study.yaml")
        let kd = try #require(plan.stages.first { $0.label.hasPrefix("distill kd_t1_s1") })
        #expect(kd.inputs["teacher_outputs"] != nil)
        #expect(kd.note?.hasPrefix("cache in fp16: 12 GiB saves 119 teacher passes") == true)
        // Without disk budget the teacher is recomputed every step.
        let checked = try #require(SpecChecker.check(path: "specs/thesis/study.yaml", loader: SpecLoader(workingDirectory: PlanSupport.repository)))
        let tight = Planner(throughput: .fallback, cacheBudgetBytes: 1 << 30, specDirectory: PlanSupport.repository + "/specs/thesis").plan(checked)
        let kd2 = try #require(tight.stages.first { $0.label.hasPrefix("distill kd_t1_s1") })
        #expect(kd2.inputs["teacher_outputs"] == nil)
        #expect(kd2.note?.hasPrefix("recompute: a cache would take 12 GiB, over the 1 GiB budget") == true)
        #expect(kd2.cost.flops > kd.cost.flops)
    }

    @Test func lockedSpecsPlanToTheSameHashes() throws {
        let checked = try #require(SpecChecker.check(path: "specs/quickstart.yaml", loader: SpecLoader(workingDirectory: PlanSupport.repository)))
        let plan = Planner(throughput: .fallback, specDirectory: PlanSupport.repository + "/specs").plan(checked)
        for (i, v) in checked.variants.enumerated() {
            let locked = try #require(v.spec?.resolvedDocument.canonicalText)
            let relocked = try PlanSupport.plan(text: locked, directory: PlanSupport.repository + "/specs")
            #expect(PlanSupport.hashes(relocked) == PlanSupport.hashes(plan, variant: i))
        }
    }

    @Test func onlyTheAskedVariantIsPlanned() throws {
        let plan = try PlanSupport.plan("specs/quickstart.yaml", variant: "scales=logits")
        #expect(plan.variants.map(\.name) == ["scales=logits"])
        #expect(plan.stages.allSatisfy { $0.variants == ["scales=logits"] })
    }
}

/// Golden plans for every spec in specs/ (re-record with DISTILL_RECORD=1).
@Suite struct GoldenPlanTests {
    static let specs = ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml", "specs/reproduce-thesis-bugs.yaml"]

    @Test(arguments: specs)
    func planMatchesGolden(_ spec: String) throws {
        let plan = try PlanSupport.plan(spec)
        let base = spec.replacingOccurrences(of: "specs/", with: "").replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: ".yaml", with: "")
        for (ext, text) in [("txt", plan.text(title: spec)), ("json", plan.json.pretty)] {
            let path = "\(PlanSupport.golden)/\(base).plan.\(ext)"
            if PlanSupport.recording {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                Issue.record("recorded \(path)")
                continue
            }
            let expected = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text == expected, "\(path) differs; rerun with DISTILL_RECORD=1 if intended")
        }
    }
}

/// The plan of a 3D spec: costs per patch, per window and per resampled volume.
@Suite struct VolumePlanTests {
    @Test func threeDimensionalStagesAreCostedByPatchesWindowsAndVolumes() throws {
        let plan = try PlanSupport.plan("specs/quickstart-3d.yaml")
        let checked = try #require(SpecChecker.check(path: "specs/quickstart-3d.yaml", loader: SpecLoader(workingDirectory: PlanSupport.repository)))
        let spec = try #require(checked.base)
        let teacher = try #require(spec.model("teacher_net")).architecture
        let patchCost = try #require(teacher.forwardCost(volume: [16, 64, 64]))
        let train = try #require(plan.stages.first { $0.label.hasPrefix("train teacher") })
        #expect(train.cost.macsPerSample == patchCost.macs)
        // One patch per training case an epoch: 24 cases, 7 for test and 2 for validation leave 15, in batches of 2.
        #expect(train.cost.steps == 8 * 80)
        // Sliding windows over 32 x 64 x 64 volumes with 16 x 64 x 64 patches at step 0.5: 3 windows a case, 7 test cases.
        let evaluate = try #require(plan.stages.first { $0.label == "evaluate teacher" })
        #expect(evaluate.cost.flops == 2 * Double(patchCost.macs) * 7 * 3)
        // Its memory: the weights, one window's maps (and the pool's idle share of them), and over the whole
        // 32 x 64 x 64 volume its channel, the logit sums and weights of the one-channel head, and the logits put back.
        let window = patchCost.activations * 4
        #expect(evaluate.cost.memoryBytes == teacher.parameterCount(height: 64, width: 64) * 4 + window + MemoryPolicy.idleBytes(forStepBytes: window)
                + 32 * 64 * 64 * 4 * (1 + 2 * 1 + 1))
        // The prepared volumes: a float and a byte per voxel of 24 volumes of 32 x 64 x 64.
        let prepare = try #require(plan.stages.first { $0.kind == .prepare })
        #expect(prepare.cost.diskBytes == 24 * 32 * 64 * 64 * 5)
        #expect(!plan.stages.contains { $0.kind == .teacherOutputs })
    }
}
