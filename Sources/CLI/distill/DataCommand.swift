import ArgumentParser
import Figures
import Foundation
import Medical
import Plan
import Runtime
import Spec
import StageConfig

/// `distill data`: look at volumes and datasets, make the phantom.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Inspect NIfTI files and MSD datasets, write the phantom, preview slices.",
        subcommands: [Inspect.self, MakePhantom.self, Preview.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "inspect",
            abstract: "Dimensions, spacing, datatype, orientation, intensity range and label values of a file or every case of a dataset.")

        @Argument(help: "NIfTI files (.nii, .nii.gz) or MSD dataset folders.")
        var paths: [String]

        @Option(help: "Read ANALYZE 7.5 files (no NIfTI magic, no orientation) as having this orientation, e.g. LAS.")
        var analyzeOrientation: String?

        @Flag(help: "For a dataset folder: measure its fingerprint (spacings, sizes, foreground intensities, label voxels) and print the 3D recipe nnU-Net's planning rules compute from it, as `auto` would choose it.")
        var fingerprint = false

        @Option(help: "With --fingerprint: the slice axis that becomes depth (\(SliceAxis.names.joined(separator: ", "))).")
        var sliceAxis = SliceAxis.axial.rawValue

        @Option(help: "With --fingerprint: the GiB a training step of the recipe may take (default: the spec language's execution.memory, \(SpecSchema.defaultMemoryGiB)).")
        var memory: Double = SpecSchema.defaultMemoryGiB

        @Flag(help: "With --fingerprint: print the fingerprint and the recipe as JSON.")
        var json = false

        func validate() throws {
            if let o = analyzeOrientation, AxisOrientation(o) == nil {
                throw ValidationError("--analyze-orientation takes three letters, one of R/L, A/P, S/I each (e.g. LAS), not '\(o)'")
            }
            guard SliceAxis(rawValue: sliceAxis) != nil else {
                throw ValidationError("--slice-axis takes \(SliceAxis.names.joined(separator: ", ")), not '\(sliceAxis)'")
            }
            if !fingerprint, json || sliceAxis != SliceAxis.axial.rawValue || memory != SpecSchema.defaultMemoryGiB {
                throw ValidationError("--slice-axis, --memory and --json go with --fingerprint")
            }
            guard memory > 0, memory.isFinite, memory <= 1_048_576 else { throw ValidationError("--memory must be a number of GiB above 0") }
        }

        /// Exit 0 when everything read, 1 when a file or case has a problem, 2 when a path does not exist.
        func run() throws {
            let orientation = analyzeOrientation.flatMap(AxisOrientation.init)
            var problems = 0, missing = 0
            for path in paths {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    FileHandle.standardError.write(Data("error: no such file or directory: '\(path)'\n".utf8))
                    missing += 1
                    continue
                }
                if fingerprint {
                    guard isDirectory.boolValue else {
                        FileHandle.standardError.write(Data("error: --fingerprint measures a dataset folder; '\(path)' is a file\n".utf8))
                        missing += 1
                        continue
                    }
                    problems += printFingerprint(path, orientation)
                    continue
                }
                problems += isDirectory.boolValue ? inspectDataset(path, orientation) : inspectFile(path, orientation)
            }
            if paths.count > 1 { print(problems == 0 ? "no problems" : "\(problems) problem\(problems == 1 ? "" : "s")") }
            if missing > 0 { throw ExitStatus.usage }
            if problems > 0 { throw ExitStatus.failure }
        }

        func inspectFile(_ path: String, _ orientation: AxisOrientation?) -> Int {
            do {
                for line in try DatasetInspection.file(path, analyzeOrientation: orientation) { print(line) }
                return 0
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                return 1
            }
        }

        /// The dataset's fingerprint and the recipe computed from it: 1 when it cannot be measured.
        func printFingerprint(_ path: String, _ orientation: AxisOrientation?) -> Int {
            do {
                let dataset = try MSDDataset.load(path, analyzeOrientation: orientation)
                let f = try DatasetFingerprint.measure(dataset, axis: SliceAxis(rawValue: sliceAxis) ?? .axial, modalities: nil)
                let classes = max(2, f.labelVoxels.count)
                let template = VolumeRecipe.nnUNetTemplate(inChannels: f.modalities.count, classes: classes)
                let recipe = VolumeRecipe.plan(f, budgetBytes: Int(memory * Double(1 << 30)),
                                               stepBytes: VolumeRecipe.stepBytes(like: template, optimizerSlots: VolumeRecipe.nnUNetOptimizerSlots))
                if json {
                    print(DatasetFingerprintReport.json(f, recipe).pretty, terminator: "")
                } else {
                    for line in DatasetFingerprintReport.lines(f, path: path) + ["3D recipe (nnU-Net's rules, for its network):"] + recipe.lines.map({ "  " + $0 }) {
                        print(line)
                    }
                }
                return 0
            } catch {
                FileHandle.standardError.write(Data("error: \(path): \(error)\n".utf8))
                return 1
            }
        }

        func inspectDataset(_ path: String, _ orientation: AxisOrientation?) -> Int {
            let (readable, problems) = DatasetInspection.dataset(path, analyzeOrientation: orientation) { print($0) }
            guard readable else {
                for p in problems { FileHandle.standardError.write(Data("error: \(p.message)\n".utf8)) }
                return max(1, problems.count)
            }
            for p in problems { print("\(p.kind.isWarning ? "warning" : "problem"): \(p.message)") }
            let count = problems.filter { !$0.kind.isWarning }.count
            print(count == 0 ? "no problems" : "\(count) problem\(count == 1 ? "" : "s")")
            return count
        }
    }

    struct MakePhantom: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "phantom",
            abstract: "Write the synthetic abdominal phantom (spleen 1, liver 2, kidneys 3; CT and optional MR-like modalities) as an MSD folder.")

        @Argument(help: "Output folder.")
        var out: String
        @Option(help: "Patients (default: the spec language's, \(Self.schemaDefault("cases"))).") var cases: Int?
        @Option(help: "Seed (default \(Self.schemaDefault("seed"))).") var seed: Int?
        @Option(help: "In-plane voxels per side (default \(Self.schemaDefault("size"))).") var size: Int?
        @Option(help: "Axial slices per volume (default \(Self.schemaDefault("slices"))).") var slices: Int?
        @Option(help: "Noise standard deviation in HU (default \(Self.schemaDefault("noise"))).") var noise: Double?
        @Option(help: "Share of patients with a small or faint spleen (default \(Self.schemaDefault("hard_cases"))).") var hardCases: Double?
        @Option(help: "A modality name; repeat for more (the first is the CT, the others MR-like contrasts; default \(Self.schemaDefault("modalities"))).")
        var modality: [String] = []

        static func schemaDefault(_ key: String) -> String { SpecSchema.phantom.defaults[key]?.canonical ?? "none" }

        /// The schema's phantom with the given flags applied, checked as a spec's `phantom:` would be.
        func settings() throws -> PhantomSettings {
            guard case .object(var o) = SpecSchema.phantom.defaults else { throw ValidationError("the phantom schema has no defaults") }
            if let cases { o["cases"] = .int(cases) }
            if let seed { o["seed"] = .int(seed) }
            if let size { o["size"] = .int(size) }
            if let slices { o["slices"] = .int(slices) }
            if let noise { o["noise"] = .number(noise) }
            if !modality.isEmpty { o["modalities"] = .array(modality.map(JSON.string)) }
            if let hardCases { o["hard_cases"] = .number(hardCases) }
            do { return try PhantomSettings(json: .object(o)) } catch { throw ValidationError("\(error)") }
        }

        /// The reader of a spec's `phantom:` checks the flags: one set of bounds for both.
        func validate() throws {
            _ = try settings()
        }

        func run() throws {
            let start = Date()
            let s = try settings()
            do {
                try Phantom.write(s, to: out)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitStatus.usage
            }
            print("wrote \(s.cases) cases to \(out) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "preview",
            abstract: "A PNG of one axial slice with the label outlined in red; with --spec --augment, training slices as the spec augments them.")

        @Argument(help: "An MSD dataset folder (not with --spec).")
        var path: String?
        @Option(help: "Case id, e.g. spleen_1.") var `case`: String?
        @Option(help: "A spec: preview its prepared training slices (prepared into --store first if needed).") var spec: String?
        @Flag(help: "With --spec: each slice next to draws of the spec's data.augment.") var augment = false
        @Option(help: "With --augment: augmented draws per slice.") var draws: Int = 5
        @Option(help: "With --spec: the run store.") var store: String = "runs"
        @Option(help: "Axial slice (default: the one with the most foreground).") var slice: Int?
        @Option(help: "The modality to show, by its dataset.json name (default: the first).") var modality: String?
        @Option(name: .shortAndLong, help: "Output PNG.") var output: String
        @Option(help: "Intensity window in HU, low (default: the spec language's window, \(Self.defaultWindow.low)).") var low: Double?
        @Option(help: "Intensity window in HU, high (default \(Self.defaultWindow.high)).") var high: Double?
        @Option(help: "Read ANALYZE 7.5 files (no NIfTI magic, no orientation) as having this orientation, e.g. LAS.")
        var analyzeOrientation: String?

        /// The schema's default `preprocess.window`.
        static var defaultWindow: (low: Double, high: Double) {
            let w = SpecSchema.preprocess.defaults["window"]?.array?.compactMap(\.number) ?? []
            return w.count == 2 ? (w[0], w[1]) : (.nan, .nan)
        }

        func validate() throws {
            if spec != nil {
                guard path == nil, `case` == nil else { throw ValidationError("--spec previews the spec's prepared slices; give no dataset folder or --case with it") }
                guard augment else { throw ValidationError("--spec goes with --augment") }
                guard (1...12).contains(draws) else { throw ValidationError("--draws must be between 1 and 12") }
            } else {
                guard !augment else { throw ValidationError("--augment needs --spec: the augmentation is the spec's data.augment") }
                guard path != nil, `case` != nil else { throw ValidationError("give a dataset folder and --case, or --spec with --augment") }
            }
            let (lo, hi) = (low ?? Self.defaultWindow.low, high ?? Self.defaultWindow.high)
            guard lo < hi else { throw ValidationError("the window needs low < high, found \(lo) and \(hi)") }
            if let o = analyzeOrientation, AxisOrientation(o) == nil {
                throw ValidationError("--analyze-orientation takes three letters, one of R/L, A/P, S/I each (e.g. LAS), not '\(o)'")
            }
        }

        func run() throws {
            if let spec { return try AugmentPreview.run(spec: spec, store: store, draws: draws, output: output) }
            let (low, high) = (self.low ?? Self.defaultWindow.low, self.high ?? Self.defaultWindow.high)
            guard let path, let caseID = `case` else { throw ValidationError("give a dataset folder and --case") }
            do {
                let dataset = try MSDDataset.load(path, analyzeOrientation: analyzeOrientation.flatMap(AxisOrientation.init))
                guard let c = dataset.cases.first(where: { $0.id == caseID }) else {
                    throw ValidationError("no case '\(caseID)'; cases: \(dataset.cases.prefix(10).map(\.id).joined(separator: ", "))")
                }
                // A dataset that names its modalities shows the chosen one (the first by default).
                let names: [String]? = dataset.modality.isEmpty ? nil : [modality ?? dataset.modality[0]]
                let image = try dataset.readModalities(c, names: names)[0]
                let label = try dataset.read(c.label)
                guard image.dims == label.dims else {
                    throw NIfTIError.mismatch(image: c.image, label: c.label, detail: "dimensions \(label.dims) vs \(image.dims)")
                }
                let (w, h, d) = (image.dims[0], image.dims[1], image.dims[2])
                let k = slice ?? SlicePreview.mostForeground(label)
                guard (0..<d).contains(k) else { throw ValidationError("slice \(k) is outside 0..<\(d)") }
                let rgb = SlicePreview.axial(image: image, label: label, slice: k, window: (low, high))
                try PNG.write(width: w, height: h, rgb: rgb, to: output)
                print("wrote \(output): \(c.id), axial slice \(k) of \(d)")
            } catch let e as ValidationError {
                throw e
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitStatus.failure
            }
        }
    }
}
