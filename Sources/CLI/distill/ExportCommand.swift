import ArgumentParser
import Foundation
import Interchange
import NN
import Plan
import Runtime
import StageConfig
import Tensor

/// `distill export`: a trained stage as a file other runtimes run (ONNX).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a trained stage's network as an ONNX model that ONNX Runtime, TensorRT or OpenVINO run.",
        discussion: """
            The eval-mode network from one preprocessed slice ("image", N x C x H x W float32) to the segmentation \
            head's logits ("logits", N x K x H x W), ONNX opset \(ONNXExport.opset) (IR version \(ONNXExport.irVersion)). \
            Batch norm is a BatchNormalization node over the running statistics. U-Nets take any batch and any \
            height and width divisible by 2^depth; the hybrid (TransUNet) takes the trained slice size only, which \
            fixes its number of ViT tokens. The model's metadata_props record how to make its input and read its \
            output: the slice axis, the size, the window and normalisation (with the training data's intensity \
            statistics where they are used), the classes with their label values, and the decoding of the logits.
            """)

    @Argument(help: "A stage of the spec, trained in the store, or a safetensors checkpoint (then give --stage).")
    var stageOrCheckpoint: String


    @Option(name: .long, help: "The file format (onnx).")
    var format: String = "onnx"

    @OptionGroup var trained: TrainedStageOptions

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("The model file to write.", valueName: "file"))
    var output: String




    @Option(name: .long, help: "The head to export.")
    var head: String = "segmentation"

    func validate() throws {
        guard format == "onnx" else { throw ValidationError("--format '\(format)' is not one Distillery writes; formats: onnx") }
        guard !output.isEmpty else { throw ValidationError("--output needs a file name") }
    }

    func run() throws {
        let chosen = try trained.choice(stageOrCheckpoint)
        let (setting, model, training, plan) = (chosen.setting, chosen.model, chosen.training, chosen.plan)
        let stageName = setting.stage
        let p = setting.preprocess
        // A fixed input of the trained size (a slice, or a 3D network's patch); any values trace the same graph.
        var rng = RNG(seed: 1)
        let input = rng.uniformTensor([1, p.channels] + p.inputExtent, -1, 1)
        guard let outputs = setting.model.heads.first(where: { $0.name == head })?.channels else {
            throw usage("the model of '\(stageName)' has no head '\(head)'; heads: \(setting.model.heads.map(\.name).joined(separator: ", "))")
        }
        let metadata = Self.metadata(setting, training: training, outputs: outputs, spec: trained.spec, variant: trained.variant, checkpoint: chosen.checkpoint ?? "\(trained.store)/stages/\(setting.train.hash)/best.safetensors")
        let result: ONNXExport.Result
        do {
            result = try ONNXExport.export(model, head: head, input: input, graphName: "\(plan.specName ?? "distillery")/\(stageName)",
                                           metadata: metadata, producerVersion: "\(Distill.configuration.version) (runtime format \(RuntimeFormat.version))")
        } catch let failure as ONNXExport.Failure {
            throw usage(failure.description)
        }
        do {
            let folder = (output as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            try result.model.write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw usage("cannot write \(output): \(error.localizedDescription)")
        }
        let shape = result.logits.shape
        print("\(stageName) -> \(output): ONNX opset \(ONNXExport.opset), \(result.nodeCount) nodes, \(model.store.parameterCount) parameters, "
              + "\(ByteCountFormatter.string(fromByteCount: Int64(result.model.count), countStyle: .binary))")
        let axes = p.volume == nil ? ["height", "width"] : ["depth", "height", "width"]
        func dims(_ sizes: [Int]) -> String { zip(axes, sizes).map { result.dynamic ? $0.0 : String($0.1) }.joined(separator: ", ") }
        print("input image [\(result.dynamic ? "batch" : "1"), \(p.channels), \(dims(p.inputExtent))], "
              + "output logits [\(result.dynamic ? "batch" : "1"), \(shape[1]), \(dims(Array(shape.dropFirst(2))))]")
    }

    /// What a consumer needs to make the input and read the output, as key/value pairs.
    static func metadata(_ s: Prediction.Setting, training: Prediction.TrainingData, outputs: Int, spec: String, variant: String?, checkpoint: String) -> [(String, String)] {
        let p = s.preprocess
        let classes = s.classes.classes
        let decode: String
        if outputs == 1 {
            decode = s.onLogit ? "one channel: foreground where the logit >= \(s.threshold)"
                               : "one channel: foreground where sigmoid(logit) >= \(s.threshold)"
        } else {
            decode = "argmax over the channels: channel 0 is background, channel k is class k"
        }
        var normalisation: [String] = []
        for (m, n) in p.normalize.enumerated() {
            let name = p.modalities.map { $0[m] } ?? "image"
            switch n {
            case .window:
                switch p.window {
                case .hounsfield(let low, let high): normalisation.append("\(name): clip to the HU window [\(low), \(high)] and scale to [0, 1]")
                case .clip255: normalisation.append("\(name): clip to [0, 255] and divide by 255")
                }
            case .zscore(let mask): normalisation.append("\(name): z-score of each volume over \(mask.json.canonical)")
            case .percentile(let low, let high):
                let st = m < training.statistics.count ? training.statistics[m] : nil
                normalisation.append("\(name): clip to the training data's \(low) and \(high) percentiles"
                                     + (st.map { " [\($0.low), \($0.high)], then (x - \($0.mean)) / \($0.sd)" } ?? ", then z-score with their mean and sd"))
            }
        }
        let channels = p.modalities.map { "the modalities \($0.joined(separator: ", ")) in this order" }
            ?? (p.channels == 3 ? "the one modality three times (as RGB)" : "the one modality")
        return [
            ("distillery.spec", spec),
            ("distillery.stage", s.stage),
            ("distillery.variant", variant ?? ""),
            ("distillery.checkpoint", checkpoint),
            ("distillery.architecture", s.model.json.canonical),
            ("distillery.input", p.volume.map { v in
                "a patch of [depth, height, width] voxels of the volume, depth along the \(p.sliceAxis.rawValue) axis and rows from anterior (or superior) down, "
                    + "resampled (third-order) to \(training.spacing.map { $0.map { String(format: "%g", $0) }.joined(separator: " x ") + " mm" } ?? "the training spacing"); "
                    + "channels: \(channels); trained on patches of \(v.patch.map(String.init).joined(separator: " x ")), predicted by overlapping windows (step half a patch, Gaussian weights)"
            } ?? "one slice of the volume across the \(p.sliceAxis.rawValue) axis, resized (bilinear) to \(p.height) x \(p.width), "
                + "channels: \(channels); the slice keeps the volume's voxel grid (no resampling to a fixed spacing)"),
            ("distillery.slice_axis", p.sliceAxis.rawValue),
            ("distillery.size", p.inputExtent.map(String.init).joined(separator: " x ")),
            ("distillery.normalisation", normalisation.joined(separator: "; ")),
            ("distillery.preprocess", p.json.canonical),
            ("distillery.classes", classes.map { "\($0.name): label \($0.values.map(String.init).joined(separator: ", "))" }.joined(separator: "; ")),
            ("distillery.decode", decode),
        ]
    }

    func usage(_ message: String) -> ExitCode { usageError(message) }
}
