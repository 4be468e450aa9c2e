import Foundation
import Hashing
import StageConfig

/// A dataset read as far as its headers, before anything trains (nnU-Net's dataset
/// integrity check): the folder and its manifest, the modalities the spec names, and
/// for every case that each image and its label are readable and share one grid.
/// `distill check`, `distill plan` and the prepare stage all read it.
public struct DatasetScan: Sendable {
    /// A case's geometry, from its label's header.
    public struct CaseGeometry: Sendable, Equatable {
        public var id: String
        /// Voxels along each canonical axis.
        public var dims: [Int]
        public var spacing: [Double]
    }

    public var dataset: MSDDataset?
    /// The cases whose headers were read, in the dataset's order.
    public var cases: [CaseGeometry]
    public var problems: [DatasetProblem]

    /// Scans `root`. `modalities` are the names the spec picks (nil: the dataset must have one).
    public static func scan(_ root: String, modalities: [String]?, analyzeOrientation: AxisOrientation?) -> DatasetScan {
        let (dataset, listing) = MSDDataset.survey(root, analyzeOrientation: analyzeOrientation)
        var problems = listing
        guard let dataset else { return DatasetScan(dataset: nil, cases: [], problems: problems) }
        let declared = dataset.modality
        if let names = modalities {
            let unknown = names.filter { !declared.contains($0) }
            if !unknown.isEmpty {
                let manifest = root + "/dataset.json"
                problems.append(DatasetProblem(.modality, "the spec picks modalit\(unknown.count == 1 ? "y" : "ies") \(unknown.map { "'\($0)'" }.joined(separator: ", ")), "
                    + "but \(FileManager.default.fileExists(atPath: manifest) ? "dataset.json declares " + (declared.isEmpty ? "none" : declared.joined(separator: ", ")) : "the folder has no dataset.json to name modalities")",
                    files: [manifest]))
            }
        } else if declared.count > 1 {
            problems.append(DatasetProblem(.modality, "dataset.json declares \(declared.count) modalities (\(declared.joined(separator: ", "))); choose them with data.preprocess.modalities",
                                           files: [root + "/dataset.json"]))
        }
        var cases: [CaseGeometry] = []
        for c in dataset.cases {
            do {
                let label = try NIfTI.header(c.label, analyzeOrientation: analyzeOrientation)
                guard label.channels == 1 else {
                    problems.append(DatasetProblem(.geometry, "\(c.label): a label has one volume, this one \(label.channels)", files: [c.label]))
                    continue
                }
                var caseProblems: [DatasetProblem] = []
                let images = try c.images.map { try NIfTI.header($0, analyzeOrientation: analyzeOrientation) }
                for h in images + [label] { if let apart = h.transformsDisagree { problems.append(Self.disagreement(h.path, apart)) } }
                let channels = c.images.count > 1 ? images.count : (images.first?.channels ?? 0)
                if !declared.isEmpty, channels != declared.count {
                    caseProblems.append(DatasetProblem(.modality, "\(c.image): has \(channels) modalit\(channels == 1 ? "y" : "ies"), dataset.json declares \(declared.count) (\(declared.joined(separator: ", ")))",
                                                       files: c.images))
                }
                for image in images {
                    if let mismatch = image.grid.mismatch(label.grid) {
                        caseProblems.append(DatasetProblem(.geometry, "\(c.label) does not lie on the grid of \(image.path): \(mismatch)", files: [c.label, image.path]))
                    }
                }
                problems += caseProblems
                if caseProblems.isEmpty { cases.append(CaseGeometry(id: c.id, dims: label.dims, spacing: label.spacing)) }
            } catch {
                let file = (error as? NIfTIError).flatMap(Self.file) ?? c.label
                problems.append(DatasetProblem(.header, "\(error)", files: [file]))
            }
        }
        problems += identicalImages(dataset)
        return DatasetScan(dataset: dataset, cases: cases, problems: problems)
    }

