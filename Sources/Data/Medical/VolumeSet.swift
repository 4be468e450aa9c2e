import Foundation
import Storage
import StageConfig
import Tensor

/// Preprocessed whole volumes on disk, memory-mapped: what 3D networks train on, in
/// patches. Each case is normalised on its own grid (as slices are), turned into network
/// order [depth, height, width] (depth along the slice axis, rows from anterior or
/// superior down, as slices show them), then resampled to the target spacing: images
/// third-order, labels linearly on one-hot maps. The file records the dataset
/// fingerprint and the settings, and opening it with others is refused, as for slices.
///
/// One record per case (slice 0, foreground if any voxel is): splits and subsets are
/// drawn over cases with the slice machinery, and a split by slice is a split by case.
public final class VolumeSet: SliceInventory, @unchecked Sendable {
    public struct Case: Sendable, Equatable {
        /// [depth, height, width] at the target spacing.
        public var dims: [Int]
        /// The canonical (RAS) dimensions of the source volume, to map predictions back.
        public var native: [Int]
        /// The source's spacing in network order [depth, height, width], mm.
        public var nativeSpacing: [Double]
    }

    public let records: [SliceRecord]
    public let patients: [String]
    public let cases: [Case]
    public let channels: Int, planes: Int
    /// The spacing every case was resampled to, mm [depth, height, width].
    public let spacing: [Double]
    public let axis: SliceAxis
    public let identity: String
    public let declaredModalities: [String]
    public let statistics: [IntensityStatistics?]
    private let mapped: Data
    private let imageOffsets: [Int], labelOffsets: [Int]

    static let magic = Array("DSTVOL01".utf8)

    public var count: Int { cases.count }

