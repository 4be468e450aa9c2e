import Foundation
import Plan

/// Runs a plan's stages in dependency order against a store: done stages are
/// reused, a failing stage fails only its descendants, the rest go on.
public struct Executor {
    public let plan: ExecutionPlan
    public let store: RunStore
    public let baseDirectory: String
    public var echo = true
    public var failFast = false

    public init(plan: ExecutionPlan, store: RunStore, baseDirectory: String) {
        self.plan = plan
        self.store = store
        self.baseDirectory = baseDirectory
    }

    public struct Summary {
        public var done: [String] = []
        public var reused: [String] = []
        public var failed: [(hash: String, error: String, log: String)] = []
        public var skipped: [String] = []
        public var interrupted = false
        public var ok: Bool { failed.isEmpty && skipped.isEmpty && !interrupted }
    }

    /// Runs `only` (and nothing else) when given, else every stage of the plan.
    public func run(only: Set<String>? = nil) -> Summary {
        var summary = Summary()
        var bad = Set<String>()
        for stage in plan.stages where only == nil || only?.contains(stage.hash) == true {
            if summary.interrupted { break }
            if store.isDone(stage.hash) {
                summary.reused.append(stage.hash)
                continue
            }
            if stage.inputs.values.contains(where: { bad.contains($0) }) || (only != nil && stage.inputs.values.contains { !store.isDone($0) && !(only?.contains($0) ?? false) }) {
                bad.insert(stage.hash)
                summary.skipped.append(stage.hash)
                continue
            }
            if failFast, !summary.failed.isEmpty {
                summary.skipped.append(stage.hash)
                continue
            }
            do {
                try execute(stage)
                summary.done.append(stage.hash)
            } catch RuntimeError.interrupted {
                summary.interrupted = true
            } catch {
                bad.insert(stage.hash)
                let log = store.file(stage.hash, "log.txt")
                if let h = FileHandle(forWritingAtPath: log) { h.seekToEndOfFile(); h.write(Data("error: \(error)\n".utf8)); try? h.close() }
                summary.failed.append((stage.hash, "\(error)", log))
                if echo { print("[\(stage.kind.rawValue) \(stage.shortHash)] failed: \(error)") }
            }
        }
        return summary
    }

    func execute(_ stage: PlanStage) throws {
        guard let lock = try store.lock(stage.hash) else {
            throw RuntimeError.stage("stage \(stage.shortHash) is being run by another process (see \(store.directory(stage.hash))/lock)")
        }
        defer { lock.release() }
        if store.isDone(stage.hash) { return }
        let ctx = try StageContext(plan: plan, store: store, stage: stage, baseDirectory: baseDirectory, echo: echo)
        try RunStore.writeAtomically(Data(JSON.object(["hash": .string(stage.hash), "kind": .string(stage.kind.rawValue), "label": .string(stage.label),
                                                       "inputs": .object(stage.inputs.mapValues(JSON.string)), "params": stage.params]).pretty.utf8),
                                     to: ctx.directory + "/stage.json")
        ctx.log("start: \(stage.label)")
        let start = Date()
        switch stage.kind {
        case .prepare: try PrepareStage.run(stage, ctx)
        case .train, .distill: try TrainStage.run(stage, ctx)
        case .teacherOutputs: try TeacherOutputsStage.run(stage, ctx)
        case .evaluate: try EvaluateStage.run(stage, ctx)
        case .report: try Report.run(stage, ctx)
        }
        let seconds = Date().timeIntervalSince(start)
        try store.markDone(stage.hash, summary: .object(["seconds": .number((seconds * 10).rounded() / 10), "label": .string(stage.label)]))
        ctx.log("done in \(String(format: "%.1f", seconds)) s")
    }
}
