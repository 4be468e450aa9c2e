import Foundation
import Hashing
import Medical
import Spec
import StageConfig
import Storage

/// What the planner knows of a dataset before training: its identity, and how many
/// slices each case has, read from the volumes' headers (or the phantom's settings),
/// and from the prepared cache when the store has it (then which slices show foreground).
public struct DatasetSummary: Sendable {
    /// Changes whenever the data would: the phantom's parameters, or an MSD folder's
    /// dataset.json and its file names and sizes.
    public var fingerprint: String
    public var cases: Int
    /// The most slices any case has along the slice axis (what one case's preprocessing holds).
    public var slicesPerCase: Int
    /// Share of slices that show foreground (used while it is not known slice by slice).
    public var foregroundShare: Double
    /// Every case's slices, in the dataset's order: exact counts, from headers or the cache.
    /// Foreground flags are known when `prepared` (read from the cache), else assumed.
    public var inventory: SliceList?
    public var prepared = false
    public var description: String
    /// For 3D networks: every case's size [depth, height, width] at the target spacing (as
    /// the prepare stage will resample it), from the headers or the phantom's settings; nil
    /// when not known (estimates then assume the patch).
    public var volumeSizes: [[Int]]?

    /// False when the sizes are guesses (data not found, or headers unreadable).
    public var exact: Bool { inventory != nil }

    /// Typical axial slices per CT volume in MSD Task09 (3,650 slices over 41 cases).
    public static let defaultSlicesPerCase = 89
    /// The phantom's spleen spans about this share of a volume's slices.
    public static let phantomForegroundShare = 0.3
    /// The share observed in MSD Task09 Spleen.
    public static let msdForegroundShare = 0.3

    public static func summarize(_ data: DataSpec, relativeTo directory: String) -> DatasetSummary {
        var summary = slices(data, relativeTo: directory)
        guard let sampling = data.preprocess.volume else { return summary }
        // 3D: one sample per case (a volume), sized at the target spacing.
        let order = VolumeSet.networkAxes(data.preprocess.sliceAxis)
        var geometry: [(dims: [Int], spacing: [Double])]?
        switch data.source {
        case .phantom(let p):
            let g = Phantom.geometry(p)
            geometry = Array(repeating: (g.dims, g.spacing), count: p.cases)
        case .msd(let path, let orientation):
            let scan = DatasetScan.scan(FilePath.resolve(path, against: directory), modalities: data.preprocess.modalities, analyzeOrientation: orientation)
            if scan.problems.isEmpty, !scan.cases.isEmpty { geometry = scan.cases.map { ($0.dims, $0.spacing) } }
        }
        let cases = geometry?.count ?? summary.cases
        if let geometry {
            let native = geometry.map { g in (order.map { g.dims[$0] }, order.map { g.spacing[$0] }) }
            let target = VolumeSet.targetSpacing(sampling.spacing) { native.map(\.1) }
            summary.volumeSizes = native.map { VolumeResampling.size($0.0, spacing: $0.1, target: target) }
        }
        summary.inventory = list(Array(repeating: 1, count: cases), ids: summary.inventory?.patients)
        summary.slicesPerCase = 1
        summary.foregroundShare = 1
        summary.description += ", as \(cases) volumes"
        return summary
    }

    /// What slices the data has (the 2D view, which 3D data refines).
    static func slices(_ data: DataSpec, relativeTo directory: String) -> DatasetSummary {
        let axis = Slicer.axes(data.preprocess.sliceAxis).slice
        switch data.source {
        case .phantom(let p):
            // v2: organ labels (spleen 1, liver 2, kidneys 3) and modalities.
            let identity = "phantom/v2 cases=\(p.cases) seed=\(p.seed) size=\(p.size) slices=\(p.slices) noise=\(p.noise) hard=\(p.hardCases) modalities=\(p.modalities.joined(separator: ","))"
            let perCase = [p.size, p.size, p.slices][axis]
            return DatasetSummary(fingerprint: SHA256.hex(identity), cases: p.cases, slicesPerCase: perCase, foregroundShare: phantomForegroundShare,
                                  inventory: list(Array(repeating: perCase, count: p.cases)),
                                  description: "phantom \(p.cases) cases x \(perCase) slices")
        case .msd(let path, let orientation):
            let folder = FilePath.resolve(path, against: directory)
            let manifest = (folder as NSString).appendingPathComponent("dataset.json")
            guard let bytes = FileManager.default.contents(atPath: manifest) else {
                return DatasetSummary(fingerprint: SHA256.hex("msd-missing:" + path), cases: 41,
                                      slicesPerCase: defaultSlicesPerCase, foregroundShare: msdForegroundShare, inventory: nil,
                                      description: "msd \(path) (not found: sizes assume 41 cases x \(defaultSlicesPerCase) slices)")
            }
            var hasher = SHA256()
            hasher.update(bytes)
            for sub in ["imagesTr", "labelsTr"] {
                let dir = (folder as NSString).appendingPathComponent(sub)
                for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
                    let size = (try? FileManager.default.attributesOfItem(atPath: (dir as NSString).appendingPathComponent(name))[.size] as? Int) ?? -1
                    hasher.update("\(sub)/\(name):\(size)\n")
                }
            }
            let scan = DatasetScan.scan(folder, modalities: data.preprocess.modalities, analyzeOrientation: orientation)
            guard scan.problems.isEmpty, !scan.cases.isEmpty else {
                let cases = JSON.parse(bytes)?["numTraining"]?.int ?? JSON.parse(bytes)?["training"]?.array?.count ?? 0
                return DatasetSummary(fingerprint: hasher.finalize(), cases: cases, slicesPerCase: defaultSlicesPerCase,
                                      foregroundShare: msdForegroundShare, inventory: nil,
                                      description: "msd \(path), \(cases) cases (headers unreadable: \(defaultSlicesPerCase) slices each assumed)")
            }
            let perCase = scan.cases.map { $0.dims[axis] }
            return DatasetSummary(fingerprint: hasher.finalize(), cases: perCase.count, slicesPerCase: perCase.max() ?? 0,
                                  foregroundShare: msdForegroundShare, inventory: list(perCase, ids: scan.cases.map(\.id)),
                                  description: "msd \(path), \(perCase.count) cases, \(perCase.reduce(0, +)) slices")
        }
    }

    /// Slices of cases with these counts; foreground unknown (marked present, so that no
    /// thinning is assumed from it).
    static func list(_ perCase: [Int], ids: [String]? = nil) -> SliceList {
        var records: [SliceRecord] = []
        for (p, n) in perCase.enumerated() { for k in 0..<n { records.append(SliceRecord(patient: p, slice: k, hasForeground: true)) } }
        return SliceList(records: records, patients: ids ?? perCase.indices.map { "case \($0)" })
    }

    /// The same summary with the slices of a prepared cache (foreground known slice by slice).
    func refined(by cache: SliceList) -> DatasetSummary {
        var s = self
        s.inventory = cache
        s.prepared = true
        let slices = Double(max(1, cache.records.count))
        s.foregroundShare = Double(cache.records.filter(\.hasForeground).count) / slices
        return s
    }

    /// Every slice (the prepared cache holds them all).
    public var totalSlices: Double { inventory.map { Double($0.records.count) } ?? Double(cases * slicesPerCase) }
}