    /// Builds the cache at `path` (atomically) unless a valid one is there; returns it opened.
    /// Labels and images are audited as for slices: any problem stops it before a byte is written.
    public static func prepare(_ dataset: MSDDataset, _ settings: Preprocessing, classes: LabelClasses, background: [Int], split: SplitSettings? = nil,
                               cache path: String, progress: ((Int, Int) -> Void)? = nil) throws -> VolumeSet {
        guard let sampling = settings.volume else { throw DatasetProblem(.geometry, "volume preparation without 'patch'", files: [dataset.root]) }
        let identity = SliceSet.fingerprint(dataset) + " volumes " + SliceSet.settingsIdentity(settings, classes: classes, split: split)
        if let existing = try? VolumeSet(path: path), existing.identity == identity { return existing }
        let statistics = try SliceSet.statistics(dataset, settings, split: split)
        let order = networkAxes(settings.sliceAxis)
        var audit = VoxelAudit(classes: classes, background: background)
        var classOf = [Float: UInt8]()
        for (value, k) in classes.indexOfValue { classOf[Float(value)] = UInt8(k) }
        // The target spacing first: it needs every case's header, not its voxels.
        let target = try targetSpacing(sampling.spacing, native: {
            // Headers only: the voxels are read once, below.
            try dataset.cases.map { c in try NIfTI.header(c.label, analyzeOrientation: dataset.analyzeOrientation).spacing }.map { sp in order.map { sp[$0] } }
        })
        var cases: [Case] = [], records: [SliceRecord] = []
        // One case in memory at a time: images and labels stream to temporaries beside the cache
        // (hidden, and removed with the store's other temporaries if the process is killed), and
        // the cache is assembled from them once the header, which needs every case's size, is known.
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let parts = (AtomicFile.temporaryPath(for: path + ".images"), AtomicFile.temporaryPath(for: path + ".labels"))
        defer { unlink(parts.0); unlink(parts.1) }
        let (images, labels) = (try StreamedFile(parts.0), try StreamedFile(parts.1))
        for (p, c) in dataset.cases.enumerated() {
            progress?(p, dataset.cases.count)
            let (modalities, label) = try SliceSet.read(dataset, c, settings)
            audit.audit(case: c.id, label: label, images: modalities, files: (c.image, c.label))
            let size = order.map { label.dims[$0] }, nativeSpacing = order.map { label.spacing[$0] }
            let (values, dims) = image(modalities, settings, statistics: statistics, target: target)
            try values.withUnsafeBytes { try images.append($0) }
            let indices = networkOrder(label, axis: settings.sliceAxis).map { classOf[$0] ?? 0 }
            let resampled = VolumeResampling.resampleLabels(indices, size: size, to: dims, classes: classes.count + 1)
            try resampled.withUnsafeBytes { try labels.append($0) }
            cases.append(Case(dims: dims, native: label.dims, nativeSpacing: nativeSpacing))
            records.append(SliceRecord(patient: p, slice: 0, hasForeground: resampled.contains { $0 > 0 }))
        }
        images.close()
        labels.close()
        let problems = audit.problems()
        if !problems.isEmpty { throw DatasetProblems(problems) }
        let header: [String: Any] = [
            "identity": identity, "channels": settings.channels, "planes": settings.planes, "axis": settings.sliceAxis.rawValue,
            "patients": dataset.cases.map(\.id), "modalities": dataset.modality, "spacing": target,
            "statistics": statistics.map { $0.map { $0.array as Any } ?? NSNull() },
            "cases": zip(cases, records).map { c, r in ["dims": c.dims, "native": c.native, "native_spacing": c.nativeSpacing, "foreground": r.hasForeground] as [String: Any] },
        ]
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 16) % 64 != 0 { json.append(UInt8(ascii: " ")) }
        var head = Data(magic)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { head.append(contentsOf: $0) }
        head.append(json)
        try AtomicFile.write(to: path) { tmp in
            let out = try StreamedFile(tmp)
            defer { out.close() }
            try head.withUnsafeBytes { try out.append($0) }
            for part in [parts.0, parts.1] { try out.copy(from: part) }
        }
        return try VolumeSet(path: path)
    }

    /// The canonical axes that become [depth, height, width]: the slice axis, then a slice's rows and columns.
    public static func networkAxes(_ axis: SliceAxis) -> [Int] {
        let a = Slicer.axes(axis)
        return [a.slice, a.row, a.column]
    }

    /// The spacing volumes are resampled to: the one given, or the median over the cases of
    /// their spacings in network order (read only when needed).
    public static func targetSpacing(_ spacing: TargetSpacing, native: () throws -> [[Double]]) rethrows -> [Double] {
        switch spacing {
        case .millimetres(let mm): return mm
        case .median:
            let all = try native()
            return (0..<3).map { a in median(all.map { $0[a] }) }
        }
    }

    /// A case's modalities as a network sees them: each normalised on its own grid (as slices
    /// are), put in network order and resampled (third-order) to the `target` spacing. The
    /// planes one after the other, and their size [depth, height, width].
    public static func image(_ modalities: [Volume], _ settings: Preprocessing, statistics: [IntensityStatistics?], target: [Double]) -> (values: [Float], dims: [Int]) {
        let order = networkAxes(settings.sliceAxis)
        guard let first = modalities.first else { return ([], [0, 0, 0]) }
        let size = order.map { first.dims[$0] }
        let dims = VolumeResampling.size(size, spacing: order.map { first.spacing[$0] }, target: target)
        var values: [Float] = []
        values.reserveCapacity(modalities.count * dims.reduce(1, *))
        for (m, image) in modalities.enumerated() {
            let map = IntensityMap(settings.normalize[m], window: settings.window, volume: image, statistics: m < statistics.count ? statistics[m] : nil)
            values += VolumeResampling.resample(networkOrder(image, axis: settings.sliceAxis).map(map.apply), size: size, to: dims, order: .cubic)
        }
        return (values, dims)
    }

    /// numpy's median: the middle value, or the mean of the two middle ones.
    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return 1 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Calls body(network-order index, canonical index) for every voxel of a canonical grid
    /// `dims`, in network order [depth, height, width]: depth along the slice axis, rows from
    /// anterior (or superior) down, columns as slices have them.
    static func forEachVoxel(dims d: [Int], axis: SliceAxis, _ body: (Int, Int) -> Void) {
        let axes = Slicer.axes(axis)
        let (rows, cols, depth) = (d[axes.row], d[axes.column], d[axes.slice])
        let strides = [1, d[0], d[0] * d[1]]
        var o = 0
        for k in 0..<depth {
            for r in 0..<rows {
                for c in 0..<cols {
                    body(o, (rows - 1 - r) * strides[axes.row] + c * strides[axes.column] + k * strides[axes.slice])
                    o += 1
                }
            }
        }
    }

    /// A canonical volume's voxels in network order.
    public static func networkOrder(_ v: Volume, axis: SliceAxis) -> [Float] {
        var out = [Float](repeating: 0, count: v.count)
        v.data.withUnsafeBufferPointer { x in forEachVoxel(dims: v.dims, axis: axis) { o, i in out[o] = x[i] } }
        return out
    }

    /// The inverse of `networkOrder`: network-order values back onto the canonical grid `dims`.
    public static func canonicalOrder(_ values: [Float], dims: [Int], axis: SliceAxis) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { x in forEachVoxel(dims: dims, axis: axis) { o, i in out[i] = x[o] } }
        return out
    }

    /// Opens a cache file (memory-mapped).
    public init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        guard data.count >= 16, Array(data.prefix(8)) == Self.magic else { throw SliceSetError(path: path, problem: "not a volume cache of this version") }
        let n = Int(data[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        guard n <= data.count - 16, let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 16..<(16 + n))) as? [String: Any],
              let c = header["channels"] as? Int, let planes = header["planes"] as? Int, let axisName = header["axis"] as? String,
              let axis = SliceAxis(rawValue: axisName), let identity = header["identity"] as? String,
              let patients = header["patients"] as? [String], let declared = header["modalities"] as? [String],
              let statistics = header["statistics"] as? [Any], let spacing = header["spacing"] as? [Double], spacing.count == 3,
              let list = header["cases"] as? [[String: Any]], list.count == patients.count, planes >= 1, c == planes || (planes == 1 && c == 3) else {
            throw SliceSetError(path: path, problem: "volume cache header unreadable")
        }
        var cases: [Case] = [], records: [SliceRecord] = []
        for (p, item) in list.enumerated() {
            guard let dims = item["dims"] as? [Int], dims.count == 3, dims.allSatisfy({ $0 > 0 }), let native = item["native"] as? [Int], native.count == 3,
                  let nativeSpacing = item["native_spacing"] as? [Double], nativeSpacing.count == 3, let fg = item["foreground"] as? Bool else {
                throw SliceSetError(path: path, problem: "volume cache header unreadable (case \(p))")
            }
            cases.append(Case(dims: dims, native: native, nativeSpacing: nativeSpacing))
            records.append(SliceRecord(patient: p, slice: 0, hasForeground: fg))
        }
        var imageOffsets: [Int] = [], labelOffsets: [Int] = []
        var at = 16 + n
        for c in cases {
            imageOffsets.append(at)
            at += planes * c.dims.reduce(1, *) * MemoryLayout<Float>.size
        }
        for c in cases {
            labelOffsets.append(at)
            at += c.dims.reduce(1, *)
        }
        guard at <= data.count else { throw SliceSetError(path: path, problem: "volume cache truncated") }
        (self.records, self.patients, self.cases, self.channels, self.planes) = (records, patients, cases, c, planes)
        (self.spacing, self.axis, self.identity, self.declaredModalities) = (spacing, axis, identity, declared)
        self.statistics = statistics.map { s in
            guard let v = s as? [Double], v.count == 4 else { return nil }
            return IntensityStatistics(low: v[0], high: v[1], mean: v[2], sd: v[3])
        }
        (self.imageOffsets, self.labelOffsets, mapped) = (imageOffsets, labelOffsets, data)
    }

    /// Case `i` whole: the image [C, D, H, W] (one modality replicated when it feeds 3
    /// channels) and the label [1, D, H, W] as class indices in floats.
    public func volume(_ i: Int) -> (image: Tensor, label: Tensor) {
        let dims = cases[i].dims, voxels = dims.reduce(1, *)
        let image = Tensor(uninitialized: [channels] + dims), label = Tensor(uninitialized: [1] + dims)
        mapped.withUnsafeBytes { raw in
            guard let origin = raw.baseAddress else { return }
            let img = origin.advanced(by: imageOffsets[i]).assumingMemoryBound(to: Float.self)
            image.pointer.update(from: img, count: planes * voxels)
            for c in planes..<channels { (image.pointer + c * voxels).update(from: image.pointer, count: voxels) }
            let lab = origin.advanced(by: labelOffsets[i]).assumingMemoryBound(to: UInt8.self)
            for v in 0..<voxels { label.pointer[v] = Float(lab[v]) }
        }
        return (image, label)
    }

    /// The patches of a batch's cases `indices`, the share of a batch of `batch` that starts at
    /// place `first` (all of it in one process): drawn by `sampler`, its last third centred on
    /// foreground, each from a generator seeded by `seed` and its place in the batch, so a
    /// batch split over ranks draws what one process draws. Images [B, C, d, h, w], labels
    /// [B, 1, d, h, w] (class indices as floats).
    public func patches(_ indices: [Int], sampler: PatchSampler, classes: Int, batch: Int, first: Int = 0, seed: UInt64) -> (images: Tensor, labels: Tensor) {
        let p = sampler.patch, voxels = p.reduce(1, *)
        // Zero where a patch reaches outside its volume; each patch is read from the mapped cache
        // directly, without copying its whole volume.
        let images = Tensor(zeros: [indices.count, channels] + p), labels = Tensor(zeros: [indices.count, 1] + p)
        mapped.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            for (b, i) in indices.enumerated() {
                let dims = cases[i].dims, count = dims.reduce(1, *)
                let image = base.advanced(by: imageOffsets[i]).assumingMemoryBound(to: Float.self)
                let label = base.advanced(by: labelOffsets[i]).assumingMemoryBound(to: UInt8.self)
                var rng = RNG(seed: Seeds.sample(seed, index: first + b))
                let force = sampler.forcesForeground(index: first + b, batch: batch)
                let foreground = force ? PatchSampler.foreground(count: count, classes: classes) { Int(label[$0]) } : []
                let origin = sampler.origin(size: dims, foreground: foreground, force: force, rng: &rng)
                let imageOut = images.pointer + b * channels * voxels, labelOut = labels.pointer + b * voxels
                VolumeRegion.forEachRow(of: p, in: dims, at: origin) { w, v, n in
                    // One modality feeding 3 channels is replicated, as `volume` does.
                    for c in 0..<channels { (imageOut + c * voxels + w).update(from: image + (c < planes ? c : 0) * count + v, count: n) }
                    for k in 0..<n { labelOut[w + k] = Float(label[v + k]) }
                }
            }
        }
        return (images, labels)
    }
}

/// A file written front to back, a buffer at a time.
final class StreamedFile {
    let path: String
    private var fd: Int32

    init(_ path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.system(errno, "cannot create \(path)") }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws { try AtomicFile.writeAll(fd, bytes, path: path) }

    /// Appends the whole of the file at `source`, 4 MiB at a time.
    func copy(from source: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw StorageError.system(errno, "cannot read \(source)") }
        defer { Foundation.close(input) }
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw StorageError.system(errno, "cannot read \(source)") }
            if n == 0 { return }
            try buffer.withUnsafeBytes { try append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    func close() {
        if fd >= 0 { Foundation.close(fd) }
        fd = -1
    }

    deinit { close() }
}
