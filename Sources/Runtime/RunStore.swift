import Foundation
import Plan

/// The run store: each stage's outputs under its content hash.
///
///     runs/stages/<hash>/stage.json      the stage as planned (params, inputs)
///     runs/stages/<hash>/log.txt         what it printed
///     runs/stages/<hash>/...             checkpoints, metrics, predictions
///     runs/stages/<hash>/done            written last: the stage is complete
///     runs/stages/<hash>/lock            pid and host of the process running it
///
/// A stage whose `done` exists is reused by any plan that contains it. Paths come
/// only from hashes, never from names in a spec, so nothing can write outside the root.
public struct RunStore: Sendable {
    public let root: String

    public init(root: String) {
        self.root = (root as NSString).standardizingPath
    }

    public func directory(_ hash: String) -> String {
        precondition(hash.allSatisfy { $0.isHexDigit } && hash.count == 64, "stage hashes are 64 hex digits")
        return "\(root)/stages/\(hash)"
    }

    public func isDone(_ hash: String) -> Bool { FileManager.default.fileExists(atPath: directory(hash) + "/done") }

    public func file(_ hash: String, _ name: String) -> String { directory(hash) + "/" + name }

    /// Writes `data` to `path` atomically (temporary file, then rename).
    public static func writeAtomically(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        try data.write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw RuntimeError.io("cannot move \(tmp) to \(path)")
        }
    }

    func markDone(_ hash: String, summary: JSON) throws {
        try Self.writeAtomically(Data(summary.pretty.utf8), to: file(hash, "done"))
    }

    /// Takes the stage's lock; nil if another live process holds it. A lock left by a
    /// dead process on this host is stale and taken over.
    func lock(_ hash: String) throws -> StageLock? {
        let dir = directory(hash)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/lock"
        let me = "\(ProcessInfo.processInfo.processIdentifier) \(ProcessInfo.processInfo.hostName)"
        for _ in 0..<2 {
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o644)
            if fd >= 0 {
                _ = me.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                return StageLock(path: path)
            }
            guard let owner = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let parts = owner.split(separator: " ")
            if parts.count == 2, let pid = Int32(parts[0]), String(parts[1]) == ProcessInfo.processInfo.hostName, kill(pid, 0) != 0 {
                try? FileManager.default.removeItem(atPath: path)  // stale: its owner is gone
                continue
            }
            return nil
        }
        return nil
    }
}

/// A held stage lock, released by `release()`.
struct StageLock {
    let path: String
    func release() { try? FileManager.default.removeItem(atPath: path) }
}

public enum RuntimeError: Error, CustomStringConvertible {
    case io(String)
    case badPlan(String)
    case nonFinite(term: String, step: Int, epoch: Int, lastFinite: String)
    case stage(String)
    case interrupted

    public var description: String {
        switch self {
        case .io(let s): return "I/O error: \(s)"
        case .badPlan(let s): return "plan: \(s)"
        case .nonFinite(let term, let step, let epoch, let last): return "loss term '\(term)' became NaN or infinite at epoch \(epoch), step \(step); last finite values: \(last)"
        case .stage(let s): return s
        case .interrupted: return "interrupted"
        }
    }
}