    /// Cases whose image files are byte for byte the same (one scan under two ids): each group
    /// named once. A digest of every image file, read at 1-2 GB/s.
    static func identicalImages(_ dataset: MSDDataset) -> [DatasetProblem] {
        var byDigest: [String: [MSDDataset.Case]] = [:]
        for c in dataset.cases {
            guard let digest = try? c.images.map({ try SHA256.fileDigest($0).digest }).joined(separator: "+") else { continue }
            byDigest[digest, default: []].append(c)
        }
        return byDigest.values.filter { $0.count > 1 }.sorted { $0[0].id < $1[0].id }.map { same in
            DatasetProblem(.duplicate, "cases \(same.map(\.id).joined(separator: " and ")) have identical images (\(MSDDataset.names(same.map(\.image)))): "
                           + "one scan under two ids would land in two splits; remove the copy", files: same.map(\.image))
        }
    }

    /// A volume whose qform and sform both apply and lie `apart` mm apart.
    public static func disagreement(_ path: String, _ apart: Double) -> DatasetProblem {
        DatasetProblem(.transforms, "\(path): its sform and qform are both set and lie \(String(format: "%.1f", apart)) mm apart; "
                       + "the sform is used (the NIfTI standard's rule, as nibabel applies it)", files: [path])
    }

    static func file(_ error: NIfTIError) -> String? {
        switch error {
        case .missing(let f), .notNIfTI(let f, _), .analyze(let f), .truncated(let f, _, _), .corruptStream(let f, _), .unsupportedDatatype(let f, _),
             .notThreeD(let f, _), .tooLarge(let f, _), .badOrientation(let f), .writeFailed(let f): return f
        case .mismatch(_, let label, _): return label
        }
    }
}

/// Every voxel of a dataset read before anything is queued (`distill check --data`, `distill
/// submit`): the voxel problems the prepare stage would stop at (NaN and infinite voxels,
/// label values the spec does not name, labels that are not whole numbers, a file whose
/// body cannot be read), found on the machine that submits rather than in a cluster job.
public enum VoxelScan {
    /// How far a scan is: cases read of all, bytes of their files, seconds since it began.
    public struct Progress: Sendable {
        public var cases: Int, total: Int, bytes: Int, voxels: Int, seconds: Double
        public static let none = Progress(cases: 0, total: 0, bytes: 0, voxels: 0, seconds: 0)
        /// Millions of voxels (of every image and label) read per second.
        public var rate: Double { seconds > 0 ? Double(voxels) / 1e6 / seconds : 0 }
    }

    /// Scans `cases` (those whose headers read cleanly) of `dataset`, reading the modalities
    /// `modalities` picks; every problem of every case, and the final progress.
    public static func scan(_ dataset: MSDDataset, cases: [MSDDataset.Case], modalities: [String]?, classes: LabelClasses, background: [Int],
                            progress: (Progress) -> Void) -> (problems: [DatasetProblem], done: Progress) {
        let start = Date()
        var audit = VoxelAudit(classes: classes, background: background)
        var problems: [DatasetProblem] = [], bytes = 0, voxels = 0
        var state = Progress.none
        for (i, c) in cases.enumerated() {
            do {
                let images = try dataset.readModalities(c, names: modalities), label = try dataset.read(c.label)
                audit.audit(case: c.id, label: label, images: images, files: (c.image, c.label))
                voxels += (images + [label]).map(\.count).reduce(0, +)
            } catch let problem as DatasetProblem {
                problems.append(problem)
            } catch {
                let file = (error as? NIfTIError).flatMap(DatasetScan.file) ?? c.image
                problems.append(DatasetProblem(.header, "\(error)", files: [file]))
            }
            for f in Set(c.images + [c.label]) { bytes += (try? FileManager.default.attributesOfItem(atPath: f)[.size] as? Int) ?? 0 }
            state = Progress(cases: i + 1, total: cases.count, bytes: bytes, voxels: voxels, seconds: Date().timeIntervalSince(start))
            progress(state)
        }
        return (problems + audit.problems(), state)
    }
}

/// What the voxels of a prepared dataset hold that the spec does not account for:
/// label values that are neither a class nor background, label values that are not
/// integers, image voxels that are not numbers. Collected over every case, then
/// reported together (each value with the cases that hold it).
public struct VoxelAudit: Sendable {
    /// Label values known, and who declares them (for the message).
    let known: Set<Int>
    let declaredBy: String
    let advice: String
    var unknown: [Float: [String]] = [:]
    var fractional: [String] = []
    /// Label files with NaN or infinite values, and image files with NaN or infinite voxels (with the counts).
    var nonFiniteLabels: [(file: String, nan: Int, infinite: Int)] = []
    var notANumber: [(file: String, nan: Int, infinite: Int)] = []

