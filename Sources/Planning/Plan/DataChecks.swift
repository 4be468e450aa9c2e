import Diagnostics
import Foundation
import Medical
import Spec
import StageConfig
import Storage

/// The data layer's diagnostic catalog. `distill check` and `distill plan` give the
/// ones a dataset's headers show (located at the spec's data source); `distill run`
/// gives the same ids for the same problems, and the voxel ones (E0807, E0808) when
/// the data is prepared.
public enum DataDiagnostics {
    public static let folderMissing = DiagnosticID("W0801", .warning, "dataset folder not found")
    public static let manifest = DiagnosticID("E0802", .error, "dataset.json cannot be read")
    public static let files = DiagnosticID("E0803", .error, "dataset files missing or not listed")
    public static let modality = DiagnosticID("E0804", .error, "modalities do not match the dataset")
    public static let header = DiagnosticID("E0805", .error, "a volume's header cannot be read")
    public static let geometry = DiagnosticID("E0806", .error, "an image and its label do not share one grid")
    public static let labels = DiagnosticID("E0807", .error, "label values the spec does not account for")
    public static let voxels = DiagnosticID("E0808", .error, "image voxels that are not numbers")
    public static let duplicate = DiagnosticID("E0809", .error, "one patient in two places")
    public static let outside = DiagnosticID("E0810", .error, "dataset.json names a file outside the dataset folder")
    public static let transforms = DiagnosticID("W0811", .warning, "qform and sform disagree")
    public static let patient = DiagnosticID("E0812", .error, "case ids the patient key does not match")

    /// Given by `distill predict` only (a new volume has no spec location): not among `all`, which `check` gives.
    public static let intensities = DiagnosticID("W0813", .warning, "input intensities unlike the training data's")

    public static let all: [DiagnosticID] = [folderMissing, manifest, files, modality, header, geometry, labels, voxels, duplicate, outside, transforms, patient,
                                             RecipePlanning.tooDeep, RecipePlanning.overBudget, RecipePlanning.notVolumes]

    /// The id of a kind of dataset problem.
    public static func id(_ kind: DatasetProblem.Kind) -> DiagnosticID {
        switch kind {
        case .folder: return folderMissing
        case .manifest: return manifest
        case .files: return files
        case .modality: return modality
        case .header: return header
        case .geometry: return geometry
        case .labels: return labels
        case .voxels: return voxels
        case .duplicate: return duplicate
        case .outside: return outside
        case .transforms: return transforms
        case .patient: return patient
        }
    }

    /// A problem as the runtime reports it: with its id, as `distill check` would.
    public static func text(_ p: DatasetProblem) -> String {
        let id = id(p.kind)
        return "\(id.severity == .error ? "error" : "warning")[\(id.code)]: \(p.message)"
    }
}

/// Reads every dataset a checked spec names, as far as its headers: the diagnostics
/// of its problems, located at the spec's `data.source`.
public enum DataChecks {
    /// The folder a data source names, resolved against the spec's folder.
    public static func folder(_ source: DataSource, specDirectory: String) -> String? {
        guard case .msd(let path, _) = source else { return nil }
        return FilePath.resolve(path, against: specDirectory)
    }

    /// Every distinct dataset of the base spec and its variants, scanned once each.
    public static func check(_ checked: CheckedSpec, specDirectory: String) -> [Diagnostic] {
        var seen = Set<String>(), out: [Diagnostic] = []
        for spec in [checked.base].compactMap({ $0 }) + checked.variants.compactMap(\.spec) {
            let data = spec.data
            if case .phantom = data.source, let problem = phantomLabels(data) {
                let key = "phantom|" + problem.message
                if seen.insert(key).inserted { out += diagnostics([problem], data: data, root: "") }
                continue
            }
            guard case .msd(_, let orientation) = data.source, let root = folder(data.source, specDirectory: specDirectory) else { continue }
            let key = root + "|" + (data.preprocess.modalities ?? []).joined(separator: ",") + "|" + (orientation.map { "\($0.letters)" } ?? "")
            guard seen.insert(key).inserted else { continue }
            let scan = DatasetScan.scan(root, modalities: data.preprocess.modalities, analyzeOrientation: orientation)
            out += diagnostics(scan.problems + patientKey(data.split, ids: scan.dataset?.cases.map(\.id) ?? []), data: data, root: root)
        }
        return out
    }

    /// A dataset a spec reads, once: its folder, and the settings its voxels are checked against.
    public struct LocalDataset {
        public var folder: String
        public var data: DataSpec
    }

    /// The distinct local datasets of the base spec and its variants (those whose folder is there).
    public static func localDatasets(_ checked: CheckedSpec, specDirectory: String) -> [LocalDataset] {
        var seen = Set<String>(), out: [LocalDataset] = []
        for spec in [checked.base].compactMap({ $0 }) + checked.variants.compactMap(\.spec) {
            guard case .msd(_, let orientation) = spec.data.source, let root = folder(spec.data.source, specDirectory: specDirectory),
                  FileManager.default.fileExists(atPath: root) else { continue }
            let key = [root, (spec.data.preprocess.modalities ?? []).joined(separator: ","), orientation.map { "\($0.letters)" } ?? "",
                       spec.data.classes.classes.map { "\($0.values)" }.joined(separator: ";"), "\(spec.data.background)"].joined(separator: "|")
            if seen.insert(key).inserted { out.append(LocalDataset(folder: root, data: spec.data)) }
        }
        return out
    }

