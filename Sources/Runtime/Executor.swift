import Foundation
import Plan
import Tensor

/// Runs a plan's stages in dependency order against a store: done stages are
/// reused, a failing stage fails only its descendants, the rest go on.
public struct Executor {
    public let plan: ExecutionPlan
    public let store: RunStore
    public let baseDirectory: String
    public var echo = true
    public var failFast = false
    /// Stages run at once; each gets an equal share of the threads.
    public var jobs = 1
    /// The store's SQLite index, kept up to date as stages finish (nil: not kept).
    public var index: RunIndex?

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
        jobs > 1 ? runConcurrently(only: only) : runInOrder(only: only)
    }

    /// Up to `jobs` stages at once, each as soon as its inputs are done.
    func runConcurrently(only: Set<String>?) -> Summary {
        var summary = Summary()
        let wanted = plan.stages.filter { only == nil || only?.contains($0.hash) == true }
        var pending = wanted.map(\.hash)
        var finished = Set<String>(), bad = Set<String>(), running = Set<String>()
        for s in wanted where store.isDone(s.hash) {
            summary.reused.append(s.hash)
            finished.insert(s.hash)
        }
        pending.removeAll { finished.contains($0) }
        let lock = NSCondition()
        let share = max(1, Parallel.threads / jobs)
        while true {
            lock.lock()
            // Stages whose inputs failed are skipped; stages whose inputs are done may start.
            for h in pending {
                guard let s = plan.stage(h) else { continue }
                if s.inputs.values.contains(where: { bad.contains($0) }) || (failFast && !summary.failed.isEmpty) {
                    bad.insert(h)
                    summary.skipped.append(h)
                }
            }
            pending.removeAll { bad.contains($0) }
            let ready = pending.filter { h in
                guard let s = plan.stage(h) else { return false }
                return s.inputs.values.allSatisfy { finished.contains($0) || store.isDone($0) }
            }
            if summary.interrupted || CtxStop.requested { summary.interrupted = true }
            if (pending.isEmpty || summary.interrupted) && running.isEmpty { lock.unlock(); break }
            if let next = ready.first, running.count < jobs, !summary.interrupted {
                pending.removeAll { $0 == next }
                running.insert(next)
                lock.unlock()
                guard let stage = plan.stage(next) else { continue }
                Thread.detachNewThread { [self] in
                    var outcome: Error?
                    Parallel.$share.withValue(share) {
                        do { try execute(stage) } catch { outcome = error }
                    }
                    lock.lock()
                    running.remove(next)
                    if let outcome {
                        if case RuntimeError.interrupted = outcome { summary.interrupted = true } else {
                            bad.insert(next)
                            summary.failed.append((next, "\(outcome)", store.file(next, "log.txt")))
                            index?.record(stage: stage, status: "failed", seconds: nil, metrics: nil)
                            if echo { print("[\(stage.kind.rawValue) \(stage.shortHash)] failed: \(outcome)") }
                        }
                    } else {
                        finished.insert(next)
                        summary.done.append(next)
                    }
                    lock.signal()
                    lock.unlock()
                }
                continue
            }
            if ready.isEmpty && running.isEmpty {
                // Nothing can start: inputs outside `only` that are not done.
                summary.skipped += pending
                pending.removeAll()
                lock.unlock()
                break
            }
            lock.wait()
            lock.unlock()
        }
        return summary
    }

    func runInOrder(only: Set<String>?) -> Summary {
        var summary = Summary()
        var bad = Set<String>()
        for stage in plan.stages where only == nil || only?.contains(stage.hash) == true {
            if CtxStop.requested { summary.interrupted = true }
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
                index?.record(stage: stage, status: "failed", seconds: nil, metrics: nil)
                if echo { print("[\(stage.kind.rawValue) \(stage.shortHash)] failed: \(error)") }
            }
        }
        return summary
    }

    /// How long to wait for another process's stage before giving up (nil: while it lives).
    public var lockWait: TimeInterval? = nil

    func execute(_ stage: PlanStage) throws {
        // Another sweep running the same stage: wait for it, then reuse its result.
        var waited = 0.0
        var announced = false
        var held = try store.lock(stage.hash)
        while held == nil {
            if store.isDone(stage.hash) { return }
            if let limit = lockWait, waited >= limit {
                throw RuntimeError.stage("stage \(stage.shortHash) is being run by another process (see \(store.directory(stage.hash))/lock)")
            }
            if CtxStop.requested { throw RuntimeError.interrupted }
            if echo, !announced { print("[\(stage.kind.rawValue) \(stage.shortHash)] another process is running this stage; waiting for it") }
            announced = true
            Thread.sleep(forTimeInterval: 0.2)
            waited += 0.2
            held = try store.lock(stage.hash)
        }
        guard let lock = held else { return }
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
        index?.record(stage: stage, status: "done", seconds: seconds,
                      metrics: stage.kind == .evaluate ? FileManager.default.contents(atPath: ctx.directory + "/metrics.json").flatMap(JSON.parse) : nil)
        ctx.log("done in \(String(format: "%.1f", seconds)) s")
    }
}
