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

    /// A 3D recipe runs one epoch of everything on a tiny 3D phantom: its patch and pooling
    /// replaced by ones the phantom fits, its spacing by the phantom's own.
    @Test(arguments: volumeTasks) func volumeTaskRunsOneEpochOnThePhantom(_ task: String) throws {
        let path = Self.folder + "/" + task
        let checked = try #require(SpecChecker.check(path: path))
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let data = try #require(checked.variants.first?.spec?.data)
        #expect(data.preprocess.volume != nil && checked.variants.first?.spec?.models.allSatisfy { $0.architecture.spatialDimensions == 3 } == true)
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
              preprocess: {patch: [8, 16, 16], spacing: median}
              split: {test: 0.34, val: 0.17}
            models:
              teacher_net: {widths: [4, 8], bottleneck: 8, convs_per_block: 1, kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]], pools: [[1, 2, 2], [2, 2, 2]]}
              student_net: {widths: [2, 4], bottleneck: 4, kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]], pools: [[1, 2, 2], [2, 2, 2]]}
            stages:
              teacher: {epochs: 1}
              baseline: {epochs: 1}
              kd: {epochs: 1}

            """
        try overlay.write(toFile: dir + "/smoke.yaml", atomically: true, encoding: .utf8)
        let r = try cli.run(["sweep", "smoke.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(r.status == 0, "\(task): \(r.out.suffix(3000))\(r.err)")
        #expect(r.out.contains("8 done, 0 reused, 0 failed"), "\(task): \(r.out.suffix(1500))")
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
