import Foundation
import Storage
import Hashing
import Plan
import StageConfig

/// A sweep as Slurm jobs: one job per stage that is not done, each running
/// `distill run --stage HASH --plan PLAN` against a store on a shared file
/// system, with `--dependency=afterok:` edges that follow the plan's DAG.
public struct SlurmSubmitter {
    public let plan: ExecutionPlan
    public let store: RunStore
    public let planPath: String
    public let distill: String
    /// The spec's checked `execution.slurm`, overridden on the command line.
    public let options: SlurmSettings

    public init(plan: ExecutionPlan, store: RunStore, planPath: String, distill: String, options: SlurmSettings) {
        (self.plan, self.store, self.planPath, self.distill, self.options) = (plan, store, planPath, distill, options)
    }

    /// A store path that a job script cannot carry as one quoted `#SBATCH` argument (a double
    /// quote or a control character in it), with what is wrong; nil when it can.
    public static func unscriptablePath(_ path: String) -> String? {
        if path.contains("\"") { return "the store path \(path) holds a double quote, which an #SBATCH line cannot carry" }
        if path.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "the store path holds a control character, which a job script cannot carry"
        }
        return nil
    }

    /// Writes the plan into the store under its own hash; returns its path.
    public static func storePlan(_ plan: ExecutionPlan, in store: RunStore) throws -> String {
        let text = plan.json.pretty
        let dir = store.root + "/plans"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/\(SHA256.hex(text).prefix(16)).json"
        if !FileManager.default.fileExists(atPath: path) { try AtomicFile.write(Data(text.utf8), to: path) }
        return path
    }

    /// Stages that still need to run, in dependency order.
    public var pending: [PlanStage] { plan.stages.filter { !store.isDone($0.hash) } }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The MPI ranks of a stage: 1 but for training stages, which take the spec's `nodes` (or
    /// their own `stage_nodes`) times `ranks_per_node`, more nodes when fewer would
    /// exceed `max_time`, never more ranks than their batch.
    public func ranks(_ s: PlanStage) -> Int { request(s).granted }

    /// What a stage asked for (ranks from `nodes` or `stage_nodes`) and what its job gets, with why they differ.
    func request(_ s: PlanStage) -> (asked: Int, granted: Int, why: String?) {
        guard case .train(let c) = s.config else { return (1, 1, nil) }
        let perNode = max(1, options.ranksPerNode)
        let asked = (options.stageNodes[plan.specName(of: s.hash)] ?? options.nodes) * perNode
        var wanted = asked, why: [String] = []
        if let budget = options.maxTime.flatMap(SlurmSettings.seconds), budget > 600 {
            let ranksNeeded = Int(((s.cost.seconds * 3) / (budget - 600)).rounded(.up))
            let nodes = min(options.maxNodes, (ranksNeeded + perNode - 1) / perNode)
            if nodes * perNode > wanted {
                wanted = nodes * perNode
                why.append("max_time \(options.maxTime ?? "") asks for \(wanted) to finish in time")
            }
        }
        if wanted > c.batch {
            wanted = c.batch
            why.append("its batch of \(c.batch) gives each rank one image at most")
        }
        return (asked, max(1, wanted), why.isEmpty ? nil : why.joined(separator: ", and "))
    }

    /// Every job that does not get what the spec asked for, or whose time limit is over
    /// `max_time`: one line each, naming the stage, what was asked, what it gets and why.
    public var notices: [String] {
        var out: [String] = []
        let budget = options.maxTime.flatMap(SlurmSettings.seconds)
        for s in pending {
            let name = plan.specName(of: s.hash)
            let r = request(s)
            if r.granted != r.asked, let why = r.why {
                out.append("\(name) (\(s.shortHash)) asked for \(r.asked) rank\(r.asked == 1 ? "" : "s") and gets \(r.granted): \(why)")
            }
            if let budget, options.time == nil, Double(timeLimit(s)) > budget {
                out.append("\(name) (\(s.shortHash)) needs a time limit of \(Self.clock(timeLimit(s))) on \(r.granted) rank\(r.granted == 1 ? "" : "s"), "
                           + "over max_time \(options.maxTime ?? ""): "
                           + (isBatchBound(s) ? "its batch allows no more ranks" : "max_nodes \(options.maxNodes) allows no more nodes"))
            }
        }
        return out
    }

    /// Seconds of a job's time limit: three times the estimate on its ranks (compute split over
    /// them, plus the gradient allreduce and the contrastive gathers each step) plus ten minutes.
    func timeLimit(_ s: PlanStage) -> Int {
        let k = ranks(s)
        let communication = k > 1 ? ClusterSchedule.communication(s, ranks: k, interconnect: .fallback) : 0
        return Int(max(600, (s.cost.seconds / Double(k) + communication) * 3 + 600))
    }

    func isBatchBound(_ s: PlanStage) -> Bool {
        guard case .train(let c) = s.config else { return true }
        return ranks(s) >= c.batch
    }

    static func clock(_ seconds: Int) -> String { String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60) }

    /// Resources from the cost model: a time limit of three times the estimate (split
    /// over the ranks) plus ten minutes, memory of 1.5 times the peak estimate plus 512 MiB
    /// per rank on a node.
    func resources(_ s: PlanStage) -> (cpus: Int, mem: String, time: String) {
        let cpus = options.cpusPerTask ?? 2
        let perNode = min(ranks(s), options.ranksPerNode)
        let mem = options.mem ?? "\(perNode * max(1024, Int(Double(s.cost.memoryBytes) * 1.5 / Double(1 << 20)) + 512))M"
        let time = options.time ?? Self.clock(timeLimit(s))
        return (cpus, mem, time)
    }

    /// The sbatch script of a stage; `dependencies` are job ids (or placeholders in a dry run).
    public func script(_ s: PlanStage, dependencies: [String]) -> String {
        let r = resources(s)
        var lines = ["#!/bin/bash",
                     "#SBATCH --job-name=distill-\(s.kind.rawValue)-\(s.shortHash)",
                     // sbatch reads a double-quoted #SBATCH argument as one word (a store path may hold spaces; `submit` refuses one with a quote).
                     "#SBATCH --output=\"\(store.directory(s.hash))/slurm-%j.out\"",
                     "#SBATCH --cpus-per-task=\(r.cpus)",
                     "#SBATCH --mem=\(r.mem)",
                     "#SBATCH --time=\(r.time)"]
        if let p = options.partition { lines.append("#SBATCH --partition=\(p)") }
        if let a = options.account { lines.append("#SBATCH --account=\(a)") }
        if let q = options.qos { lines.append("#SBATCH --qos=\(q)") }
        for e in options.extra { lines.append("#SBATCH \(e)") }
        if !dependencies.isEmpty {
            lines.append("#SBATCH --dependency=afterok:\(dependencies.joined(separator: ":"))")
            lines.append("#SBATCH --kill-on-invalid-dep=yes")
        }
        let n = ranks(s)
        if n > 1 {
            let perNode = min(n, options.ranksPerNode)
            lines.insert(contentsOf: ["#SBATCH --ntasks=\(n)", "#SBATCH --ntasks-per-node=\(perNode)",
                                      "#SBATCH --nodes=\((n + perNode - 1) / perNode)"], at: 3)
        }
        lines.append("# \(s.label)")
        lines.append("set -euo pipefail")
        let run = "\(Self.quote(distill)) run --stage \(s.hash) --plan \(Self.quote(planPath)) --store \(Self.quote(store.root)) --threads \(r.cpus)"
        if n > 1 {
            // Data-parallel over the job's tasks: Open MPI's mpirun reads the allocation from Slurm.
            lines.append("# \(n) data-parallel ranks; rank 0 writes the stage")
            lines.append("if [ \"$(id -u)\" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi")
            lines.append("exec mpirun -np \(n) --bind-to none \(run)")
        } else {
            lines.append("exec \(run)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The scripts and the dependency graph, with `JOB:<hash>` standing for job ids.
    public func dryRun() -> String {
        let todo = pending
        let todoSet = Set(todo.map(\.hash))
        var out = "# \(todo.count) of \(plan.stages.count) stages to submit (\(plan.stages.count - todo.count) already done in \(store.root))\n"
        for n in notices { out += "# warning: \(n)\n" }
        out += "# plan: \(planPath)\n\n# dependency graph (afterok):\n"
        for s in todo {
            let deps = s.inputs.values.filter { todoSet.contains($0) }.sorted().map { "JOB:\($0.prefix(12))" }
            out += "#   JOB:\(s.shortHash) \(s.kind.rawValue)\(ranks(s) > 1 ? " (\(ranks(s)) ranks)" : "")\(deps.isEmpty ? "" : " <- " + deps.joined(separator: ", "))\n"
        }
        for s in todo {
            let deps = s.inputs.values.filter { todoSet.contains($0) }.sorted().map { "JOB:\($0.prefix(12))" }
            out += "\n# ---- JOB:\(s.shortHash) ----\n" + script(s, dependencies: deps)
        }
        return out
    }

    /// Submits every pending stage; a stage already queued or running from an earlier
    /// submission is not submitted again (its job id is reused for dependents).
    public func submit(sbatch: String = "sbatch") throws -> [(hash: String, job: String, reused: Bool)] {
        var jobs: [String: String] = [:]
        var out: [(String, String, Bool)] = []
        for s in pending {
            if let previous = Self.recordedJob(store, s.hash), let state = Self.jobState(previous), ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"].contains(state) {
                jobs[s.hash] = previous
                out.append((s.hash, previous, true))
                continue
            }
            let deps = s.inputs.values.sorted().compactMap { jobs[$0] }
            let dir = store.directory(s.hash)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let scriptPath = dir + "/slurm.sh"
            try AtomicFile.write(Data(script(s, dependencies: deps).utf8), to: scriptPath)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [sbatch, "--parsable", scriptPath]
            let pipe = Pipe(), err = Pipe()
            p.standardOutput = pipe
            p.standardError = err
            try p.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let job = text.split(separator: ";").first.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            guard p.terminationStatus == 0, !job.isEmpty, job.allSatisfy(\.isNumber) else {
                throw RuntimeError.stage("sbatch failed for stage \(s.shortHash): \(problem.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            jobs[s.hash] = job
            let record = JSON.object(["job": .string(job), "plan": .string(planPath), "submitted": .string(ISO8601DateFormatter().string(from: Date()))])
            try AtomicFile.write(Data(record.pretty.utf8), to: dir + "/slurm.json")
            out.append((s.hash, job, false))
        }
        return out
    }

    public static func recordedJob(_ store: RunStore, _ hash: String) -> String? {
        guard let data = FileManager.default.contents(atPath: store.file(hash, "slurm.json")), let json = JSON.parse(data) else { return nil }
        return json["job"]?.string
    }

    /// The job's state from squeue (nil once Slurm has forgotten it or is unreachable).
    public static func jobState(_ job: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["squeue", "-h", "-j", job, "-o", "%T"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let state = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return p.terminationStatus == 0 && !state.isEmpty ? state : nil
    }
}
