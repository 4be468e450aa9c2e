import Foundation
import Hashing
import Spec
import StageConfig

/// What the planner knows of a dataset before reading it: its identity and size.
public struct DatasetSummary: Sendable {
    /// Changes whenever the data would: the phantom's parameters, or an MSD folder's
    /// dataset.json and its file names and sizes.
    public var fingerprint: String
    public var cases: Int
    public var slicesPerCase: Int
    /// Share of slices that show foreground (used when empty slices are dropped).
    public var foregroundShare: Double
    /// False when the sizes are guesses (data not found, or slice counts not read).
    public var exact: Bool
    public var description: String

    /// Typical axial slices per CT volume in MSD Task09 (3,650 slices over 41 cases).
    public static let defaultSlicesPerCase = 89
    /// The phantom's spleen spans about this share of a volume's slices.
    public static let phantomForegroundShare = 0.3
    /// The share observed in MSD Task09 Spleen.
    public static let msdForegroundShare = 0.3

    public static func summarize(_ data: DataSpec, relativeTo directory: String) -> DatasetSummary {
        switch data.source {
        case .phantom(let p):
            // v2: organ labels (spleen 1, liver 2, kidneys 3) and modalities.
            let identity = "phantom/v2 cases=\(p.cases) seed=\(p.seed) size=\(p.size) slices=\(p.slices) noise=\(p.noise) hard=\(p.hardCases) modalities=\(p.modalities.joined(separator: ","))"
            return DatasetSummary(fingerprint: SHA256.hex(identity), cases: p.cases, slicesPerCase: p.slices,
                                  foregroundShare: phantomForegroundShare, exact: true,
                                  description: "phantom \(p.cases) cases x \(p.slices) slices")
        case .msd(let path, _):
            let folder = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
            let manifest = (folder as NSString).appendingPathComponent("dataset.json")
            guard let bytes = FileManager.default.contents(atPath: manifest) else {
                return DatasetSummary(fingerprint: SHA256.hex("msd-missing:" + path), cases: 41,
                                      slicesPerCase: defaultSlicesPerCase, foregroundShare: msdForegroundShare, exact: false,
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
            let cases = JSON.parse(bytes)?["numTraining"]?.int ?? JSON.parse(bytes)?["training"]?.array?.count ?? 0
            return DatasetSummary(fingerprint: hasher.finalize(), cases: cases, slicesPerCase: defaultSlicesPerCase,
                                  foregroundShare: msdForegroundShare, exact: false,
                                  description: "msd \(path), \(cases) cases (assumed \(defaultSlicesPerCase) slices each)")
        }
    }

    /// Slices kept after dropping a share of the empty ones.
    public func keptSlices(keepEmpty: Double) -> Double {
        let total = Double(cases * slicesPerCase)
        return total * foregroundShare + total * (1 - foregroundShare) * keepEmpty
    }
}
