import Foundation
import Testing

/// A teacher trained in PyTorch (the fixture of Tests/RuntimeTests/Pretrained) used
/// end to end: imported, evaluated, distilled into a student, reported; its stage
/// is named by the file's content, and a file changed after planning is refused.
@Suite struct PretrainedCLITests {
    let cli = CLITests()
    static let fixture = CLITests.repository + "/Tests/RuntimeTests/Pretrained/thesis_s1_pytorch.safetensors"

    /// Tests/RuntimeTests/Pretrained/teacher.yaml (the imported teacher) with a distilled student.
    static func spec(weights: String) -> String {
        """
        extends: \(CLITests.repository)/Tests/RuntimeTests/Pretrained/teacher.yaml
        models:
          student_net: {arch: unet, widths: [4, 8], bottleneck: 8}
        stages:
          teacher: {weights: {file: \(weights)}}
          kd:
            model: student_net
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: adam, lr: 0.001}
            epochs: 1
            batch: 4
            distill:
              teacher: teacher
              taps: {bb: {teacher: bottleneck, student: bottleneck, adapter: {side: teacher}}}
              logits: {kind: binary_kl, temperature: 2}

        """
    }

    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-pretrained-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/weights", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: dir + "/weights/teacher.safetensors")
        try Self.spec(weights: dir + "/weights/teacher.safetensors").write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func aPytorchTeacherIsImportedEvaluatedAndDistilled() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let check = try cli.run(["check", "spec.yaml"], in: dir)
        #expect(check.status == 0, "\(check.out)")
        let r = try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(r.status == 0, "\(r.out.suffix(2000))\(r.err)")
        #expect(r.out.contains("imported 36 tensors (57009 parameters)"), "\(r.out)")
        #expect(r.out.contains("not loaded: 5 tensors (module.b.bn.num_batches_tracked"), "\(r.out)")
        #expect(r.out.contains("6 done, 0 reused, 0 failed"), "\(r.out.suffix(1500))")
        #expect(r.out.contains("| teacher | teacher |"), "\(r.out.suffix(1500))")

        // The same bytes elsewhere are the same stage: nothing reruns.
        try FileManager.default.moveItem(atPath: dir + "/weights", toPath: dir + "/moved")
        try Self.spec(weights: dir + "/moved/teacher.safetensors").write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let moved = try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(moved.out.contains("0 done, 6 reused"), "\(moved.out.suffix(800))")
    }

    /// The hash of the plan's (first) stage of `kind`.
    func hash(_ planJSON: String, kind: String = "pretrained") throws -> String {
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(planJSON.utf8)) as? [String: Any])
        let stages = try #require(plan["stages"] as? [[String: Any]])
        return try #require(stages.first { $0["kind"] as? String == kind }?["hash"] as? String)
    }

    @Test func weightsChangedAfterPlanningAreRefused() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try cli.run(["plan", "spec.yaml", "--format", "json"], in: dir)
        try plan.out.write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        let stage = String(try hash(plan.out).prefix(12))
        let prepare = try cli.run(["run", "--plan", "plan.json", "--store", "s", "--threads", "1", "--stage", String(try hash(plan.out, kind: "prepare").prefix(12))], in: dir)
        #expect(prepare.status == 0, "\(prepare.out)\(prepare.err)")
        // Retrained in PyTorch after the plan was made: the new bytes must not be imported under the old name.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/weights/teacher.safetensors"))
        bytes[bytes.count - 1] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: dir + "/weights/teacher.safetensors"))
        let changed = try cli.run(["run", "--plan", "plan.json", "--store", "s", "--threads", "1", "--stage", stage], in: dir)
        #expect(changed.status != 0)
        #expect((changed.out + changed.err).contains("changed since the plan was made"), "\(changed.out)\(changed.err)")
        // Planned again, the changed file is a new stage.
        let replanned = try cli.run(["plan", "spec.yaml", "--format", "json"], in: dir)
        #expect(try hash(replanned.out).prefix(12) != stage)
    }
}
