import Foundation
import StageConfig

/// What is wrong with a dataset folder.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case badManifest(String, String)
    case noCases(String)
    case unpaired(String, String)
    case modalities(String, String)

    public var description: String {
        switch self {
        case .missing(let p): return "\(p): no such dataset folder"
        case .badManifest(let p, let d): return "\(p)/dataset.json: \(d)"
        case .noCases(let p): return "\(p): no training cases found (imagesTr/ and labelsTr/ are empty or missing)"
        case .unpaired(let image, let d): return "\(image): \(d)"
        case .modalities(let image, let d): return "\(image): \(d)"
        }
    }
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

    /// The volumes of `names` among `all`, whose modalities dataset.json declares as `declared`.
    public static func select(_ all: [Volume], names: [String]?, declared: [String], file: String) throws -> [Volume] {
        if !declared.isEmpty, all.count != declared.count {
            throw DatasetError.modalities(file, "has \(all.count) modalit\(all.count == 1 ? "y" : "ies"), dataset.json declares \(declared.count) (\(declared.joined(separator: ", ")))")
        }
        // The modalities share one grid, checked once for the file.
        if let first = all.first, let other = all.first(where: { $0.dims != first.dims }) {
            throw DatasetError.modalities(file, "its modalities differ in size: \(other.dims) and \(first.dims)")
        }
        guard let names else {
            guard all.count == 1 else {
                throw DatasetError.modalities(file, "has \(all.count) modalities (\(declared.joined(separator: ", "))); choose them with data.preprocess.modalities")
            }
            return all
        }
        return try names.map { name in
            guard let i = declared.firstIndex(of: name) else {
                throw DatasetError.modalities(file, "no modality '\(name)'; dataset.json declares \(declared.isEmpty ? "none" : declared.joined(separator: ", "))")
            }
            return all[i]
        }
    }

    /// Opens a dataset folder. `analyzeOrientation` states the orientation of ANALYZE 7.5
    /// files, which record none; without it such files are refused when read.
    public static func load(_ root: String, analyzeOrientation: AxisOrientation? = nil) throws -> MSDDataset {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else { throw DatasetError.missing(root) }
        let manifestPath = root + "/dataset.json"
        var manifest: [String: Any] = [:]
        if let data = fm.contents(atPath: manifestPath) {
            guard let m = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw DatasetError.badManifest(root, "not a JSON object")
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
            modality = m.sorted { $0.key < $1.key }.map(\.value)
        }
        var cases: [Case] = []
        if let training = manifest["training"] as? [[String: Any]] {
            for entry in training {
                guard let image = entry["image"] as? String, let label = entry["label"] as? String else {
                    throw DatasetError.badManifest(root, "a training entry lacks 'image' or 'label'")
                }
                cases.append(Case(id: caseID(image), image: resolve(root, image), label: resolve(root, label)))
            }
        } else {
            // nnU-Net v2: list imagesTr, pair CASE_0000.ext with labelsTr/CASE.ext.
            let ending = (manifest["file_ending"] as? String) ?? ".nii.gz"
            let images = ((try? fm.contentsOfDirectory(atPath: root + "/imagesTr")) ?? []).filter { $0.hasSuffix(ending) && !$0.hasPrefix(".") }.sorted()
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
        }
        guard !cases.isEmpty else { throw DatasetError.noCases(root) }
        for c in cases {
            guard fm.fileExists(atPath: c.image) else { throw DatasetError.unpaired(c.image, "listed but missing") }
            guard fm.fileExists(atPath: c.label) else { throw DatasetError.unpaired(c.image, "has no label file \(c.label)") }
        }
        return MSDDataset(root: root, analyzeOrientation: analyzeOrientation, name: (manifest["name"] as? String) ?? (root as NSString).lastPathComponent,
                          modality: modality, labels: labels, cases: cases)
    }

    static func resolve(_ root: String, _ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return ((root as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// `spleen_12.nii.gz` -> `spleen_12`; `case_001_0000.nii.gz` -> `case_001`.
    static func caseID(_ path: String) -> String {
        var name = (path as NSString).lastPathComponent
        for ext in [".nii.gz", ".nii"] where name.hasSuffix(ext) { name.removeLast(ext.count) }
        if name.hasSuffix("_0000") { name.removeLast(5) }
        return name
    }
}
