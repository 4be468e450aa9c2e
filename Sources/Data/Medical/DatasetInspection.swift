import Foundation
import StageConfig

/// What `distill data inspect` says about a file or a dataset: its geometry and
/// intensity range, its label values, and every problem that would stop a run.
public enum DatasetInspection {
    /// One line: dimensions, datatype, spacing, stored orientation and intensity range.
    public static func describe(_ v: Volume) -> String {
        let (lo, hi) = v.range
        let spacing = v.spacing.map { String(format: "%.3g", $0) }.joined(separator: " x ")
        return "\(v.dims.map(String.init).joined(separator: "x")) \(v.datatype), spacing \(spacing) mm, stored \(v.orientation.code), range \(lo)...\(hi)"
    }

    /// Label values and their voxel counts; a map of whole numbers with up to 65,535
    /// distinct values (brain atlases have hundreds) is a label map.
    public static func labelSummary(_ v: Volume) -> String {
        var counts: [Float: Int] = [:]
        for x in v.data {
            guard x == x.rounded(), abs(x) <= 16_777_216 else { return "not a label map (value \(x) is not a whole number)" }
            counts[x, default: 0] += 1
            if counts.count > 65_535 { return "not a label map (more than 65,535 distinct values)" }
        }
        let sorted = counts.sorted { $0.key < $1.key }
        let shown = sorted.prefix(40).map { "\(Int($0.key)): \($0.value)" }.joined(separator: ", ")
        return "\(sorted.count) value\(sorted.count == 1 ? "" : "s"): " + shown + (sorted.count > 40 ? ", ... (\(sorted.count - 40) more)" : "")
    }

    /// A single file (3D, or 4D with modalities on the fourth axis), as lines.
    public static func file(_ path: String, analyzeOrientation: AxisOrientation?) throws -> [String] {
        let channels = try NIfTI.readChannels(path, analyzeOrientation: analyzeOrientation)
        if channels.count == 1 {
            return ["\(path): " + describe(channels[0]), "labels: " + labelSummary(channels[0])]
        }
        // A 4D image: MSD stores the modalities of a case on the fourth axis.
        return ["\(path): 4D, \(channels.count) modalities on the fourth axis"]
            + channels.enumerated().map { "  modality \($0): " + describe($1) }
    }

    /// Every case of a dataset folder: its headers checked as `distill check` checks them,
    /// then its voxels (label values dataset.json does not name, labels that are not whole
    /// numbers, NaN). `emit` receives the lines as the cases are read; the problems are returned.
    /// Without a readable dataset.json, the problems are all there is (`emit` gets nothing).
    public static func dataset(_ path: String, analyzeOrientation: AxisOrientation?, emit: (String) -> Void) -> (readable: Bool, problems: [DatasetProblem]) {
        let scan = DatasetScan.scan(path, modalities: nil, analyzeOrientation: analyzeOrientation)
        // Inspecting names no modalities, so a multi-modal dataset's "choose them with" is no problem here.
        var problems = scan.problems.filter { !($0.kind == .modality && $0.message.contains("choose them with")) }
        guard let dataset = scan.dataset else { return (false, problems) }
        emit("\(dataset.name): \(dataset.cases.count) cases, modality \(dataset.modality.joined(separator: ", ")), labels \(dataset.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
        var audit = VoxelAudit(labels: dataset.labels)
        for c in dataset.cases {
            do {
                let all = c.images.count > 1 ? try c.images.map { try dataset.read($0) }
                    : try NIfTI.readChannels(c.image, analyzeOrientation: dataset.analyzeOrientation)
                let label = try dataset.read(c.label)
                if all.count == 1 {
                    emit("\(c.id): image \(describe(all[0])); label \(labelSummary(label))")
                } else {
                    emit("\(c.id): \(all.count) modalities; label \(labelSummary(label))")
                    for (i, v) in all.enumerated() {
                        let name = i < dataset.modality.count ? dataset.modality[i] : "modality \(i)"
                        emit("  \(name): " + describe(v))
                    }
                }
                if !dataset.labels.isEmpty || all.contains(where: { $0.data.contains { !$0.isFinite } }) {
                    audit.audit(case: c.id, label: label, images: all, files: (c.image, c.label))
                }
            } catch {
                // A header the scan read may still hold a body that cannot be read (a truncated
                // gzip stream): every case is read, and each one that fails is reported, once.
                let file = (error as? NIfTIError).flatMap(DatasetScan.file) ?? c.image
                emit("\(c.id): cannot be read: \(error)")
                if !problems.contains(where: { $0.files.contains(file) }) {
                    problems.append(DatasetProblem(.header, "\(error)", files: [file]))
                }
            }
        }
        // Without dataset.json's labels, only labels that are not whole numbers are a problem.
        problems += audit.problems().filter { dataset.labels.isEmpty ? $0.kind != .labels || $0.message.hasPrefix("labels that are not whole") : true }
        return (true, problems)
    }
}
