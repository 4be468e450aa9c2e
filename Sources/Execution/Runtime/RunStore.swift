import Foundation
import Storage
import Plan
import StageConfig

/// The run store: each stage's outputs under its content hash.
///
///     runs/stages/<hash>/stage.json      the stage as planned (params, inputs)
///     runs/stages/<hash>/log.txt         what it printed
///     runs/stages/<hash>/...             checkpoints, metrics, predictions
///     runs/stages/<hash>/done            written last: the stage is complete
///     runs/stages/<hash>/lock            flock'ed by the process running it (pid and host inside)
///
/// A stage whose `done` record is valid is reused by any plan that contains it. Paths
/// come only from hashes, never from names in a spec, and below the root nothing is
/// followed through a symbolic link (`ConfinedTree`): names read from records are checked,
/// a link where a file or folder should be is damage, so nothing can read or write
/// outside the root, whatever the store's files say.
public struct RunStore: Sendable {
    public let root: String
    let tree: ConfinedTree
    let records = RecordCache()

    public init(root: String) {
        self.root = (root as NSString).standardizingPath
        tree = ConfinedTree(root: self.root)
    }

    public func directory(_ hash: String) -> String {
        precondition(hash.allSatisfy { $0.isHexDigit } && hash.count == 64, "stage hashes are 64 hex digits")
        return "\(root)/stages/\(hash)"
    }

    /// Whether the stage has a valid done record (an unreadable, empty or incomplete one is
    /// damage, never "done"), in a stage folder that is not a link.
    public func isDone(_ hash: String) -> Bool {
        guard tree.kind(folder(hash)).kind == .directory, case .valid = record(hash) else { return false }
        return true
    }

    public func file(_ hash: String, _ name: String) -> String { directory(hash) + "/" + name }

