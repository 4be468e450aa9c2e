import ArgumentParser
import Foundation
import NN
import Medical
import Runtime
import StageConfig
import Storage
import Tensor

/// `distill predict`: segment new volumes (no label needed) with a trained stage.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Segment new NIfTI volumes with a trained stage; write label maps in each input's geometry.",
        discussion: """
            STAGE is a stage of the spec, trained in the store (its best checkpoint is used), or a \
            safetensors checkpoint, with --stage naming the spec stage whose model and preprocessing it has. \
            Each input is a NIfTI file (.nii, .nii.gz; 3D, or 4D with the modalities on the fourth axis), nnU-Net's \
            files of one case (CASE_0000.nii.gz, CASE_0001.nii.gz, ...: one volume, written as CASE.nii.gz), or a folder \
            of them. OUTDIR gets each volume's label map (UINT8, or UINT16 for label values above 255) with the \
            input's header: its format (NIfTI-1 or NIfTI-2), shape, qform and sform with their codes, units, intent \
            and description, and beside it CASE.json: the warnings, and how the intensities the model labelled foreground \
            compare with the training data's. A volume that cannot be read is reported and skipped; the others are written, and the \
            exit status is 1.
            """)

    @Argument(help: "A stage of the spec, or a safetensors checkpoint (then give --stage).")
    var stageOrCheckpoint: String

    @Argument(help: "NIfTI volumes, or folders of them.")
    var inputs: [String]


    @OptionGroup var trained: TrainedStageOptions

    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("The folder the label maps are written to.", valueName: "outdir"))
    var output: String

    @Flag(name: .long, help: "Replace label maps that already exist in OUTDIR (never an input, nor a file reached through a symbolic link).")
    var overwrite = false

    @Flag(name: .long, help: "Set NaN and infinite image voxels to the image's lowest finite value and say so (by default such a volume is refused).")
    var replaceNonFinite = false

    @OptionGroup var threading: ThreadsOption

    func run() throws {
        threading.apply()
        let chosen = try trained.choice(stageOrCheckpoint)
        let (setting, model, training) = (chosen.setting, chosen.model, chosen.training)
        let volumes: [Prediction.Input]
        do {
            volumes = try Prediction.inputs(try expand(inputs))
        } catch {
            throw usage("\(error)")
        }
        try checkTargets(volumes)
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw usage("cannot create the output folder \(output): \(error.localizedDescription)")
        }
        var failed = 0
        for input in volumes {
            let path = input.files[0]
            let target = (output as NSString).appendingPathComponent(input.output)
            let shown = input.files.count > 1 ? "\(path) (+\(input.files.count - 1) modalit\(input.files.count == 2 ? "y" : "ies"))" : path
            do {
                var notes: [String] = []
                let result = try Prediction.segment(input, model: model, setting: setting, training: training,
                                                    nonFinite: replaceNonFinite ? .replaceWithMinimum : .refuse) { notes.append($0) }
                for note in notes { print(note.hasPrefix("warning[") ? note : "note: \(note)") }
                let labels = result.labels
                try NIfTI.writeLabels(labels, like: path, to: target)
                let voxels = labels.data.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
                try writeSidecar(input, result, notes: notes, voxels: voxels, stage: setting.stage, to: Self.sidecar(of: target))
                print("\(shown) -> \(target): \(labels.dims.map(String.init).joined(separator: "x")), \(voxels) foreground voxels")
            } catch {
                failed += 1
                // Most errors name the file already; the others get its name in front.
                let text = "\(error)"
                FileHandle.standardError.write(Data("error: \(text.hasPrefix(path) ? "" : path + ": ")\(text)\n".utf8))
            }
        }
        if failed > 0 {
            FileHandle.standardError.write(Data("\(failed) of \(volumes.count) volumes not segmented; the others are in \(output)\n".utf8))
            throw ExitStatus.failure
        }
    }

    /// The JSON beside a label map: `case.nii.gz` -> `case.json`.
    static func sidecar(of target: String) -> String {
        let stem = target.hasSuffix(".nii.gz") ? String(target.dropLast(7)) : target.hasSuffix(".nii") ? String(target.dropLast(4)) : target
        return stem + ".json"
    }

    /// What a reader of the label map should know: its input, the stage, the notes and warnings
    /// printed, and the intensity comparison with the training data.
    func writeSidecar(_ input: Prediction.Input, _ result: Prediction.Segmentation, notes: [String], voxels: Int, stage: String, to path: String) throws {
        let json = JSON.object([
            "inputs": .array(input.files.map(JSON.string)), "stage": .string(stage), "foreground_voxels": .int(voxels),
            "warnings": .array(notes.filter { $0.hasPrefix("warning[") }.map(JSON.string)),
            "notes": .array(notes.filter { !$0.hasPrefix("warning[") }.map(JSON.string)),
            "intensities": .array(result.intensities.map(\.json)),
            "intensities_not_compared": result.uncompared.map(JSON.string) ?? .null,
        ])
        try AtomicFile.write(Data(json.pretty.utf8), to: path)
    }

    /// The volumes to segment: files as given, folders as their NIfTI files (sorted,
    /// hidden files skipped); two inputs with one name would overwrite each other.
    func expand(_ inputs: [String]) throws -> [String] {
        var files: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else { throw usage("no such file or folder '\(input)'") }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []
                let volumes = names.filter { !$0.hasPrefix(".") && ($0.hasSuffix(".nii") || $0.hasSuffix(".nii.gz")) }.sorted()
                guard !volumes.isEmpty else { throw usage("no NIfTI volumes (.nii, .nii.gz) in the folder '\(input)'") }
                files += volumes.map { (input as NSString).appendingPathComponent($0) }
            } else {
                files.append(input)
            }
        }
        return files
    }

    /// Two volumes with one output name would overwrite each other; an output must not replace
    /// an input (the same file, however reached: compared by device and inode, so a folder
    /// linked to the inputs' is caught), nor an existing file without --overwrite, nor be a link.
    func checkTargets(_ volumes: [Prediction.Input]) throws {
        var seen: [String: String] = [:]
        var inputs: [(file: String, id: FileIdentity)] = []
        for v in volumes { for f in v.files { if let id = FileIdentity(f) { inputs.append((f, id)) } } }
        for v in volumes {
            if let other = seen[v.output] { throw usage("'\(other)' and '\(v.files[0])' would both be written to \(output)/\(v.output)") }
            seen[v.output] = v.files[0]
            let target = (output as NSString).appendingPathComponent(v.output)
            for file in [target, Self.sidecar(of: target)] {
                var s = stat()
                guard lstat(file, &s) == 0 else { continue }
                if s.st_mode & S_IFMT == S_IFLNK { throw usage("\(file) is a symbolic link: a prediction is never written through one") }
                if let id = FileIdentity(file), let input = inputs.first(where: { $0.id == id }) {
                    throw usage("\(file) is the input '\(input.file)': the prediction would overwrite it; choose another -o")
                }
                if !overwrite { throw usage("\(file) exists: pass --overwrite to replace it") }
            }
        }
    }

    func usage(_ message: String) -> ExitCode { usageError(message) }
}

/// A file's device and inode (following links): equal for two paths to one file.
struct FileIdentity: Equatable {
    let device: UInt64, inode: UInt64

    init?(_ path: String) {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        (device, inode) = (UInt64(s.st_dev), UInt64(s.st_ino))
    }
}
