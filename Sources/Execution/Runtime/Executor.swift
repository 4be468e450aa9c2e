import Cluster
import Foundation
import Storage
import Plan
import StageConfig
import Synchronization
import Tensor

/// Runs a plan's stages in dependency order against a store: done stages are
/// reused, a failing stage fails only its descendants, the rest go on.
///
/// One scheduler: up to `jobs` stages run side by side, each as soon as its
/// inputs are done, each with an equal share of the threads; `jobs = 1` is one
/// slot of the same loop (stages then start in plan order).
public struct Executor: Sendable {
    public let plan: ExecutionPlan
    public let store: RunStore
    public let baseDirectory: String
    public var echo = true
    public var failFast = false
    /// Stages run at once; each gets an equal share of the threads.
    public var jobs = 1
    /// The store's SQLite index, kept up to date as stages finish (nil: not kept).
    public var index: RunIndex?
    /// How long to wait for another process's stage before giving up (nil: while it lives).
    public var lockWait: TimeInterval?

    public init(plan: ExecutionPlan, store: RunStore, baseDirectory: String) {
        self.plan = plan
        self.store = store
        self.baseDirectory = baseDirectory
    }

    public struct Summary: Sendable {
        public var done: [String] = []
        public var reused: [String] = []
        public var failed: [(hash: String, error: String, log: String)] = []
        public var skipped: [String] = []
        public var interrupted = false
        public var ok: Bool { failed.isEmpty && skipped.isEmpty && !interrupted }
    }

    /// The scheduler's bookkeeping, shared by the stage threads under one lock.
    private struct Board {
        var summary = Summary()
        var pending: [String]
        var finished = Set<String>()
        var bad = Set<String>()
        var running = Set<String>()
    }

    /// Runs `only` (and nothing else) when given, else every stage of the plan.
    public func run(only: Set<String>? = nil) -> Summary {
        let wanted = plan.stages.filter { only == nil || only?.contains($0.hash) == true }
        // Reuse only what is intact: rank 0 checks what this run reuses or reads, and sets damaged stages aside.
        var damaged: [String: String] = [:]
        if World.current.isRoot {
            damaged = setAsideDamaged(wanted)
            // The curves of stages trained before, under this spec's names.
            TensorBoardRuns.linkAll(plan, store: store)
        }
        World.current.barrier()
        var board = Board(pending: [])
        for s in wanted {
            if store.isDone(s.hash) {
                board.summary.reused.append(s.hash)
                board.finished.insert(s.hash)
            } else {
                board.pending.append(s.hash)
            }
        }
        // Every rank of a data-parallel run decides from the same store: none may see a stage done that another runs.
        World.current.barrier()
        let shared = Mutex(board)
        let wake = DispatchSemaphore(value: 0)
        let share = max(1, Parallel.threads / max(1, jobs))
        while true {
            let next: PlanStage? = shared.withLock { b in
                if StopRequest.isSet { b.summary.interrupted = true }
                // Stages whose inputs failed (or, with --fail-fast, any stage after a failure) are skipped.
                for h in b.pending {
                    guard let s = plan.stage(h) else { continue }
                    if s.inputs.values.contains(where: { b.bad.contains($0) }) || (failFast && !b.summary.failed.isEmpty) {
                        b.bad.insert(h)
                        b.summary.skipped.append(h)
                    }
                }
                b.pending.removeAll { b.bad.contains($0) }
                if b.summary.interrupted || b.running.count >= jobs { return nil }
                let ready = b.pending.first { h in
                    plan.stage(h).map { s in s.inputs.values.allSatisfy { b.finished.contains($0) || store.isDone($0) } } ?? false
                }
                if let h = ready, let s = plan.stage(h) {
                    b.pending.removeAll { $0 == h }
                    b.running.insert(h)
                    return s
                }
                if b.running.isEmpty {
                    // Nothing can start: inputs outside `only` that are not done. A damaged input is a failure that says so.
                    for h in b.pending {
                        guard let s = plan.stage(h) else { continue }
                        let error: RuntimeError
                        if let (input, why) = s.inputs.values.lazy.compactMap({ i in damaged[i].map { (i, $0) } }).first {
                            error = RuntimeError.stage("its input \(plan.stage(input)?.label ?? String(input.prefix(12))) (\(input.prefix(12))) is damaged (\(why)) and set aside: run that stage again (`distill sweep SPEC`, or its job) before this one")
                        } else {
                            // A single stage (a cluster job) whose inputs were never run: name them.
                            let missing = s.inputs.sorted { $0.key < $1.key }.filter { !b.finished.contains($0.value) && !store.isDone($0.value) }
                            guard !missing.isEmpty else { b.summary.skipped.append(h); continue }
                            error = RuntimeError.stage("it needs " + missing.map { "its \($0.key) input, \(plan.stage($0.value)?.label ?? "stage") (\($0.value.prefix(12)))" }.joined(separator: " and ")
                                                       + ", not done in \(store.root): run \(missing.count == 1 ? "that stage" : "those stages") first")
                        }
                        recordFailure(s, error)
                        b.summary.failed.append((h, "\(error)", store.file(h, "log.txt")))
                    }
                    b.pending.removeAll()
                }
                return nil
            }
            if let stage = next {
                Thread.detachNewThread { [self] in
                    var outcome: Error?
                    Parallel.$share.withValue(share) {
                        do { try execute(stage) } catch { outcome = error }
                    }
                    if let outcome, !isInterruption(outcome) { recordFailure(stage, outcome) }
                    shared.withLock { b in
                        b.running.remove(stage.hash)
                        switch outcome {
                        case nil:
                            b.finished.insert(stage.hash)
                            b.summary.done.append(stage.hash)
                        case let error? where isInterruption(error):
                            b.summary.interrupted = true
                        case let error?:
                            b.bad.insert(stage.hash)
                            b.summary.failed.append((stage.hash, "\(error)", store.file(stage.hash, "log.txt")))
                        }
                    }
                    wake.signal()
                }
                continue
            }
            let finished = shared.withLock { b in (b.pending.isEmpty || b.summary.interrupted) && b.running.isEmpty }
            if finished { break }
            // A stage thread signals when it ends; wake up now and then to notice a stop request.
            _ = wake.wait(timeout: .now() + 0.2)
        }
        return shared.withLock { $0.summary }
    }

