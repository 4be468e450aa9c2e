import Foundation
import StageConfig

/// A dataset's fingerprint as `distill data inspect --fingerprint` and the plan show it.
public enum DatasetFingerprintReport {
    public static func lines(_ f: DatasetFingerprint, path: String) -> [String] {
        func range(_ a: Int, _ key: KeyPath<DatasetFingerprint.Case, [Int]>) -> String {
            let v = f.cases.map { $0[keyPath: key][a] }
            return "\(v.min() ?? 0)-\(v.max() ?? 0)"
        }
        let spacing = f.medianSpacing.map { String(format: "%.4g", $0) }.joined(separator: " x ")
        var out = [
            "\(path): fingerprint of \(f.cases.count) cases, depth along \(f.axis.rawValue)",
            "  median spacing \(spacing) mm [depth, height, width]",
            "  sizes " + (0..<3).map { range($0, \.shape) }.joined(separator: " x ") + " voxels; cropped to the images' non-zero box "
                + (0..<3).map { range($0, \.cropped) }.joined(separator: " x "),
        ]
        for i in f.intensities {
            out.append("  \(i.modality) in the foreground (\(i.voxels) voxels): mean \(format(i.mean)), sd \(format(i.sd)), "
                       + "0.5-99.5% \(format(i.p00_5))...\(format(i.p99_5)), median \(format(i.median)), range \(format(i.min))...\(format(i.max))")
        }
        let total = max(1, f.labelVoxels.values.reduce(0, +))
        let labels = f.labelVoxels.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
            .map { "\($0.key): \(String(format: "%.3g", 100 * Double($0.value) / Double(total)))%" }
        out.append("  label voxels " + labels.joined(separator: ", "))
        return out
    }

    static func format(_ v: Double) -> String { String(format: "%.4g", v) }

    /// The fingerprint and the recipe as one JSON document.
    public static func json(_ f: DatasetFingerprint, _ r: VolumeRecipe) -> JSON {
        let fingerprint = (try? f.encoded()).flatMap(JSON.parse) ?? .null
        return .object([
            "fingerprint": fingerprint,
            "recipe": .object([
                "spacing": .array(r.spacing.map(JSON.number)),
                "median_shape": .array(r.medianShape.map(JSON.number)),
                "patch": .array(r.patch.map(JSON.int)),
                "pools": .array(r.levels.pools.map { .array($0.map(JSON.int)) }),
                "kernels": .array(r.levels.kernels.map { .array($0.map(JSON.int)) }),
                "widths": .array(r.widths.map(JSON.int)),
                "bottleneck": .int(r.bottleneck),
                "batch": .int(r.batch),
                "step_bytes": .int(r.stepBytes),
                "budget_bytes": .int(r.budgetBytes),
            ]),
        ])
    }
}
