import Foundation
import Storage
import Hashing
import StageConfig
import Tensor

/// A slice cache that cannot be read.
public struct SliceSetError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var description: String { "\(path): \(problem)" }
}

/// One slice of the preprocessed set.
public struct SliceRecord: Hashable, Sendable {
    public var patient: Int
    public var slice: Int
    public var hasForeground: Bool
    public init(patient: Int, slice: Int, hasForeground: Bool) { (self.patient, self.slice, self.hasForeground) = (patient, slice, hasForeground) }
}

/// Preprocessed slices on disk, memory-mapped: images as float32 planes, one per
/// modality, already normalised (replicated on load when one modality feeds 3 input
/// channels), labels as class indices in bytes (0 background, k for the k-th class of
/// `LabelClasses`). The file records the dataset fingerprint and settings it was made
/// from, and opening it with others is refused: a cache is never stale.
public final class SliceSet: @unchecked Sendable {
    public let records: [SliceRecord]
    public let patients: [String]
    public let height: Int, width: Int
    /// Input channels a batch has; `planes` are stored per slice (one per modality).
    public let channels: Int, planes: Int
    public let identity: String
    /// The dataset's declared modalities (dataset.json), to pick the same ones from a new volume.
    public let declaredModalities: [String]
    /// Per modality, the training cases' statistics (for `percentile` normalisation).
    public let statistics: [IntensityStatistics?]
    private let mapped: Data
    private let imageOffset: Int, labelOffset: Int

    static let magic = Array("DSTSLC02".utf8)

    /// The identity of a dataset's content: file names and sizes, and dataset.json.
    public static func fingerprint(_ dataset: MSDDataset) -> String {
        var h = SHA256()
        if let d = FileManager.default.contents(atPath: dataset.root + "/dataset.json") { h.update(Array(d)) }
        for c in dataset.cases {
            for path in c.images + [c.label] {
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                h.update("\((path as NSString).lastPathComponent):\(size)\n")
            }
        }
        return h.finalize()
    }

    /// What a cache was made with besides the data: the preprocessing, the classes and,
    /// when statistics are taken from the training cases, the split that names them.
    static func settingsIdentity(_ settings: Preprocessing, classes: LabelClasses, split: SplitSettings?) -> String {
        // Every slice is stored whatever `keep_empty` says (the split thins the training part).
        var stored = settings
        stored.keepEmpty = 1
        var o: [String: JSON] = ["preprocess": stored.json, "foreground": classes.json]
        if let split, settings.normalize.contains(where: \.usesDatasetStatistics) { o["split"] = split.json }
        return JSON.object(o).canonical
    }

    /// Builds the cache at `path` (atomically) unless a valid one is there; returns it opened.
    /// `split` says which cases are training cases, for statistics taken from them. Every
    /// voxel is accounted for first: a label value neither a class's nor `background`, a
    /// label that is not a whole number, an image voxel that is not a number are errors
    /// (all of them, over every case), and no cache is written.
    public static func prepare(_ dataset: MSDDataset, _ settings: Preprocessing, classes: LabelClasses, background: [Int], split: SplitSettings? = nil,
                               cache path: String, progress: ((Int, Int) -> Void)? = nil) throws -> SliceSet {
        let identity = fingerprint(dataset) + " " + settingsIdentity(settings, classes: classes, split: split)
        if let existing = try? SliceSet(path: path), existing.identity == identity { return existing }
        let statistics = try Self.statistics(dataset, settings, split: split)
        var audit = VoxelAudit(classes: classes, background: background)
        var records: [SliceRecord] = []
        var images: [Float] = []
        var labels: [UInt8] = []
        for (p, c) in dataset.cases.enumerated() {
            progress?(p, dataset.cases.count)
            let (modalities, label) = try read(dataset, c, settings)
            audit.audit(case: c.id, label: label, images: modalities, files: (c.image, c.label))
            let slices = Slicer.slices(modalities, label, settings, classes: classes, statistics: statistics, patient: p)
            records += slices.records
            images += slices.images
            labels += slices.labels
        }
        let problems = audit.problems()
        if !problems.isEmpty { throw DatasetProblems(problems) }
        let header = Header(identity: identity, settings: settings, patients: dataset.cases.map(\.id), records: records,
                            declared: dataset.modality, statistics: statistics)
        try write(path: path, header: header, images: images, labels: labels)
        return try SliceSet(path: path)
    }