    /// Takes the stage's lock: an exclusive `flock` on `lock`, held until `release()`
    /// or until the holder dies (the kernel drops it then: a crash leaves no stale
    /// lock). nil when another process, or another job of this one, holds it.
    ///
    /// Before the stage writes anything, its folder is made a real folder without links: a
    /// link planted at the stage folder or inside it is removed (the link, never what it
    /// points to) and the removal logged, so that no write goes through it.
    func lock(_ hash: String) throws -> StageLock? {
        let dir = directory(hash)
        switch tree.kind("stages") {
        case (.directory, _), (.missing, _): break
        case (let kind, _):
            throw RuntimeError.io("\(root)/stages is \(kind == .symlink ? "a symbolic link" : "not a folder"): a run store's stages/ must be a real folder")
        }
        var removed: [String] = []
        if tree.kind(folder(hash)).kind == .symlink {
            try tree.remove(folder(hash))
            removed.append(folder(hash))
        }
        try Self.createFolder(dir)
        for link in tree.symlinks(under: folder(hash)) {
            try tree.remove(link)
            removed.append(link)
        }
        let path = dir + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RuntimeError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
        for link in removed {
            try? AtomicFile.append("removed the symbolic link \(root)/\(link): a store never holds one, and no write goes through it\n",
                                   to: dir + "/log.txt")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            close(fd)
            if reason == EWOULDBLOCK { return nil }
            throw RuntimeError.io("cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        // Who holds it, for `distill status`; the lock itself is the flock, not this text.
        let me = "\(ProcessInfo.processInfo.processIdentifier) \(ProcessInfo.processInfo.hostName)\n"
        _ = ftruncate(fd, 0)
        _ = me.withCString { pwrite(fd, $0, strlen($0), 0) }
        return StageLock(fd: fd)
    }

    /// Creates `path` and the folders above it, or throws one line naming the folder that
    /// could not be made and why (a store owned by another user: permission denied).
    public static func createFolder(_ path: String) throws {
        var current = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            current += (current.isEmpty || current == "/" ? "" : "/") + component
            if mkdir(current, 0o755) == 0 || errno == EEXIST { continue }
            throw RuntimeError.io("cannot create the folder \(current): \(String(cString: strerror(errno)))")
        }
    }

    /// The process holding the stage's lock ("pid host"), or nil when nobody holds it.
    public func lockHolder(_ hash: String) -> String? {
        let path = directory(hash) + "/lock"
        guard tree.kind(folder(hash) + "/lock").kind == .file else { return nil }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return text.isEmpty ? "another process" : text
    }

    /// What a finished stage took (its seconds, and its peak resident memory when it was
    /// recorded), from its done record; nil when the stage is not done.
    public func recordedCost(_ hash: String) -> RecordedCost? {
        guard case .valid(let record) = record(hash) else { return nil }
        return RecordedCost(seconds: record.fields["seconds"]?.number, peakBytes: record.fields["peak_rss_bytes"]?.int)
    }

    /// Where a stage stands, read from its folder (and from Slurm when it was submitted there);
    /// `verifying` checks a done stage's outputs against their digests (it reads them).
    public func status(_ hash: String, verifying: Bool = false) -> StageStatus {
        let dir = directory(hash)
        let fm = FileManager.default
        if tree.kind(folder(hash)).kind == .symlink { return .damaged([Damage.symlink("").description]) }
        switch record(hash) {
        case .valid(let record):
            if verifying, case .damaged(let problems) = verify(hash) { return .damaged(problems.map(\.description)) }
            return .done(seconds: record.fields["seconds"]?.number)
        case .damaged(let problems):
            return .damaged(problems.map(\.description))
        case .absent:
            break
        }
        let links = tree.symlinks(under: folder(hash))
        if !links.isEmpty { return .damaged(links.map { Damage.symlink(String($0.dropFirst(folder(hash).count + 1))).description }) }
        if let holder = lockHolder(hash) { return .running(holder: holder) }
        if let problems = damage(hash) { return .damaged(problems) }
        if let job = SlurmSubmitter.recordedJob(self, hash), let state = SlurmSubmitter.jobState(job) {
            return state == "RUNNING" ? .running(holder: "slurm job \(job)") : .queued(job: job, state: state)
        }
        if let log = try? String(contentsOfFile: dir + "/log.txt", encoding: .utf8),
           let line = log.split(separator: "\n").last(where: { $0.hasPrefix("error:") }) {
            return .failed(String(line.dropFirst("error:".count).drop { $0 == " " }))
        }
        if let job = SlurmSubmitter.recordedJob(self, hash) {
            return .failed("slurm job \(job) ended without finishing; see \(dir)/slurm-\(job).out")
        }
        if fm.fileExists(atPath: dir + "/last.safetensors") || fm.fileExists(atPath: dir + "/state.json") { return .partial }
        return .pending
    }
}

/// Where a stage stands in the store.
public enum StageStatus: Equatable, Sendable {
    case done(seconds: Double?)
    /// Its lock is held (by "pid host", or a Slurm job that is running).
    case running(holder: String)
    /// Submitted to Slurm and waiting.
    case queued(job: String, state: String)
    /// Its last run ended with this error.
    case failed(String)
    /// Done, but its outputs no longer match their digests (or it was set aside for that).
    case damaged([String])
    /// Stopped after a complete epoch: the next run resumes it.
    case partial
    case pending

    public var name: String {
        switch self {
        case .done: return "done"
        case .running: return "running"
        case .queued: return "queued"
        case .failed: return "failed"
        case .damaged: return "damaged"
        case .partial: return "partial"
        case .pending: return "pending"
        }
    }

    public var detail: String {
        switch self {
        case .done(let s): return s.map { String(format: "%.0fs", $0) } ?? ""
        case .running(let holder): return holder
        case .queued(let job, let state): return "slurm job \(job) \(state)"
        case .failed(let error): return String(error.prefix(100))
        case .damaged(let problems): return problems.joined(separator: "; ")
        case .partial, .pending: return ""
        }
    }
}

/// A held stage lock, released by `release()` (or by the process ending).
final class StageLock: Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

public enum RuntimeError: Error, CustomStringConvertible {
    case io(String)
    case badPlan(String)
    case nonFinite(term: String, step: Int, epoch: Int, lastFinite: String)
    case stage(String)
    case interrupted
    /// A finished stage whose outputs cannot be trusted: it is named with what was found.
    case damaged(stage: String, String)

    public var description: String {
        switch self {
        case .io(let s): return "I/O error: \(s)"
        case .badPlan(let s): return "plan: \(s)"
        case .nonFinite(let term, let step, let epoch, let last): return "loss term '\(term)' became NaN or infinite at epoch \(epoch), step \(step); last finite values: \(last)"
        case .stage(let s): return s
        case .interrupted: return "interrupted"
        case .damaged(let stage, let why): return "stage \(stage.prefix(12)) in the store is damaged: \(why); `distill sweep` sets it aside and runs it again"
        }
    }
}
