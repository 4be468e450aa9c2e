import Foundation
import Testing

/// `distill export` on a trained store, checked by ONNX's checker; the store's training
/// curves read back by TensorBoard's own reader under the spec's names.
@Suite(.serialized) struct ExportCLITests {
    let cli = CLITests()
    static let python = CLITests.repository + "/.build/venv/bin/python3"
    static let scripts = CLITests.repository + "/Tests/InterchangeTests/Python"

    /// A script of Tests/InterchangeTests/Python in .build/venv (which `make test` installs), its output as JSON.
    func python(_ script: String, _ arguments: [String]) throws -> Any {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record("\(Self.python) is missing: `make test` creates it from Tests/python-requirements.txt")
            return [:] as [String: Any]
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = [Self.scripts + "/" + script] + arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(script) failed")
        return try JSONSerialization.jsonObject(with: data)
    }

    @Test func aTrainedStageExportsWithItsPreprocessingAndCurvesShowInTensorBoard() throws {
        let dir = try PredictCLITests().trained()
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let r = try cli.run(["export", "teacher", "--spec", "spec.yaml", "-o", "onnx/teacher/model.onnx"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("teacher -> onnx/teacher/model.onnx: ONNX opset 17"), "\(r.out)")
        #expect(r.out.contains("input image [batch, 1, height, width]"), "\(r.out)")
        try "{}".write(toFile: dir + "/onnx/teacher/shapes.json", atomically: true, encoding: .utf8)
        let checked = try #require(try python("onnx_check.py", [dir + "/onnx"]) as? [String: [String: Any]])
        let entry = try #require(checked["teacher"])
        #expect(entry["checker"] as? String == "ok", "\(entry)")
        let metadata = try #require(entry["metadata"] as? [String: String])
        #expect(metadata["distillery.stage"] == "teacher")
        #expect(metadata["distillery.slice_axis"] == "axial")
        #expect(metadata["distillery.decode"]?.contains("sigmoid(logit) >= 0.5") == true, "\(metadata)")
        #expect(metadata["distillery.normalisation"]?.contains("window") == true, "\(metadata)")
        #expect(metadata["distillery.classes"]?.contains("label 1") == true, "\(metadata)")
        #expect(metadata["distillery.preprocess"]?.hasPrefix("{") == true)

        for (arguments, message) in [
            (["export", "teacher", "--spec", "spec.yaml", "--format", "torchscript", "-o", "x.pt"], "--format 'torchscript' is not one Distillery writes; formats: onnx"),
            (["export", "nope", "--spec", "spec.yaml", "-o", "x.onnx"], "no trained stage 'nope' in the spec"),
            (["export", "kd", "--spec", "spec.yaml", "-o", "x.onnx"], "stage 'kd' differs between variants; choose one with --variant"),
            (["export", "teacher", "--spec", "spec.yaml", "--head", "nope", "-o", "x.onnx"], "has no head 'nope'; heads: segmentation"),
            (["export", "teacher", "--spec", "spec.yaml", "--store", "elsewhere", "-o", "x.onnx"], "is not trained in elsewhere"),
        ] {
            let bad = try cli.run(arguments, in: dir)
            #expect(bad.status == 2, "\(arguments): \(bad.status)")
            #expect(bad.err.contains(message), "\(arguments): \(bad.err)")
        }
        let kd = try cli.run(["export", "kd", "--variant", "temperature=high", "--spec", "spec.yaml", "-o", "kd.onnx"], in: dir)
        #expect(kd.status == 0, "\(kd.err)")

        // tensorboard --logdir runs: one run per training stage, under the spec's names, and no other.
        let runs = try #require(try python("events_read.py", [dir + "/runs"]) as? [String: [String: [[Double]]]])
        #expect(Set(runs.keys) == ["tensorboard/tiny_predict_test/temperature=low/teacher", "tensorboard/tiny_predict_test/temperature=low/kd",
                                   "tensorboard/tiny_predict_test/temperature=high/kd"], "\(runs.keys.sorted())")
        let teacher = try #require(runs["tensorboard/tiny_predict_test/temperature=low/teacher"])
        for tag in ["train/loss", "val/dice", "val/loss", "lr"] {
            #expect(teacher[tag]?.map { Int($0[0]) } == [1, 2], "\(tag): \(teacher[tag] ?? [])")
        }
        // The values are the metrics file's.
        let metrics = try String(contentsOfFile: try PredictCLITests().stageFolder(dir, "train teacher") + "/metrics.jsonl", encoding: .utf8)
        let line = try #require(metrics.split(separator: "\n").last)
        let last = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let dice = try #require(last["val_dice"] as? Double)
        #expect(abs((teacher["val/dice"]?.last?[1] ?? -1) - dice) < 1e-6)
    }
}