    /// A case's chosen modalities and its label, checked to share one grid.
    public static func read(_ dataset: MSDDataset, _ c: MSDDataset.Case, _ settings: Preprocessing) throws -> ([Volume], Volume) {
        try read(dataset, c, modalities: settings.modalities)
    }

    /// A case's images of `modalities` (nil: the dataset's only one) and its label, on one grid.
    public static func read(_ dataset: MSDDataset, _ c: MSDDataset.Case, modalities names: [String]?) throws -> ([Volume], Volume) {
        let modalities = try dataset.readModalities(c, names: names), label = try dataset.read(c.label)
        for image in modalities {
            if let mismatch = image.grid.mismatch(label.grid) {
                throw DatasetProblem(.geometry, "\(c.label) does not lie on the grid of \(c.image): \(mismatch)", files: [c.label, c.image])
            }
        }
        return (modalities, label)
    }

    /// Per modality, statistics of the foreground voxels of the cases outside the test split
    /// (every case when slices are split): what `percentile` normalises with, and what
    /// `distill predict` compares a new volume's intensities with (for every modality, at
    /// the percentiles `percentile` names, else 0.5 and 99.5).
    static func statistics(_ dataset: MSDDataset, _ settings: Preprocessing, split: SplitSettings?) throws -> [IntensityStatistics?] {
        var excluded = Set<Int>()
        if let split, split.unit == .patient { excluded = Set(try SplitManifest.cases(dataset.cases.map(\.id), split).test) }
        var samples = [[Float]](repeating: [], count: settings.planes)
        for (p, c) in dataset.cases.enumerated() where !excluded.contains(p) {
            let (modalities, label) = try read(dataset, c, settings)
            let foreground = label.data.indices.filter { label.data[$0] != 0 }
            // At most 10 000 voxels a case, evenly spaced (nnU-Net samples 10 000 at random).
            let step = max(1, foreground.count / 10_000)
            for m in samples.indices where m < modalities.count {
                for i in stride(from: 0, to: foreground.count, by: step) { samples[m].append(modalities[m].data[foreground[i]]) }
            }
        }
        return try settings.normalize.enumerated().map { m, n in
            guard case .percentile(let lo, let hi) = n else { return IntensityStatistics(samples: samples[m], low: 0.5, high: 99.5) }
            guard let s = IntensityStatistics(samples: samples[m], low: lo, high: hi) else {
                throw DatasetProblem(.labels, "\(dataset.root): percentile normalisation of modality \(settings.modalities?[m] ?? "0") needs foreground voxels in the training cases, and they have none", files: [dataset.root])
            }
            return s
        }
    }

    /// Every slice of one unlabelled case, preprocessed as `settings` say and none dropped,
    /// through the same code as a prepared dataset: what `distill predict` feeds a model.
    /// `statistics` are the training data's (for `percentile`).
    public static func unlabelled(_ modalities: [Volume], id: String, settings: Preprocessing, statistics: [IntensityStatistics?]) throws -> SliceSet {
        var all = settings
        all.keepEmpty = 1
        guard let first = modalities.first else { throw DatasetProblem(.modality, "\(id): no image", files: [id]) }
        let none = Volume(dims: first.dims, spacing: first.spacing, data: [Float](repeating: 0, count: first.count),
                          datatype: "UINT8", orientation: first.orientation)
        let slices = Slicer.slices(modalities, none, all, classes: .merged([1]), statistics: statistics, patient: 0)
        let header = Header(identity: "unlabelled \(id)", settings: all, patients: [id], records: slices.records, declared: [], statistics: statistics)
        return try SliceSet(data: try encode(header, images: slices.images, labels: slices.labels), origin: id)
    }

