import Foundation
import StageConfig
import Storage

/// What is wrong with a dataset: its folder, its manifest, its files, its volumes'
/// headers, or (read at prepare) its voxels. The kind decides the diagnostic id that
/// `distill check` and `distill run` both give it (Plan's DataDiagnostics).
public struct DatasetProblem: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The folder is not there.
        case folder
        /// dataset.json cannot be read, or contradicts itself.
        case manifest
        /// Files listed but missing, or there but not listed.
        case files
        /// Modalities the spec names that the dataset lacks, or images with another number of them.
        case modality
        /// A volume's header cannot be read.
        case header
        /// An image and its label (or two modalities) do not share one grid.
        case geometry
        /// Label values the spec does not account for, or that are not integers.
        case labels
        /// Image voxels that are not numbers (NaN, infinite).
        case voxels
        /// One patient in two places: a case id listed twice, or two cases with identical images.
        case duplicate
        /// dataset.json names a file outside the dataset folder.
        case outside
        /// A volume's qform and sform both apply and disagree (a warning: the sform is used).
        case transforms
        /// Case ids that `data.split.patient` does not match: their patient is unknown.
        case patient

        /// A warning, not a reason to stop: `distill check` and the prepare stage say it and go on.
        public var isWarning: Bool {
            switch self {
            case .folder, .transforms: true
            case .manifest, .files, .modality, .header, .geometry, .labels, .voxels, .duplicate, .outside, .patient: false
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// The files it concerns.
    public var files: [String]

    public init(_ kind: Kind, _ message: String, files: [String]) { (self.kind, self.message, self.files) = (kind, message, files) }

    public var description: String { message }
}

/// Several problems at once (every one a dataset has, not only the first).
public struct DatasetProblems: Error, CustomStringConvertible, Sendable {
    public var problems: [DatasetProblem]
    public init(_ problems: [DatasetProblem]) { self.problems = problems }
    public var description: String { problems.map(\.message).joined(separator: "\n") }
}

/// A Medical Segmentation Decathlon folder: `dataset.json`, `imagesTr/`, `labelsTr/`;
/// also the nnU-Net v2 layout (`imagesTr/CASE_0000.nii.gz`, labels as name -> value).
public struct MSDDataset: Sendable {
    public struct Case: Sendable, Hashable {
        /// The patient id: the image file's name without extension and channel suffix.
        public var id: String
        /// The image: one file (3D, or 4D with the modalities on the fourth axis, as MSD stores them).
        public var image: String
        /// nnU-Net v2's one file per modality (`CASE_0000`, `CASE_0001`, ...); `[image]` otherwise.
        public var images: [String]
        public var label: String

        public init(id: String, image: String, images: [String]? = nil, label: String) {
            (self.id, self.image, self.images, self.label) = (id, image, images ?? [image], label)
        }
    }

    public var root: String
    /// How to read ANALYZE 7.5 files of this dataset (nil: they are refused).
    public var analyzeOrientation: AxisOrientation?
    public var name: String
    public var modality: [String]
    /// Label value -> name.
    public var labels: [Int: String]
    public var cases: [Case]

    /// Reads one of the dataset's volumes.
    public func read(_ path: String) throws -> Volume { try NIfTI.read(path, analyzeOrientation: analyzeOrientation) }

    /// The modalities `names` of a case's image, in that order (nil: the image's only one).
    public func readModalities(_ c: Case, names: [String]?) throws -> [Volume] {
        let all = c.images.count > 1 ? try c.images.map { try read($0) } : try NIfTI.readChannels(c.image, analyzeOrientation: analyzeOrientation)
        return try Self.select(all, names: names, declared: modality, file: c.image)
    }

    /// The volumes of `names` among `all`, whose modalities `declaredBy` (dataset.json, or
    /// the training data a prediction reads against) declares as `declared`.
    public static func select(_ all: [Volume], names: [String]?, declared: [String], file: String, declaredBy: String = "dataset.json") throws -> [Volume] {
        if !declared.isEmpty, all.count != declared.count {
            throw DatasetProblem(.modality, "\(file): has \(all.count) modalit\(all.count == 1 ? "y" : "ies"), \(declaredBy) declares \(declared.count) (\(declared.joined(separator: ", ")))", files: [file])
        }
        // The modalities share one grid, checked once for the file.
        if let first = all.first, let other = all.first(where: { $0.dims != first.dims }) {
            throw DatasetProblem(.geometry, "\(file): its modalities differ in size: \(other.dims) and \(first.dims)", files: [file])
        }
        guard let names else {
            guard all.count == 1 else {
                throw DatasetProblem(.modality, "\(file): has \(all.count) modalities (\(declared.joined(separator: ", "))); choose them with data.preprocess.modalities", files: [file])
            }
            return all
        }
        return try names.map { name in
            guard let i = declared.firstIndex(of: name) else {
                throw DatasetProblem(.modality, "\(file): no modality '\(name)'; \(declaredBy) declares \(declared.isEmpty ? "none" : declared.joined(separator: ", "))", files: [file])
            }
            return all[i]
        }
    }

    /// Opens a dataset folder. `analyzeOrientation` states the orientation of ANALYZE 7.5
    /// files, which record none; without it such files are refused when read. Throws the
    /// first problem `survey` finds.
    public static func load(_ root: String, analyzeOrientation: AxisOrientation? = nil) throws -> MSDDataset {
        let (dataset, problems) = survey(root, analyzeOrientation: analyzeOrientation)
        if let first = problems.first { throw first }
        guard let dataset else { throw DatasetProblem(.folder, "\(root): not a dataset folder", files: [root]) }
        return dataset
    }

    /// Reads a dataset folder's manifest and file listing (no volume), with every problem
    /// of the folder: a manifest that cannot be read, listed files that are missing, images
    /// without labels, and files in imagesTr/ or labelsTr/ that the manifest leaves out.
    /// The dataset holds the cases whose files are all there.
    public static func survey(_ folder: String, analyzeOrientation: AxisOrientation? = nil) -> (MSDDataset?, [DatasetProblem]) {
        let fm = FileManager.default
        // One spelling of every path, so that listed and found files compare equal.
        let root = (folder as NSString).standardizingPath
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            return (nil, [DatasetProblem(.folder, "\(root): no such dataset folder", files: [root])])
        }
        var problems: [DatasetProblem] = []
        let manifestPath = root + "/dataset.json"
        var manifest: [String: Any] = [:]
        if let data = fm.contents(atPath: manifestPath) {
            guard let m = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                return (nil, [DatasetProblem(.manifest, "\(manifestPath): not a JSON object", files: [manifestPath])])
            }
            manifest = m
        }
        var labels: [Int: String] = [:]
        if let l = manifest["labels"] as? [String: Any] {
            for (k, v) in l {
                if let value = Int(k), let name = v as? String { labels[value] = name }  // MSD: "1": "spleen"
                else if let value = v as? Int { labels[value] = k }                       // nnU-Net v2: "spleen": 1
            }
        }
        var modality: [String] = []
        if let m = (manifest["modality"] ?? manifest["channel_names"]) as? [String: String] {
            modality = m.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }.map(\.value)
        }
        func listing(_ sub: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: root + "/" + sub)) ?? []).filter { !$0.hasPrefix(".") && ($0.hasSuffix(".nii.gz") || $0.hasSuffix(".nii")) }.sorted()
        }
        var cases: [Case] = []
        if let training = manifest["training"] as? [[String: Any]] {
            for (i, entry) in training.enumerated() {
                guard let image = entry["image"] as? String, let label = entry["label"] as? String else {
                    problems.append(DatasetProblem(.manifest, "\(manifestPath): training entry \(i + 1) lacks 'image' or 'label'", files: [manifestPath]))
                    continue
                }
                // A dataset's files lie inside its folder: an absolute path or one that climbs out is refused, not read.
                let outside = [image, label].filter { !Self.staysInside($0) }
                guard outside.isEmpty else {
                    problems.append(DatasetProblem(.outside, "\(manifestPath): training entry \(i + 1) names \(outside.map { "'\($0)'" }.joined(separator: " and ")), "
                                                   + "outside the dataset folder; list files by paths inside it, like ./imagesTr/case.nii.gz", files: [manifestPath]))
                    continue
                }
                cases.append(Case(id: caseID(image), image: resolve(root, image), label: resolve(root, label)))
            }
            // One case id, one entry: a case listed twice could land in two splits.
            var entries: [String: [Int]] = [:]
            for (i, c) in cases.enumerated() { entries[c.id, default: []].append(i) }
            for (id, listed) in entries.sorted(by: { $0.key < $1.key }) where listed.count > 1 {
                problems.append(DatasetProblem(.duplicate, "\(manifestPath): case \(id) is listed \(listed.count) times (\(Self.names(listed.map { cases[$0].image })))"
                                               + ": one patient in two entries could land in two splits; list each case once", files: [manifestPath]))
            }
            cases = cases.enumerated().filter { entries[$0.element.id]?.first == $0.offset }.map(\.element)
            if let n = manifest["numTraining"] as? Int, n != training.count {
                problems.append(DatasetProblem(.manifest, "\(manifestPath): numTraining is \(n) but 'training' lists \(training.count) cases", files: [manifestPath]))
            }
            // Files the manifest leaves out would be silently unused.
            let listed = Set(cases.flatMap { [$0.image, $0.label] })
            for sub in ["imagesTr", "labelsTr"] {
                let extra = listing(sub).map { root + "/" + sub + "/" + $0 }.filter { !listed.contains($0) }
                if !extra.isEmpty {
                    problems.append(DatasetProblem(.files, "\(extra.count) file\(extra.count == 1 ? "" : "s") in \(sub)/ that dataset.json does not list: "
                                                   + Self.names(extra) + "; add \(extra.count == 1 ? "it" : "them") to 'training' or move \(extra.count == 1 ? "it" : "them") out", files: extra))
                }
            }
        } else {
            // nnU-Net v2: list imagesTr, pair CASE_0000.ext with labelsTr/CASE.ext.
            let ending = (manifest["file_ending"] as? String) ?? ".nii.gz"
            let images = listing("imagesTr").filter { $0.hasSuffix(ending) }
            for image in images {
                let id = caseID(image)
                if image.hasSuffix("_0000\(ending)") || !image.contains("_000") {
                    // The other modalities of the case: CASE_0001, CASE_0002, ...
                    let stem = String(image.dropLast("_0000\(ending)".count))
                    let channels = image.hasSuffix("_0000\(ending)")
                        ? images.filter { $0.hasPrefix(stem + "_") && $0.count == image.count }.map { root + "/imagesTr/" + $0 } : nil
                    cases.append(Case(id: id, image: root + "/imagesTr/" + image, images: channels, label: root + "/labelsTr/" + id + ending))
                }
            }
            let ids = Set(cases.map(\.id))
            let orphans = listing("labelsTr").filter { !ids.contains(caseID($0)) }.map { root + "/labelsTr/" + $0 }
            if !orphans.isEmpty {
                problems.append(DatasetProblem(.files, "\(orphans.count) label\(orphans.count == 1 ? "" : "s") in labelsTr/ without an image: " + Self.names(orphans), files: orphans))
            }
        }
        guard !cases.isEmpty else {
            return (nil, problems + [DatasetProblem(.files, "\(root): no training cases found (imagesTr/ and labelsTr/ are empty or missing)", files: [root])])
        }
        var complete: [Case] = []
        for c in cases {
            let missing = (c.images + [c.label]).filter { !fm.fileExists(atPath: $0) }
            if missing.isEmpty { complete.append(c); continue }
            let what = missing == [c.label] ? "has no label file \(c.label)" : "lists \(Self.names(missing)), which \(missing.count == 1 ? "is" : "are") missing"
            problems.append(DatasetProblem(.files, "case \(c.id) \(what)", files: missing))
        }
        let dataset = MSDDataset(root: root, analyzeOrientation: analyzeOrientation, name: (manifest["name"] as? String) ?? (root as NSString).lastPathComponent,
                                 modality: modality, labels: labels, cases: complete)
        return (complete.isEmpty ? nil : dataset, problems)
    }

    /// Up to five files, each with its folder (`labelsTr/case_1.nii.gz`), then how many more.
    static func names(_ paths: [String]) -> String {
        let shown = paths.prefix(5).map(shortName).joined(separator: ", ")
        return paths.count > 5 ? shown + " and \(paths.count - 5) more" : shown
    }

    /// Whether a path from dataset.json stays inside the folder: relative, and never climbing
    /// above it on the way (`./imagesTr/../imagesTr/x` stays; `../x` and `/x` do not).
    static func staysInside(_ path: String) -> Bool {
        guard !path.hasPrefix("/") else { return false }
        var depth = 0
        for component in path.split(separator: "/") {
            if component == ".." { depth -= 1 } else if component != "." { depth += 1 }
            if depth < 0 { return false }
        }
        return true
    }

    /// A file as its folder and name: `imagesTr/case_1.nii.gz`.
    public static func shortName(_ path: String) -> String {
        let parts = path.split(separator: "/")
        return parts.suffix(2).joined(separator: "/")
    }

    static func resolve(_ root: String, _ path: String) -> String {
        path.hasPrefix("/") ? path : FilePath.resolve(path, against: root, standardized: true)
    }

    /// `spleen_12.nii.gz` -> `spleen_12`; `case_001_0000.nii.gz` -> `case_001`.
    static func caseID(_ path: String) -> String {
        var name = (path as NSString).lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.hasSuffix(ext) { name.removeLast(ext.count) }
        if name.hasSuffix("_0000") { name.removeLast(5) }
        return name
    }
}
