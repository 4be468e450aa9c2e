import Foundation
import Hashing
import StageConfig

/// How the data layer measures a dataset's fingerprint: each case read once, one at a
/// time, in canonical orientation, its axes then put in network order along `axis`.
extension DatasetFingerprint {
    /// An MSD folder's fingerprint: its `modalities` (nil: its only one), depth along `axis`.
    public static func measure(_ dataset: MSDDataset, axis: SliceAxis, modalities: [String]?) throws -> DatasetFingerprint {
        try measure(identity: identity(dataset, axis: axis, modalities: modalities), axis: axis, modalities: modalities ?? dataset.modality, count: dataset.cases.count) { p in
            let c = dataset.cases[p]
            let (images, label) = try SliceSet.read(dataset, c, modalities: modalities)
            return (c.id, images, label)
        }
    }

    /// The built-in phantom's fingerprint, from its volumes as `write` would store them.
    public static func measure(_ phantom: PhantomSettings, axis: SliceAxis, modalities: [String]?) throws -> DatasetFingerprint {
        let hard = Phantom.hardCases(phantom)
        let names = modalities ?? phantom.modalities
        let selected = names.compactMap { phantom.modalities.firstIndex(of: $0) }
        guard selected.count == names.count else {
            throw DatasetProblem(.modality, "the phantom has modalities \(phantom.modalities.joined(separator: ", ")), not \(names.joined(separator: ", "))", files: [])
        }
        return try measure(identity: identity(phantom, axis: axis, modalities: modalities), axis: axis, modalities: names, count: phantom.cases) { p in
            let (images, label) = Phantom.patient(phantom, index: p, hard: hard.contains(p))
            return (Phantom.caseName(p), selected.map { images[$0] }, label)
        }
    }

    /// What an MSD folder's fingerprint is kept under: its files' names and sizes, the axis and the modalities.
    public static func identity(_ dataset: MSDDataset, axis: SliceAxis, modalities: [String]?) -> String {
        identity(data: SliceSet.fingerprint(dataset), axis: axis, modalities: modalities)
    }

    /// What the phantom's fingerprint is kept under: its settings, the axis and the modalities.
    public static func identity(_ phantom: PhantomSettings, axis: SliceAxis, modalities: [String]?) -> String {
        identity(data: SHA256.hex("phantom/v2 " + phantom.json.canonical), axis: axis, modalities: modalities)
    }

    /// What a fingerprint was measured on and how: the data's own identity, the axis and the modalities.
    static func identity(data: String, axis: SliceAxis, modalities: [String]?) -> String {
        SHA256.hex("fingerprint v\(version) \(data) axis=\(axis.rawValue) modalities=\((modalities ?? []).joined(separator: ","))")
    }

    /// Measures `count` cases that `read` returns (images and label on one canonical grid).
    public static func measure(identity: String, axis: SliceAxis, modalities: [String], count: Int,
                               read: (Int) throws -> (id: String, images: [Volume], label: Volume)) throws -> DatasetFingerprint {
        let order = VolumeSet.networkAxes(axis)
        let perCase = max(1, sampleLimit / max(1, count))
        var cases: [Case] = []
        var samples = [[Float]](repeating: [], count: modalities.count)
        var labelVoxels: [Int: Int] = [:]
        for p in 0..<count {
            let (id, images, label) = try read(p)
            let box = nonzeroBox(images)
            cases.append(Case(id: id, spacing: order.map { label.spacing[$0] }, shape: order.map { label.dims[$0] }, cropped: order.map { box[$0] }))
            var foreground: [Int] = []
            label.data.withUnsafeBufferPointer { l in
                // Label values are small whole numbers: counted in an array, others in a dictionary.
                var small = [Int](repeating: 0, count: 256)
                for i in l.indices {
                    let v = l[i]
                    if v >= 0, v < 256, v == v.rounded(.down) { small[Int(v)] += 1 } else if v.isFinite { labelVoxels[Int(v), default: 0] += 1 }
                    if v != 0 { foreground.append(i) }
                }
                for (v, n) in small.enumerated() where n > 0 { labelVoxels[v, default: 0] += n }
            }
            // Evenly spaced over the case's foreground, at most `perCase` (nnU-Net draws them at random).
            let step = max(1, (foreground.count + perCase - 1) / perCase)
            for (m, image) in images.enumerated() where m < samples.count {
                image.data.withUnsafeBufferPointer { x in
                    for k in stride(from: 0, to: foreground.count, by: step) { samples[m].append(x[foreground[k]]) }
                }
            }
        }
        let intensities = zip(modalities, samples).map { name, s in Intensities(name, samples: s) }
        return DatasetFingerprint(identity: identity, axis: axis, modalities: modalities, cases: cases, intensities: intensities,
                                  labelVoxels: Dictionary(uniqueKeysWithValues: labelVoxels.map { ("\($0.key)", $0.value) }))
    }

    /// The extent per canonical axis of the box holding every voxel that is not zero in some
    /// image; the whole grid when every voxel is zero.
    static func nonzeroBox(_ images: [Volume]) -> [Int] {
        guard let first = images.first else { return [0, 0, 0] }
        let d = first.dims
        var (x0, y0, z0, x1, y1, z1) = (d[0], d[1], d[2], -1, -1, -1)
        for image in images {
            image.data.withUnsafeBufferPointer { v in
                var i = 0
                for z in 0..<d[2] {
                    for y in 0..<d[1] {
                        // A row's first and last non-zero voxel.
                        var first = -1, last = -1
                        for x in 0..<d[0] where v[i + x] != 0 {
                            if first < 0 { first = x }
                            last = x
                        }
                        if first >= 0 {
                            (x0, x1) = (min(x0, first), max(x1, last))
                            (y0, y1, z0, z1) = (min(y0, y), max(y1, y), min(z0, z), max(z1, z))
                        }
                        i += d[0]
                    }
                }
            }
        }
        return x1 < 0 ? d : [x1 - x0 + 1, y1 - y0 + 1, z1 - z0 + 1]
    }
}

extension DatasetFingerprint.Intensities {
    /// The statistics of foreground samples (all zero when there are none).
    init(_ modality: String, samples: [Float]) {
        guard !samples.isEmpty else {
            self.init(modality: modality, voxels: 0, mean: 0, sd: 0, min: 0, max: 0, p00_5: 0, median: 0, p99_5: 0)
            return
        }
        let v = samples.map(Double.init).sorted()
        func q(_ p: Double) -> Double { DatasetFingerprint.percentile(sorted: v, p) }
        let mean = v.reduce(0, +) / Double(v.count)
        let sd = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot()
        self.init(modality: modality, voxels: v.count, mean: mean, sd: sd, min: v[0], max: v[v.count - 1], p00_5: q(0.5), median: q(50), p99_5: q(99.5))
    }
}
