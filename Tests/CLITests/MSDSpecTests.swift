import Diagnostics
import Foundation
import Medical
import Spec
import StageConfig
import Testing

/// specs/msd: every Decathlon task checks clean, plans, and runs one epoch of its whole
/// recipe (teacher, baseline, distilled student, evaluation, report) with the phantom
/// standing in for the task's data: the same classes, modality names and normalisation,
/// at 32 x 32 with tiny models.
@Suite struct MSDSpecTests {
    let cli = CLITests()
    static let folder = CLITests.repository + "/specs/msd"
    static let specs = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix("Task") && $0.hasSuffix(".yaml") }.sorted()
    static let tasks = specs.filter { !$0.hasSuffix("-3d.yaml") }
    static let volumeTasks = specs.filter { $0.hasSuffix("-3d.yaml") }

    @Test func everyDecathlonTaskHasASpecIn2DAnd3D() {
        #expect(Self.tasks.map { String($0.prefix(6)) } == (1...10).map { String(format: "Task%02d", $0) })
        #expect(Self.volumeTasks == Self.tasks.map { $0.replacingOccurrences(of: ".yaml", with: "-3d.yaml") })
    }

    /// A 3D recipe runs one epoch of everything on a tiny 3D phantom: its `auto` recipe
    /// (spacing, patch, kernels, pooling, batch) computed from the phantom's fingerprint,
    /// with tiny widths in place of the teacher's.
    @Test(arguments: volumeTasks) func volumeTaskRunsOneEpochOnThePhantom(_ task: String) throws {
        let path = Self.folder + "/" + task
        // Without the task's data its `auto` values are not computed: checked with stand-ins, never planned.
        let checked = try #require(SpecChecker.check(path: path))
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        #expect(checked.diagnostics.contains { $0.id == AutoRecipe.notComputed } && checked.variants.first?.spec == nil)
        // The task's data settings are its 2D spec's, which the 3D one extends.
        let slices = try #require(SpecChecker.check(path: path.replacingOccurrences(of: "-3d.yaml", with: ".yaml")))
        let data = try #require(slices.variants.first?.spec?.data)
        let modalities = data.preprocess.modalities ?? ["CT"]
        let background = [0] + [1, 2, 3].filter { v in !data.classes.classes.contains { $0.values.contains(v) } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-msd3d-\(task)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let overlay = """
            extends: \(path)
            data:
              source: {msd: null, phantom: {cases: 6, seed: 1, size: 32, slices: 8, modalities: [\(modalities.joined(separator: ", "))]}}
              background: [\(background.map(String.init).joined(separator: ", "))]
              split: {test: 0.34, val: 0.17}
            models:
              teacher_net: {widths: [4, 8], bottleneck: 8, convs_per_block: 1}
              student_net: {widths: [2, 4], bottleneck: 4}
            stages:
              teacher: {epochs: 1}
              baseline: {epochs: 1}
              kd: {epochs: 1}

            """
        try overlay.write(toFile: dir + "/smoke.yaml", atomically: true, encoding: .utf8)
        let plan = try cli.run(["plan", "smoke.yaml", "--store", "s"], in: dir)
        #expect(plan.status == 0 && plan.out.contains("3D recipe from the fingerprint of 6 cases") && plan.out.contains("data.preprocess.patch = [8,32,32]")
                && plan.out.contains("models.student_net.pools = [[1,2,2],[2,2,2]]"), "\(task): \(plan.out)\(plan.err)")
        let r = try cli.run(["sweep", "smoke.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(r.status == 0, "\(task): \(r.out.suffix(3000))\(r.err)")
        #expect(r.out.contains("8 done, 0 reused, 0 failed"), "\(task): \(r.out.suffix(1500))")
        // The store keeps the fingerprint: planning again reads no volume, and computes the same recipe.
        _ = try cli.run(["plan", "smoke.yaml", "--store", "s"], in: dir)
        let again = try cli.run(["plan", "smoke.yaml", "--store", "s"], in: dir)
        #expect(again.status == 0 && !again.err.contains("measuring") && again.out.contains("data.preprocess.patch = [8,32,32]"), "\(task): \(again.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/s/fingerprints"))
        // A new volume is segmented as the test volumes were: resampled, windowed, put back on its grid.
        let stages = try FileManager.default.contentsOfDirectory(atPath: dir + "/s/stages")
        let prepared = try #require(stages.first { FileManager.default.fileExists(atPath: "\(dir)/s/stages/\($0)/dataset/imagesTr") })
        let image = "s/stages/\(prepared)/dataset/imagesTr/spleen_2.nii.gz"
        let p = try cli.run(["predict", "kd", "--spec", "smoke.yaml", "--store", "s", image, "-o", "out", "--threads", "1"], in: dir)
        #expect(p.status == 0, "\(task): \(p.err)")
        let predicted = try NIfTI.read(dir + "/out/spleen_2.nii.gz")
        let source = try NIfTI.read("\(dir)/s/stages/\(prepared)/dataset/labelsTr/spleen_2.nii.gz")
        #expect(predicted.dims == source.dims && predicted.spacing == source.spacing)
        #expect(Set(predicted.data).isSubset(of: Set(data.classes.classes.map { Float($0.values[0]) } + [0])))
        // The 3D student exports to ONNX with depth free beside height and width.
        let e = try cli.run(["export", "kd", "--spec", "smoke.yaml", "--store", "s", "-o", "kd.onnx"], in: dir)
        #expect(e.status == 0 && e.out.contains("input image [batch, \(data.channels), depth, height, width]"), "\(task): \(e.out)\(e.err)")
    }

    /// A 3D task's recipe is computed from a Decathlon-layout folder and costed; without the
    /// data, it is checked (a warning) but never planned.
    @Test func aVolumeTaskIsPlannedFromItsDataAndNotWithout() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("distill-msdroot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let written = try cli.run(["data", "phantom", root + "/Task09_Spleen", "--cases", "6", "--size", "64", "--slices", "16"])
        #expect(written.status == 0, "\(written.err)")
        let planned = try cli.run(["plan", "specs/msd/Task09_Spleen-3d.yaml", "--store", root + "/runs"], environment: ["MSD_ROOT": root])
        #expect(planned.status == 0 && planned.out.contains("3D recipe from the fingerprint of 6 cases") && planned.out.contains("models.teacher_net.widths = [")
                && planned.out.contains("total:"), "\(planned.out)\(planned.err)")
        let r = try cli.run(["plan", "specs/msd/Task09_Spleen-3d.yaml"], environment: ["MSD_ROOT": "/nonexistent"])
        #expect(r.status == 1 && r.err.contains("warning[W0415]") && r.err.contains("error: the spec's `auto` values are needed to plan it"), "\(r.out)\(r.err)")
        let check = try cli.run(["check", "specs/msd/Task09_Spleen-3d.yaml"], environment: ["MSD_ROOT": "/nonexistent"])
        #expect(check.status == 0 && check.out.contains("warning[W0415]: 11 `auto` values not computed"), "\(check.out)")
    }

    @Test(arguments: tasks) func taskRunsOneEpochOnThePhantom(_ task: String) throws {
        let path = Self.folder + "/" + task
        let checked = try #require(SpecChecker.check(path: path))
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let data = try #require(checked.variants.first?.spec?.data)
        guard case .msd = data.source else { Issue.record("\(task) does not read an MSD folder"); return }
        let modalities = data.preprocess.modalities ?? ["CT"]
        // The phantom labels spleen 1, liver 2 and kidneys 3: what the task's classes do not name is background.
        let background = [0] + [1, 2, 3].filter { v in !data.classes.classes.contains { $0.values.contains(v) } }
        let plan = try cli.run(["plan", path])
        #expect(plan.status == 0 && plan.out.contains("train teacher") && plan.out.contains("distill kd"), "\(plan.out)\(plan.err)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-msd-\(task)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let overlay = """
            extends: \(path)
            data:
              source: {msd: null, phantom: {cases: 6, seed: 1, size: 32, slices: 6, modalities: [\(modalities.joined(separator: ", "))]}}
              background: [\(background.map(String.init).joined(separator: ", "))]
              preprocess: {size: 32}
              split: {test: 0.34, val: 0.17}
            models:
              teacher_net: {widths: [4, 8], bottleneck: 8, convs_per_block: 1}
              student_net: {widths: [2, 4], bottleneck: 4}
            stages:
              teacher: {epochs: 1, batch: 4}
              baseline: {epochs: 1, batch: 4}
              kd: {epochs: 1, batch: 4}

            """
        try overlay.write(toFile: dir + "/smoke.yaml", atomically: true, encoding: .utf8)
        let r = try cli.run(["sweep", "smoke.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(r.status == 0, "\(task): \(r.out.suffix(3000))\(r.err)")
        #expect(r.out.contains("8 done, 0 reused, 0 failed"), "\(task): \(r.out.suffix(1500))")
        if modalities.count > 1 {
            // A new multi-modal volume is read with the training data's modality names and statistics.
            let stages = try FileManager.default.contentsOfDirectory(atPath: dir + "/s/stages")
            let prepared = try #require(stages.first { FileManager.default.fileExists(atPath: "\(dir)/s/stages/\($0)/dataset/imagesTr") })
            let image = "s/stages/\(prepared)/dataset/imagesTr/spleen_2.nii.gz"
            let p = try cli.run(["predict", "kd", "--spec", "smoke.yaml", "--store", "s", image, "-o", "out", "--threads", "1"], in: dir)
            #expect(p.status == 0, "\(task): \(p.err)")
            let values = Set(data.classes.classes.map { Float($0.values[0]) } + [0])
            #expect(Set(try NIfTI.read(dir + "/out/spleen_2.nii.gz").data).isSubset(of: values))
        }
        if data.classes.count > 1 {
            #expect(r.out.contains("## By class, on each patient's grid"), "\(task)")
            for c in data.classes.classes { #expect(r.out.contains("| * | kd | \(c.name) | "), "\(task): no row for \(c.name)") }
        }
    }
}
