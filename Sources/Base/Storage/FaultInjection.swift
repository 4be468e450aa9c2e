import Foundation
import Synchronization

/// A hidden switch for crash tests, after SQLite's: every step that changes the
/// store is a numbered fault point, and the environment can make the process stop
/// dead at the N-th (as a kill would) or fail there as a full disk does.
///
///     DISTILL_FAULT_AT=N          the 1-based point to act at (unset: never)
///     DISTILL_FAULT_KIND=exit     _exit(86) before the step (default), or `enospc`: throw ENOSPC there
///     DISTILL_FAULT_TRACE=path    append "N what" for every point to `path` (to count and name them)
///
/// Points are counted per process; with several MPI ranks only rank 0 writes.
public enum FaultInjection {
    /// The exit status of a process stopped at a fault point.
    public static let exitStatus: Int32 = 86

    struct Settings {
        var at: Int?
        var enospc = false
        var trace: Int32 = -1
    }

    static let settings: Settings = {
        let env = ProcessInfo.processInfo.environment
        var s = Settings()
        s.at = env["DISTILL_FAULT_AT"].flatMap(Int.init)
        s.enospc = env["DISTILL_FAULT_KIND"] == "enospc"
        if let path = env["DISTILL_FAULT_TRACE"] { s.trace = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }
        return s
    }()

    static let counter = Atomic<Int>(0)

    /// Marks a fault point; `failure` is what a full disk there throws.
    public static func point(_ what: String, failure: Error? = nil) throws {
        let s = settings
        guard s.at != nil || s.trace >= 0 else { return }
        let n = counter.add(1, ordering: .sequentiallyConsistent).newValue
        if s.trace >= 0 {
            let line = "\(n) \(what)\n"
            _ = line.withCString { Foundation.write(s.trace, $0, strlen($0)) }
        }
        guard n == s.at else { return }
        if s.enospc { throw failure ?? StorageError.system(ENOSPC, what) }
        _exit(exitStatus)
    }
}
