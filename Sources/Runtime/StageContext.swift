import Foundation
import Plan

/// What a running stage needs: its plan, store, folder, and a log that goes to
/// the stage's log.txt and (as plain lines) to the console.
final class StageContext: @unchecked Sendable {
    let plan: ExecutionPlan
    let store: RunStore
    let stage: PlanStage
    let baseDirectory: String
    let directory: String
    let echo: Bool
    private let logHandle: FileHandle?

    init(plan: ExecutionPlan, store: RunStore, stage: PlanStage, baseDirectory: String, echo: Bool) throws {
        self.plan = plan
        self.store = store
        self.stage = stage
        self.baseDirectory = baseDirectory
        self.echo = echo
        directory = store.directory(stage.hash)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let logPath = directory + "/log.txt"
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        logHandle = FileHandle(forWritingAtPath: logPath)
        logHandle?.seekToEndOfFile()
    }

    deinit { try? logHandle?.close() }

    func log(_ line: String) {
        let stamped = "[\(stage.kind.rawValue) \(stage.shortHash)] \(line)\n"
        logHandle?.write(Data(stamped.utf8))
        if echo { FileHandle.standardOutput.write(Data(((Self.terminal ? "\r\u{1B}[K" : "") + stamped).utf8)) }
    }

    /// A progress line: redrawn in place on a terminal, a plain logged line otherwise.
    func progress(_ line: String) {
        guard Self.terminal, echo else { return log(line) }
        FileHandle.standardOutput.write(Data("\r\u{1B}[K[\(stage.kind.rawValue) \(stage.shortHash)] \(line)".utf8))
    }

    static let terminal = isatty(STDOUT_FILENO) == 1

    /// The upstream stage of a role (`data`, `teacher`, ...).
    func input(_ role: String) throws -> PlanStage {
        guard let h = stage.inputs[role], let s = plan.stage(h) else { throw RuntimeError.badPlan("stage \(stage.shortHash) has no '\(role)' input") }
        return s
    }
}
