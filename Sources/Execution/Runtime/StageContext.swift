import Foundation
import Plan
import StageConfig

/// What a running stage needs: its plan, store, folder, and a log that goes to
/// the stage's log.txt and (as plain lines) to the console.
final class StageContext: @unchecked Sendable {
    let plan: ExecutionPlan
    let store: RunStore
    let stage: PlanStage
    let baseDirectory: String
    let directory: String
    let echo: Bool
    /// Whether this process writes the stage's files: every process but the
    /// non-zero ranks of a data-parallel stage, which compute and stay silent.
    let writes: Bool
    /// What the stage adds to its `done` record (a training stage: the epoch it kept).
    var summary: [String: JSON] = [:]
    private let logHandle: FileHandle?

    init(plan: ExecutionPlan, store: RunStore, stage: PlanStage, baseDirectory: String, echo: Bool, writes: Bool = true) throws {
        self.plan = plan
        self.store = store
        self.stage = stage
        self.baseDirectory = baseDirectory
        self.echo = echo && writes
        self.writes = writes
        directory = store.directory(stage.hash)
        if writes {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            logHandle = try Self.appending(directory + "/log.txt")
        } else {
            logHandle = nil
        }
    }

    deinit { try? logHandle?.close() }

    func log(_ line: String) {
        let stamped = "[\(stage.kind.rawValue) \(stage.shortHash)] \(line)\n"
        logHandle?.write(Data(stamped.utf8))
        if echo { FileHandle.standardOutput.write(Data(((Self.terminal ? "\r\u{1B}[K" : "") + stamped).utf8)) }
    }

    /// A warning: a logged line that says so (the report derives its own from the plan and the models).
    func warn(_ line: String) { log("warning: " + line) }

    /// A progress line: redrawn in place on a terminal, a plain logged line otherwise.
    func progress(_ line: String) {
        guard Self.terminal, echo else { return log(line) }
        FileHandle.standardOutput.write(Data("\r\u{1B}[K[\(stage.kind.rawValue) \(stage.shortHash)] \(line)".utf8))
    }

    static let terminal = isatty(STDOUT_FILENO) == 1

    /// Opens `path` for appending, creating it if needed.
    static func appending(_ path: String) throws -> FileHandle {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RuntimeError.io("cannot open \(path) for writing: \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Appends a line (or lines) to a file of the stage.
    func append(_ text: String, to path: String) throws {
        guard writes else { return }
        let h = try Self.appending(path)
        defer { try? h.close() }
        try h.write(contentsOf: Data(text.utf8))
    }

    /// The upstream stage of a role (`data`, `teacher`, ...).
    func input(_ role: String) throws -> PlanStage {
        guard let h = stage.inputs[role], let s = plan.stage(h) else { throw RuntimeError.badPlan("stage \(stage.shortHash) has no '\(role)' input") }
        return s
    }
}