    struct Header {
        var identity: String
        var settings: Preprocessing
        var patients: [String]
        var records: [SliceRecord]
        var declared: [String]
        var statistics: [IntensityStatistics?]
    }

    static func write(path: String, header: Header, images: [Float], labels: [UInt8]) throws {
        let out = try encode(header, images: images, labels: labels)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(out, to: path)
    }

    static func encode(_ h: Header, images: [Float], labels: [UInt8]) throws -> Data {
        let header: [String: Any] = [
            "identity": h.identity, "height": h.settings.height, "width": h.settings.width, "channels": h.settings.channels,
            "planes": h.settings.planes, "patients": h.patients, "modalities": h.declared,
            "statistics": h.statistics.map { $0.map { $0.array as Any } ?? NSNull() },
            "records": h.records.map { [$0.patient, $0.slice, $0.hasForeground ? 1 : 0] },
        ]
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 16) % 64 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data(magic)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        images.withUnsafeBytes { out.append(contentsOf: $0) }
        labels.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Opens a cache file (memory-mapped).
    public convenience init(path: String) throws {
        try self.init(data: try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped), origin: path)
    }

    /// A slice set in `data` (a cache file's bytes); `origin` names it in errors.
    init(data: Data, origin path: String) throws {
        guard data.count >= 16, Array(data.prefix(8)) == Self.magic else { throw SliceSetError(path: path, problem: "not a slice cache of this version") }
        let n = Int(data[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        guard n <= data.count - 16, let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 16..<(16 + n))) as? [String: Any],
              let h = header["height"] as? Int, let w = header["width"] as? Int, let c = header["channels"] as? Int, let planes = header["planes"] as? Int,
              let identity = header["identity"] as? String, let patients = header["patients"] as? [String],
              let declared = header["modalities"] as? [String], let statistics = header["statistics"] as? [Any],
              let recs = header["records"] as? [[Int]], recs.allSatisfy({ $0.count == 3 }), planes >= 1, c == planes || (planes == 1 && c == 3) else {
            throw SliceSetError(path: path, problem: "slice cache header unreadable")
        }
        records = recs.map { SliceRecord(patient: $0[0], slice: $0[1], hasForeground: $0[2] == 1) }
        (height, width, channels, self.planes, self.identity, self.patients, declaredModalities) = (h, w, c, planes, identity, patients, declared)
        self.statistics = statistics.map { s in
            guard let v = s as? [Double], v.count == 4 else { return nil }
            return IntensityStatistics(low: v[0], high: v[1], mean: v[2], sd: v[3])
        }
        imageOffset = 16 + n
        labelOffset = imageOffset + records.count * planes * h * w * MemoryLayout<Float>.size
        guard labelOffset + records.count * h * w <= data.count else { throw SliceSetError(path: path, problem: "slice cache truncated") }
        mapped = data
    }

    public var count: Int { records.count }

    /// Images [B, C, H, W] and labels [B, 1, H, W] (class indices as floats) for the given slices.
    public func batch(_ indices: [Int]) -> (images: Tensor, labels: Tensor) {
        let plane = height * width
        let images = Tensor(uninitialized: [indices.count, channels, height, width])
        let labels = Tensor(uninitialized: [indices.count, 1, height, width])
        mapped.withUnsafeBytes { raw in
            guard let origin = raw.baseAddress else { return }
            let img = origin.advanced(by: imageOffset).assumingMemoryBound(to: Float.self)
            let lab = origin.advanced(by: labelOffset).assumingMemoryBound(to: UInt8.self)
            for (b, s) in indices.enumerated() {
                let dst = images.pointer + b * channels * plane
                dst.update(from: img + s * planes * plane, count: planes * plane)
                for c in planes..<channels { (dst + c * plane).update(from: dst, count: plane) }
                let ls = lab + s * plane, ld = labels.pointer + b * plane
                for i in 0..<plane { ld[i] = Float(ls[i]) }
            }
        }
        return (images, labels)
    }
}
