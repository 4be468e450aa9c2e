import ArgumentParser
import Foundation
import NN
import Plan
import Runtime

/// Prints a usage error and gives the exit status of one (2).
func usageError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitStatus.usage
}

/// The options that, with STAGE|CHECKPOINT, name a trained network (`predict`, `export`).
struct TrainedStageOptions: ParsableArguments {
    @Option(name: .long, help: "The spec that trained the stage.")
    var spec: String

    @Option(name: .long, help: "With a checkpoint file: the spec stage whose model and preprocessing it has.")
    var stage: String?

    @Option(name: .long, help: "The sweep variant, when the stage differs between variants.")
    var variant: String?

    @Option(name: .long, help: "The run store.")
    var store: String = "runs"

    func choice(_ stageOrCheckpoint: String) throws -> TrainedStageChoice {
        try TrainedStageChoice(stageOrCheckpoint, stage: stage, spec: spec, variant: variant, store: store)
    }
}

/// The trained network a command works on (`predict`, `export`): a stage of the
/// spec trained in the store, or a safetensors checkpoint with `--stage` naming the
/// spec stage whose model and preprocessing it has.
struct TrainedStageChoice {
    let setting: Prediction.Setting
    let model: SegmentationModel
    let training: Prediction.TrainingData
    let plan: ExecutionPlan
    /// The checkpoint file given, if one was.
    let checkpoint: String?

    /// Every problem (a missing file, an unknown or untrained stage, an ambiguous variant) is a usage error.
    init(_ stageOrCheckpoint: String, stage: String?, spec: String, variant: String?, store: String) throws {
        // A checkpoint is a file (a folder of the same name, a store say, is not one).
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: stageOrCheckpoint, isDirectory: &isDirectory)
        let isFile = stageOrCheckpoint.hasSuffix(".safetensors") || (exists && !isDirectory.boolValue)
        let stageName: String
        if isFile {
            guard exists else { throw usageError("no such checkpoint '\(stageOrCheckpoint)'") }
            guard let stage else { throw usageError("a checkpoint file needs --stage: the spec stage whose model and preprocessing it has") }
            (stageName, checkpoint) = (stage, stageOrCheckpoint)
        } else {
            if let stage, stage != stageOrCheckpoint { throw usageError("--stage \(stage) contradicts the stage argument '\(stageOrCheckpoint)'") }
            (stageName, checkpoint) = (stageOrCheckpoint, nil)
        }
        (plan, _) = try SpecPlanning.plan(spec, variant: variant, fingerprints: store)
        do {
            setting = try Prediction.setting(stageName, in: plan)
            model = try Prediction.model(setting, store: RunStore(root: store), checkpoint: checkpoint)
            training = try Prediction.trainingData(setting, store: RunStore(root: store))
        } catch let problem as Prediction.Problem {
            throw usageError(problem.description)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitStatus.failure
        }
    }
}