    /// Every voxel of a local dataset (the cases whose headers read cleanly: the others are the
    /// header check's to report): the diagnostics of what prepare would refuse, located at the
    /// spec's data source, and how fast it was read.
    public static func scanVoxels(_ dataset: LocalDataset, progress: (VoxelScan.Progress) -> Void) -> (diagnostics: [Diagnostic], done: VoxelScan.Progress) {
        guard case .msd(_, let orientation) = dataset.data.source else { return ([], .none) }
        let scan = DatasetScan.scan(dataset.folder, modalities: dataset.data.preprocess.modalities, analyzeOrientation: orientation)
        guard let msd = scan.dataset else { return ([], .none) }
        let clean = Set(scan.cases.map(\.id))
        let (problems, done) = VoxelScan.scan(msd, cases: msd.cases.filter { clean.contains($0.id) }, modalities: dataset.data.preprocess.modalities,
                                              classes: dataset.data.classes, background: dataset.data.background, progress: progress)
        return (diagnostics(problems, data: dataset.data, root: dataset.folder), done)
    }

    /// Case ids a split's patient key does not match (a key that does not compile is the spec checker's to say).
    static func patientKey(_ split: SplitSettings, ids: [String]) -> [DatasetProblem] {
        guard split.unit == .patient, let key = split.patient, (try? Regex(key)) != nil else { return [] }
        do {
            _ = try SplitManifest.patients(ids, key: key)
            return []
        } catch let problem as DatasetProblem {
            return [problem]
        } catch {
            return [DatasetProblem(.patient, "\(error)", files: [])]
        }
    }

    /// The built-in phantom's label values are known without reading a voxel: each must be a
    /// class's value or background, as prepare would find (E0807), so `check` says it first.
    static func phantomLabels(_ data: DataSpec) -> DatasetProblem? {
        let known = Set(data.classes.classes.flatMap(\.values) + data.background)
        let organs = [(Phantom.Label.spleen, "spleen"), (Phantom.Label.liver, "liver"), (Phantom.Label.kidney, "kidney")]
        let missing = organs.filter { !known.contains($0.0) }
        guard !missing.isEmpty else { return nil }
        return DatasetProblem(.labels, "the phantom's label value\(missing.count == 1 ? "" : "s") " + missing.map { "\($0.0) (\($0.1))" }.joined(separator: ", ")
                              + " \(missing.count == 1 ? "is" : "are") neither a class of data.foreground nor data.background "
                              + "(\(data.background.map(String.init).joined(separator: ", "))): name each as a class's value, or as background", files: [])
    }

    static func diagnostics(_ problems: [DatasetProblem], data: DataSpec, root: String) -> [Diagnostic] {
        let at = data.value["source"]?["msd"]?.range ?? data.value["source"]?.range ?? data.value.range
        let written = data.value["source"]?["msd"]?.string ?? root
        // Files are named relative to the folder the spec names (the diagnostic points at it).
        func relative(_ text: String) -> String { text.replacingOccurrences(of: (root as NSString).standardizingPath + "/", with: "").replacingOccurrences(of: root + "/", with: "") }
        return problems.map { p in
            if p.kind == .folder {
                return Diagnostic(DataDiagnostics.folderMissing, "dataset folder '\(written)' is not there: its cases cannot be checked before a run",
                                  at: at, path: "data.source.msd",
                                  notes: [DiagnosticNote("the data may live on the cluster that runs the plan; there `distill check` reads it")])
            }
            let shown = p.files.prefix(5).map { DiagnosticNote("file: \(relative($0))") }
            let more = p.files.count > 5 ? [DiagnosticNote("and \(p.files.count - 5) more files")] : []
            return Diagnostic(DataDiagnostics.id(p.kind), relative(p.message), at: at,
                              path: data.value["source"]?["msd"] != nil ? "data.source.msd" : "data.source", notes: shown + more)
        }
    }
}

extension SpecChecker {
    /// Checks the spec at `path` and then its data, as far as the headers of its volumes
    /// (what `distill check`, `plan` and `run` use).
    /// `auto` values are computed from the data, with the fingerprints kept in `store` (when
    /// given); `planning` keeps one measured here there (`check` writes nothing).
    public static func checkWithData(path: String, loader: SpecLoader = SpecLoader(),
                                     environment: [String: String] = ProcessInfo.processInfo.environment,
                                     store: String? = nil, planning: Bool = false, progress: (@Sendable (String) -> Void)? = nil) -> CheckedSpec? {
        let base = FilePath.resolve(FilePath.folder(of: path), against: loader.workingDirectory, standardized: true)
        let recipes = RecipePlanning.resolver(specDirectory: base, store: store, keep: planning, progress: progress)
        guard var checked = check(path: path, loader: loader, environment: environment, recipes: recipes) else { return nil }
        checked.diagnostics = (checked.diagnostics + DataChecks.check(checked, specDirectory: base)).sortedForOutput()
        return checked
    }
}