    /// A spec's view: the classes' values and the declared background's.
    public init(classes: LabelClasses, background: [Int]) {
        known = Set(classes.classes.flatMap(\.values) + background)
        declaredBy = "neither a class of data.foreground nor data.background (\(background.map(String.init).joined(separator: ", ")))"
        advice = "name each as a class's value, or as background"
    }

    /// A dataset's own view: the values its dataset.json names (`labels`).
    public init(labels: [Int: String]) {
        known = Set(labels.keys)
        declaredBy = "not among dataset.json's labels (\(labels.keys.sorted().map(String.init).joined(separator: ", ")))"
        advice = "add each to dataset.json's labels, or correct the label files"
    }

    /// Reads one case's label and images.
    public mutating func audit(case id: String, label: Volume, images: [Volume], files: (image: String, label: String)) {
        var seen = Set<Float>()
        var fraction = false
        for v in label.data where v.isFinite && !seen.contains(v) {
            seen.insert(v)
            if v != v.rounded() { fraction = true }
        }
        if fraction { fractional.append(files.label) }
        let labelCounts = Self.nonFinite(label.data)
        if labelCounts.nan + labelCounts.infinite > 0 { nonFiniteLabels.append((files.label, labelCounts.nan, labelCounts.infinite)) }
        for v in seen where v == v.rounded() && !known.contains(Int(v)) { unknown[v, default: []].append(id) }
        let counts = images.map { Self.nonFinite($0.data) }
        let (nan, infinite) = (counts.map(\.nan).reduce(0, +), counts.map(\.infinite).reduce(0, +))
        if nan + infinite > 0 { notANumber.append((files.image, nan, infinite)) }
    }

    /// NaN and infinite values among `data`.
    static func nonFinite(_ data: [Float]) -> (nan: Int, infinite: Int) {
        var nan = 0, infinite = 0
        for v in data where !v.isFinite { if v.isNaN { nan += 1 } else { infinite += 1 } }
        return (nan, infinite)
    }

    /// "imagesTr/case_1.nii.gz (12 NaN, 3 infinite)", up to five, then how many more.
    static func counted(_ files: [(file: String, nan: Int, infinite: Int)]) -> String {
        let shown = files.prefix(5).map { "\(MSDDataset.shortName($0.file)) (\($0.nan) NaN, \($0.infinite) infinite)" }.joined(separator: ", ")
        return files.count > 5 ? shown + " and \(files.count - 5) more" : shown
    }

    /// Every problem found, or none.
    public func problems() -> [DatasetProblem] {
        var out: [DatasetProblem] = []
        if !unknown.isEmpty {
            let values = unknown.keys.sorted().map { v in "\(Int(v)) (\(Self.cases(unknown[v] ?? [])))" }
            out.append(DatasetProblem(.labels, "label value\(unknown.count == 1 ? "" : "s") \(values.joined(separator: ", ")) \(unknown.count == 1 ? "is" : "are") "
                                      + "\(declaredBy): \(advice)",
                                      files: []))
        }
        if !fractional.isEmpty {
            out.append(DatasetProblem(.labels, "labels that are not whole numbers (a label map resampled with interpolation?): \(MSDDataset.names(fractional))", files: fractional))
        }
        if !nonFiniteLabels.isEmpty {
            out.append(DatasetProblem(.labels, "labels with NaN or infinite values: \(Self.counted(nonFiniteLabels))", files: nonFiniteLabels.map(\.file)))
        }
        if !notANumber.isEmpty {
            out.append(DatasetProblem(.voxels, "images with NaN or infinite voxels: \(Self.counted(notANumber))", files: notANumber.map(\.file)))
        }
        return out
    }

    static func cases(_ ids: [String]) -> String {
        ids.count <= 3 ? ids.joined(separator: ", ") : ids.prefix(3).joined(separator: ", ") + " and \(ids.count - 3) more cases"
    }
}
