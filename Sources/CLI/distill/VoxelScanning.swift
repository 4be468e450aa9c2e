import Diagnostics
import Foundation
import Medical
import Plan
import Spec

/// Every voxel of a spec's local datasets, read with a progress bar (on a terminal) and the
/// throughput said at the end, on standard error: `check --data` and `submit` run it.
enum VoxelScanning {
    /// The diagnostics of every local dataset of `checked`, whose spec lies in `specDirectory`.
    static func diagnostics(_ checked: CheckedSpec, specDirectory: String) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for dataset in DataChecks.localDatasets(checked, specDirectory: specDirectory) {
            let name = (dataset.folder as NSString).lastPathComponent
            let terminal = isatty(STDERR_FILENO) == 1
            let (found, done) = DataChecks.scanVoxels(dataset) { p in
                if terminal { status("\r\u{1B}[K" + line(name, p)) }
            }
            if terminal { status("\r\u{1B}[K") }
            let problems = found.filter { $0.id.severity == .error }.count
            status("voxels of \(name): \(done.cases) cases read in \(String(format: "%.1f", done.seconds)) s "
                   + "(\(millions(done.voxels)) voxels, \(megabytes(done.bytes)) of files): \(String(format: "%.1f", done.rate)) M voxels/s; "
                   + (problems == 0 ? "no problems" : "\(problems) problem\(problems == 1 ? "" : "s")") + "\n")
            out += found
        }
        return out
    }

    /// `voxels of Task09_Spleen [########----------------] 12/41 cases, 310.2 M voxels, 95.1 M voxels/s`
    static func line(_ name: String, _ p: VoxelScan.Progress) -> String {
        let width = 24, filled = p.total > 0 ? width * p.cases / p.total : width
        return "voxels of \(name) [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + "\(p.cases)/\(p.total) cases, \(millions(p.voxels)) voxels, \(String(format: "%.1f", p.rate)) M voxels/s"
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }
    static func millions(_ n: Int) -> String { String(format: "%.1f M", Double(n) / 1e6) }

    static func status(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
