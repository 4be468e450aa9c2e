import Foundation
import Spec

/// `distill plan --lock DIR`: one fully resolved spec per variant, every default
/// explicit, written as JSON (which YAML reads), so that it plans to the same hashes.
enum LockFiles {
    static func write(_ checked: CheckedSpec, variant: String?, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for v in checked.variants where variant == nil || v.name == variant {
            guard let spec = v.spec else { continue }
            // Variant names are checked labels ([A-Za-z0-9_.+-=,]), never path separators.
            let file = (directory as NSString).appendingPathComponent(v.name.replacingOccurrences(of: "/", with: "_") + ".yaml")
            let text = "# Resolved spec of variant '\(v.name)', written by distill plan --lock.\n" + spec.resolvedDocument.canonicalText + "\n"
            try Data(text.utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        }
    }
}
