import Foundation
import Hashing
import StageConfig
import Tensor

/// One slice of the preprocessed set.
public struct SliceRecord: Hashable, Sendable {
    public var patient: Int
    public var slice: Int
    public var hasForeground: Bool
}

/// Preprocessed slices on disk, memory-mapped: images as 16-bit fixed point in
/// [0, 1] (one channel; replicated on load when 3 are asked for), labels as class
/// indices in bytes (0 background, k for the k-th class of `LabelClasses`).
/// The file records the dataset fingerprint and settings it was made from, and
/// opening it with others is refused: a cache is never stale.
public final class SliceSet: @unchecked Sendable {
    public let records: [SliceRecord]
    public let patients: [String]
    public let height: Int, width: Int, channels: Int
    public let identity: String
    private let mapped: Data
    private let imageOffset: Int, labelOffset: Int

    static let magic = Array("DSTSLC01".utf8)

    /// The identity of a dataset's content: file names and sizes, and dataset.json.
    public static func fingerprint(_ dataset: MSDDataset) -> String {
        var h = SHA256()
        if let d = FileManager.default.contents(atPath: dataset.root + "/dataset.json") { h.update(Array(d)) }
        for c in dataset.cases {
            for path in [c.image, c.label] {
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                h.update("\((path as NSString).lastPathComponent):\(size)\n")
            }
        }
        return h.finalize()
    }

    /// What a cache was made with besides the data: the preprocessing and the classes.
    static func settingsIdentity(_ settings: Preprocessing, classes: LabelClasses) -> String {
        JSON.object(["preprocess": settings.json, "foreground": classes.json]).canonical
    }

    /// Builds the cache at `path` (atomically) unless a valid one is there; returns it opened.
    public static func prepare(_ dataset: MSDDataset, _ settings: Preprocessing, classes: LabelClasses, cache path: String,
                               progress: ((Int, Int) -> Void)? = nil) throws -> SliceSet {
        let identity = fingerprint(dataset) + " " + settingsIdentity(settings, classes: classes)
        if let existing = try? SliceSet(path: path), existing.identity == identity { return existing }
        var records: [SliceRecord] = []
        var images: [UInt16] = []
        var labels: [UInt8] = []
        for (p, c) in dataset.cases.enumerated() {
            progress?(p, dataset.cases.count)
            let image = try dataset.read(c.image), label = try dataset.read(c.label)
            guard image.dims == label.dims else {
                throw NIfTIError.mismatch(image: c.image, label: c.label, detail: "dimensions \(label.dims) vs \(image.dims)")
            }
            guard zip(image.spacing, label.spacing).allSatisfy({ abs($0 - $1) <= 1e-3 * max(1, abs($0)) }) else {
                throw NIfTIError.mismatch(image: c.image, label: c.label, detail: "spacing \(label.spacing) vs \(image.spacing)")
            }
            let slices = Slicer.slices(image, label, settings, classes: classes, patient: p)
            records += slices.records
            images += slices.images
            labels += slices.labels
        }
        try write(path: path, identity: identity, settings: settings, patients: dataset.cases.map(\.id), records: records, images: images, labels: labels)
        return try SliceSet(path: path)
    }

    static func write(path: String, identity: String, settings: Preprocessing, patients: [String], records: [SliceRecord],
                      images: [UInt16], labels: [UInt8]) throws {
        let out = try encode(identity: identity, settings: settings, patients: patients, records: records, images: images, labels: labels)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        try out.write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw NIfTIError.writeFailed(path) }
    }

    /// Every slice of one unlabelled volume, preprocessed as `settings` say and none
    /// dropped, through the same code as a prepared dataset: what `distill predict` feeds a model.
    public static func unlabelled(_ image: Volume, id: String, settings: Preprocessing) throws -> SliceSet {
        var all = settings
        all.keepEmpty = 1
        let none = Volume(dims: image.dims, spacing: image.spacing, data: [Float](repeating: 0, count: image.count),
                          datatype: "UINT8", orientation: image.orientation)
        let slices = Slicer.slices(image, none, all, classes: .merged([1]), patient: 0)
        let data = try encode(identity: "unlabelled \(id)", settings: all, patients: [id], records: slices.records,
                              images: slices.images, labels: slices.labels)
        return try SliceSet(data: data, origin: id)
    }

    static func encode(identity: String, settings: Preprocessing, patients: [String], records: [SliceRecord],
                       images: [UInt16], labels: [UInt8]) throws -> Data {
        let header: [String: Any] = [
            "identity": identity, "height": settings.height, "width": settings.width, "channels": settings.channels,
            "patients": patients,
            "records": records.map { [$0.patient, $0.slice, $0.hasForeground ? 1 : 0] },
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
        guard data.count >= 16, Array(data.prefix(8)) == Self.magic else { throw DatasetError.badManifest(path, "not a slice cache") }
        let n = Int(data[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        guard n <= data.count - 16, let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 16..<(16 + n))) as? [String: Any],
              let h = header["height"] as? Int, let w = header["width"] as? Int, let c = header["channels"] as? Int,
              let identity = header["identity"] as? String, let patients = header["patients"] as? [String],
              let recs = header["records"] as? [[Int]] else {
            throw DatasetError.badManifest(path, "slice cache header unreadable")
        }
        records = recs.map { SliceRecord(patient: $0[0], slice: $0[1], hasForeground: $0[2] == 1) }
        (height, width, channels, self.identity, self.patients) = (h, w, c, identity, patients)
        imageOffset = 16 + n
        labelOffset = imageOffset + records.count * h * w * 2
        guard labelOffset + records.count * h * w <= data.count else { throw DatasetError.badManifest(path, "slice cache truncated") }
        mapped = data
    }

    public var count: Int { records.count }

    /// Images [B, C, H, W] in [0, 1] and labels [B, 1, H, W] (class indices as floats) for the given slices.
    public func batch(_ indices: [Int]) -> (images: Tensor, labels: Tensor) {
        let plane = height * width
        let images = Tensor(uninitialized: [indices.count, channels, height, width])
        let labels = Tensor(uninitialized: [indices.count, 1, height, width])
        mapped.withUnsafeBytes { raw in
            guard let origin = raw.baseAddress else { return }
            let img = origin.advanced(by: imageOffset).assumingMemoryBound(to: UInt16.self)
            let lab = origin.advanced(by: labelOffset).assumingMemoryBound(to: UInt8.self)
            for (b, s) in indices.enumerated() {
                let src = img + s * plane, dst = images.pointer + b * channels * plane
                for i in 0..<plane { dst[i] = Float(src[i]) * (1 / 65535) }
                for c in 1..<max(1, channels) { (dst + c * plane).update(from: dst, count: plane) }
                let ls = lab + s * plane, ld = labels.pointer + b * plane
                for i in 0..<plane { ld[i] = Float(ls[i]) }
            }
        }
        return (images, labels)
    }
}
