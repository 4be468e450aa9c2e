import Foundation
import StageConfig
import Testing

/// A plan file runs only what was planned: a stage whose content is wrong is
/// refused with the stage, the field and the value; usage errors exit 2; a failed
/// stage is reported the same way whatever the number of jobs.
@Suite(.serialized) struct PlanFileCLITests {
    let cli = CLITests()

    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-planfile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try SweepCLITests.spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// The plan of the tiny spec as JSON, and the hash of its `kd` distill stage.
    func plan(in dir: String) throws -> (JSON, String) {
        let r = try cli.run(["plan", "spec.yaml", "--format", "json"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        let json = try #require(JSON.parse(Data(r.out.utf8)))
        let kd = try #require(json["stages"]?.array?.first { $0["kind"] == .string("distill") }?["hash"]?.string)
        return (json, kd)
    }

    /// The plan with one field of one stage's params replaced.
    func edited(_ plan: JSON, stage: String, _ edit: (inout [String: JSON]) -> Void) throws -> JSON {
        guard case .object(var top) = plan, case .array(var stages)? = top["stages"] else { throw CocoaError(.fileReadCorruptFile) }
        for (i, s) in stages.enumerated() where s["hash"]?.string == stage {
            guard case .object(var o) = s, case .object(var params)? = o["params"] else { continue }
            edit(&params)
            o["params"] = .object(params)
            stages[i] = .object(o)
        }
        top["stages"] = .array(stages)
        return .object(top)
    }

    func runStage(_ plan: JSON, _ stage: String, in dir: String) throws -> (status: Int32, out: String, err: String) {
        try plan.pretty.write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        return try cli.run(["run", "--stage", String(stage.prefix(12)), "--plan", "plan.json", "--store", "runs", "--threads", "1"], in: dir)
    }

    @Test func anUnknownResampleOrLossKindInAPlanIsRefusedNamingStageFieldAndValue() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (plan, kd) = try plan(in: dir)
        let bicubic = try edited(plan, stage: kd) { params in
            guard case .object(var d)? = params["distill"] else { return }
            d["taps"] = .object(["bb": .object(["teacher": .string("bottleneck"), "student": .string("bottleneck"), "adapter": .null,
                                                "resample": .string("bicubic"), "loss": .object(["kind": .string("mse")]), "weight": .number(1)])])
            params["distill"] = .object(d)
        }
        let r = try runStage(bicubic, kd, in: dir)
        #expect(r.status == 1)
        #expect(r.err.contains("plan stage \(kd.prefix(12)): field 'params.distill.taps.bb.resample' has the unknown value \"bicubic\""), "\(r.err)")
        let hinge = try edited(plan, stage: kd) { params in
            params["loss"] = .array([.object(["kind": .string("hinge"), "head": .string("segmentation"), "weight": .number(1)])])
        }
        let h = try runStage(hinge, kd, in: dir)
        #expect(h.status == 1)
        #expect(h.err.contains("plan stage \(kd.prefix(12)): field 'params.loss[0].kind' has the unknown value \"hinge\""), "\(h.err)")
        // Nothing ran: the store holds no stage.
        #expect(!FileManager.default.fileExists(atPath: dir + "/runs/stages/\(kd)"))
    }

    @Test func aValidEditThatChangesTheExperimentIsRefusedToo() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (plan, kd) = try plan(in: dir)
        let heavier = try edited(plan, stage: kd) { params in params["epochs"] = .int(30) }
        let r = try runStage(heavier, kd, in: dir)
        #expect(r.status == 1)
        #expect(r.err.contains("does not hash to its name"), "\(r.err)")
    }

    @Test func aFileThatIsNotAPlanIsAUsageError() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"format\": \"something-else\"}".write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        let r = try cli.run(["run", "--stage", "abc", "--plan", "plan.json"], in: dir)
        #expect(r.status == 2)
        #expect(r.err.contains("not a distillery plan"))
    }

    @Test(arguments: [["run", "--jobs", "0", "spec.yaml"], ["check", "--format", "xml", "spec.yaml"], ["plan", "--no-such-flag", "spec.yaml"], ["nosuchcommand"]])
    func usageErrorsExitTwo(_ arguments: [String]) throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try cli.run(arguments, in: dir)
        #expect(r.status == 2, "\(arguments): exit \(r.status), \(r.err)")
        #expect(r.err.contains("Usage:") || r.err.contains("Error:"), "\(r.err)")
    }

    @Test(arguments: [1, 2])
    func aFailedStageIsFailedInStatusWhateverTheJobs(_ jobs: Int) throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let broken = SweepCLITests.spec.replacingOccurrences(of: "  kd:\n    model: s\n", with: "  kd:\n    model: s\n    init: {file: /nonexistent/w.safetensors}\n")
        try broken.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let r = try cli.run(["sweep", "spec.yaml", "--store", "runs", "--threads", "2", "--jobs", String(jobs)], in: dir)
        #expect(r.status == 1)
        let status = try cli.run(["status", "spec.yaml", "--store", "runs"], in: dir)
        let kdLine = try #require(status.out.split(separator: "\n").first { $0.contains("distill kd") })
        #expect(kdLine.contains("failed"), "\(status.out)")
        #expect(kdLine.contains("/nonexistent/w.safetensors"), "\(kdLine)")
        #expect(status.out.contains("1 failed"))
    }
}
