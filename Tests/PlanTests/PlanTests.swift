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
    /// - teacher outputs, one per (teacher, student subset, tap set): tap sets are the 4 scale sets of
    ///   each teacher (the fixed KD stages' sets are among them): 8;
    /// - 1 report.
    /// 1 + 16 + 286 + 8 + 1 = 312.
    @Test func thesisGridDedupsToTheExpectedStageCount() throws {
        let plan = try PlanSupport.plan("specs/thesis/ablation.yaml")
        #expect(plan.variants.count == 144)
        #expect(plan.stages.count == 312)
        #expect(plan.stages.filter { $0.kind == .prepare }.count == 1)
        #expect(plan.stages.filter { $0.kind == .teacherOutputs }.count == 8)
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
        let plan = try PlanSupport.plan("specs/quickstart.yaml")
        for s in plan.stages where s.kind != .prepare {
            let identity = JSON.object(["kind": .string(s.kind.rawValue), "runtime_format": .int(RuntimeFormat.version),
                                        "params": s.config.json, "inputs": .object(s.inputs.mapValues(JSON.string))])
            #expect(identity.sha256 == s.hash)
        }
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