    /// Verifies every done stage this run reuses (those of `wanted`) or reads (the inputs of
    /// the stages it will run) against its recorded digests; a damaged one is set aside,
    /// so that it runs again in this run when it is part of it (its plan is all it takes,
    /// and the stages made from it before it was damaged stay valid). Returns the damaged
    /// stages with what was found.
    private func setAsideDamaged(_ wanted: [PlanStage]) -> [String: String] {
        var check: [String] = []
        for s in wanted {
            // A stage with a done record that is not valid, or whose folder is a link, is checked too: it is damaged, never "done, unchecked".
            for h in [s.hash] + s.inputs.values.sorted() where store.claimsDone(h) && !check.contains(h) {
                if h == s.hash || !store.isDone(s.hash) { check.append(h) }
            }
        }
        var damaged: [String: String] = [:]
        let start = Date()
        var verified = 0, bytes = 0
        defer {
            if echo, verified > 0 {
                let line = "verified \(verified) finished stage\(verified == 1 ? "" : "s") against their digests (\(Format.bytes(bytes))) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s"
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        }
        for h in check {
            let integrity = store.verify(h)
            if case .intact(_, let b) = integrity { verified += 1; bytes += b }
            guard case .damaged(let problems) = integrity else { continue }
            let why = problems.map(\.description).joined(separator: "; ")
            damaged[h] = why
            let rerun = wanted.contains { $0.hash == h }
            do {
                try store.quarantine(h, problems)
            } catch {
                damaged[h] = why + "; and it could not be set aside: \(error)"
            }
            if echo {
                let label = plan.stage(h).map { "\($0.kind.rawValue) \($0.shortHash)" } ?? String(h.prefix(12))
                let line = "[\(label)] damaged: \(why); " + (rerun ? "set aside and run again (a damaged output is never reused)" : "set aside; the stages that read it stop")
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        }
        return damaged
    }

    private func isInterruption(_ error: Error) -> Bool {
        if case RuntimeError.interrupted = error { return true }
        return false
    }

    /// The one failure path: the stage's log gets an `error:` line, the index the status.
    private func recordFailure(_ stage: PlanStage, _ error: Error) {
        let log = store.file(stage.hash, "log.txt")
        if FileManager.default.fileExists(atPath: store.directory(stage.hash)) {
            try? StageContext.appending(log).write(contentsOf: Data("error: \(error)\n".utf8))
        }
        index?.record(stage: stage, status: "failed", seconds: nil, metrics: nil)
        if echo { print("[\(stage.kind.rawValue) \(stage.shortHash)] failed: \(error)") }
    }

    func execute(_ stage: PlanStage) throws {
        let world = World.current
        guard world.isParallel else { return try executeLocked(stage) }
        // Several ranks (mpirun, srun): rank 0's view of the store decides for all. A
        // training stage runs on every rank (data-parallel) and rank 0 writes it; any
        // other stage runs on rank 0 while the others wait for its outcome.
        if world.broadcast(store.isDone(stage.hash) ? 1 : 0) == 1 { return }
        let dataParallel = stage.kind == .train || stage.kind == .distill
        if dataParallel {
            do {
                if world.isRoot {
                    try executeLocked(stage)
                } else {
                    try perform(stage, try StageContext(plan: plan, store: store, stage: stage, baseDirectory: baseDirectory, echo: false, writes: false))
                }
            } catch {
                // A stop request reaches every rank at the same step (it travels with the gradients): all stop cleanly.
                if isInterruption(error) { throw error }
                // Any other failure leaves the other ranks waiting in a collective: end them all. Finished epochs stay on disk for a resume.
                FileHandle.standardError.write(Data("rank \(world.rank): stage \(stage.shortHash) failed: \(error)\n".utf8))
                world.abort(1)
            }
            return
        }
        var failure: Error?
        if world.isRoot {
            do { try executeLocked(stage) } catch { failure = error }
        }
        if world.broadcast(failure == nil ? 1 : 0) == 0 {
            throw failure ?? RuntimeError.stage("stage \(stage.shortHash) failed on rank 0")
        }
    }

    private func executeLocked(_ stage: PlanStage) throws {
        // Another sweep running the same stage: wait for it, then reuse its result.
        var waited = 0.0
        var announced = false
        var held = try store.lock(stage.hash)
        while held == nil {
            if store.isDone(stage.hash) { return }
            if let limit = lockWait, waited >= limit {
                throw RuntimeError.stage("stage \(stage.shortHash) is being run by another process (see \(store.directory(stage.hash))/lock)")
            }
            if StopRequest.isSet { throw RuntimeError.interrupted }
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
        // What a killed run left half-written: the lock is ours, so nobody else is writing here.
        for path in AtomicFile.removeTemporaries(in: ctx.directory) { ctx.log("removed \(path.dropFirst(ctx.directory.count + 1)), left by a run that was stopped") }
        try AtomicFile.write(Data(JSON.object(["hash": .string(stage.hash), "kind": .string(stage.kind.rawValue), "label": .string(stage.label),
                                                       "inputs": .object(stage.inputs.mapValues(JSON.string)), "params": stage.config.json]).pretty.utf8),
                                     to: ctx.directory + "/stage.json")
        ctx.log("start: \(stage.label)")
        // One stage at a time in this process: its peak resident memory is the stage's own.
        if jobs == 1 { BufferPool.releaseIdle() }
        let measuresPeak = jobs == 1 && PeakMemory.reset()
        let start = Date()
        try perform(stage, ctx)
        let seconds = Date().timeIntervalSince(start)
        var summary = ctx.summary.merging(["seconds": .number((seconds * 10).rounded() / 10), "label": .string(stage.label)]) { a, _ in a }
        if measuresPeak, let peak = PeakMemory.peakBytes() { summary["peak_rss_bytes"] = .int(peak) }
        try store.markDone(stage.hash, summary: summary)
        index?.record(stage: stage, status: "done", seconds: seconds,
                      metrics: stage.kind == .evaluate ? FileManager.default.contents(atPath: ctx.directory + "/metrics.json").flatMap(JSON.parse) : nil)
        ctx.log("done in \(String(format: "%.1f", seconds)) s")
    }

    private func perform(_ stage: PlanStage, _ ctx: StageContext) throws {
        switch stage.config {
        case .prepare(let c): try PrepareStage.run(stage, c, ctx)
        case .pretrained(let c): try PretrainedStage.run(stage, c, ctx)
        case .train(let c): try TrainStage.run(stage, c, ctx)
        case .teacherOutputs(let c): try TeacherOutputsStage.run(stage, c, ctx)
        case .evaluate(let c): try EvaluateStage.run(stage, c, ctx)
        case .report: try Report.run(stage, ctx)
        }
    }
}
