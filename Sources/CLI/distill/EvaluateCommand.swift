import ArgumentParser
import Diagnostics
import Foundation
import Medical
import Plan
import Runtime
import Spec
import StageConfig
import Storage
import Tensor

/// `distill evaluate CHECKPOINT`: metrics of a checkpoint made outside a plan.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate a safetensors checkpoint on a dataset with a spec's model, preprocessing and split.")

    @Argument(help: "The checkpoint (safetensors, reference parameter names).")
    var checkpoint: String

    @Option(name: .long, help: "The spec that describes the model, data and evaluation.")
    var spec: String

    @Option(name: .long, help: "The stage of the spec whose model the checkpoint holds.")
    var stage: String

    @Option(name: .long, help: "An MSD folder to evaluate on (default: the spec's data).")
    var data: String?

    @Flag(name: .long, help: "Every slice, not only the test part of the split.")
    var all = false

    @Option(name: .long, help: "Also write the metrics as JSON here.")
    var output: String?

    @OptionGroup var threading: ThreadsOption

    func run() throws {
        threading.apply()
        guard FileManager.default.fileExists(atPath: checkpoint) else {
            FileHandle.standardError.write(Data("error: no such checkpoint '\(checkpoint)'\n".utf8))
            throw ExitStatus.usage
        }
        guard let checked = SpecChecker.check(path: spec) else {
            FileHandle.standardError.write(Data("error: cannot read '\(spec)'\n".utf8))
            throw ExitStatus.usage
        }
        guard !checked.diagnostics.hasErrors, let s = checked.base else {
            print(DiagnosticRenderer.text(checked.diagnostics), terminator: "")
            throw ExitStatus.failure
        }
        guard let st = s.stage(stage), let model = s.model(st.model.name) else {
            FileHandle.standardError.write(Data("error: no stage '\(stage)' in \(spec); stages: \(s.stages.map(\.name).joined(separator: ", "))\n".utf8))
            throw ExitStatus.usage
        }
        let specDir = FilePath.folder(of: spec)
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("distill-evaluate-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: temp) }
        var root = data
        var analyzeOrientation: AxisOrientation?
        if case .msd(_, let o) = s.data.source { analyzeOrientation = o }
        if root == nil {
            switch s.data.source {
            case .msd(let path, _): root = FilePath.resolve(path, against: specDir)
            case .phantom(let p):
                try Phantom.write(p, to: temp + "/phantom")
                root = temp + "/phantom"
            }
        }
        let settings = CheckpointEvaluation.Settings(architecture: model.architecture, classes: s.data.classes, background: s.data.background,
                                                     preprocess: s.data.preprocess, split: s.data.split, evaluate: s.evaluate.config)
        let result: JSON
        do {
            result = try CheckpointEvaluation.run(checkpoint: checkpoint, dataset: root ?? ".", analyzeOrientation: analyzeOrientation,
                                                  settings: settings, all: all, cache: temp + "/slices.bin")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitStatus.failure
        }
        let p = result["pooled"]
        func f(_ v: JSON?, _ format: String = "%.4f") -> String { v?.number.map { String(format: format, $0) } ?? "n/a" }
        print("\(all ? "all" : "test") cases, on their own voxel grids: Dice \(f(p?["dice"])), IoU \(f(p?["iou"])), precision \(f(p?["precision"])), recall \(f(p?["recall"]))")
        for c in result["cases"]?.array ?? [] {
            print("  \(c["case"]?.string ?? "?"): Dice \(f(c["dice"]))  HD95 \(f(c["hd95"], "%.1f")) mm  NSD \(f(c["nsd"], "%.3f"))")
        }
        if let output { try Data(result.pretty.utf8).write(to: URL(fileURLWithPath: output)) }
    }
}
