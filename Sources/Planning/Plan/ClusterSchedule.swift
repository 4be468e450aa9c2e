import StageConfig

/// How long a plan takes on a cluster of `nodes` machines: stages run side by side
/// on different nodes, and a training stage may itself run data-parallel over
/// several nodes (one rank a node, `distill submit` with `ranks`), paying an
/// allreduce of its gradients every step.
///
/// A training stage's time on k nodes is its compute over k plus `steps` allreduces
/// of its parameters over k ranks (Interconnect); k is the count that minimises it,
/// at most the nodes and at most the stage's batch (every rank needs an image); a
/// stage with batch-contrastive terms (InfoNCE, SupCon) stays on one node.
/// Compute scales with `coresPerNode` against the cores the throughput was measured
/// with. Stages are placed in order of their bottom level (the longest time from
/// their start to the end of the plan), each on the k nodes that free first,
/// starting once its inputs are done (Hu's list scheduling).
public struct ClusterSchedule: Sendable {
    /// One stage's part: how many nodes, and its time split into compute and communication.
    public struct Placement: Sendable {
        public var ranks: Int
        public var compute: Double
        public var communication: Double
        public var seconds: Double { compute + communication }
    }

    /// The longest chain of dependent stages, first to last.
    public var criticalPath: [PlanStage]
    public var criticalSeconds: Double
    /// Wall time of the greedy schedule.
    public var makespan: Double
    public var nodes: Int
    public var coresPerNode: Int?
    /// Seconds of every stage added up on one node: the time on one machine.
    public var serialSeconds: Double
    public var placements: [String: Placement]
    public var interconnect: Interconnect

    public init(_ plan: ExecutionPlan, nodes: Int, coresPerNode: Int? = nil, calibratedCores: Int = 2,
                interconnect: Interconnect = .fallback) {
        self.nodes = max(1, nodes)
        self.coresPerNode = coresPerNode
        self.interconnect = interconnect
        let speed = coresPerNode.map { Double($0) / Double(max(1, calibratedCores)) } ?? 1
        var placements: [String: Placement] = [:]
        for s in plan.stages {
            placements[s.hash] = Self.place(s, nodes: self.nodes, speed: speed, interconnect: interconnect)
        }
        self.placements = placements
        let time = { (s: PlanStage) in placements[s.hash]?.seconds ?? s.cost.seconds }
        let byHash = Dictionary(plan.stages.map { ($0.hash, $0) }, uniquingKeysWith: { a, _ in a })
        // Earliest finish on unlimited machines, and the input it waits for last.
        var finish: [String: Double] = [:], waitsFor: [String: String] = [:]
        func earliest(_ s: PlanStage) -> Double {
            if let f = finish[s.hash] { return f }
            var start = 0.0
            for input in Set(s.inputs.values) {
                guard let u = byHash[input] else { continue }
                let f = earliest(u)
                if f > start { start = f; waitsFor[s.hash] = input }
            }
            finish[s.hash] = start + time(s)
            return start + time(s)
        }
        for s in plan.stages { _ = earliest(s) }
        var path: [PlanStage] = []
        var cursor = plan.stages.max { (finish[$0.hash] ?? 0) < (finish[$1.hash] ?? 0) }
        while let s = cursor {
            path.insert(s, at: 0)
            cursor = waitsFor[s.hash].flatMap { byHash[$0] }
        }
        criticalPath = path
        criticalSeconds = path.last.flatMap { finish[$0.hash] } ?? 0
        serialSeconds = plan.stages.reduce(0) { $0 + $1.cost.seconds / speed }

        // Bottom levels: a stage's time plus the longest bottom level of what needs it.
        var needers: [String: [String]] = [:]
        for s in plan.stages { for input in Set(s.inputs.values) { needers[input, default: []].append(s.hash) } }
        var bottom: [String: Double] = [:]
        func level(_ h: String) -> Double {
            if let b = bottom[h] { return b }
            let b = (byHash[h].map(time) ?? 0) + ((needers[h] ?? []).map(level).max() ?? 0)
            bottom[h] = b
            return b
        }
        for s in plan.stages { _ = level(s.hash) }
        var free = [Double](repeating: 0, count: self.nodes)
        var done: [String: Double] = [:]
        var waiting = plan.stages
        while !waiting.isEmpty {
            let ready = waiting.filter { s in s.inputs.values.allSatisfy { done[$0] != nil || byHash[$0] == nil } }
            guard let next = ready.max(by: { (bottom[$0.hash] ?? 0) < (bottom[$1.hash] ?? 0) }) else { break }
            let k = placements[next.hash]?.ranks ?? 1
            // The k nodes that free first.
            let chosen = free.indices.sorted { free[$0] < free[$1] }.prefix(k)
            let inputsDone = next.inputs.values.compactMap { done[$0] }.max() ?? 0
            let start = max(inputsDone, chosen.map { free[$0] }.max() ?? 0)
            let end = start + time(next)
            for n in chosen { free[n] = end }
            done[next.hash] = end
            waiting.removeAll { $0.hash == next.hash }
        }
        makespan = done.values.max() ?? 0
    }

    /// Seconds a training stage on `ranks` ranks spends exchanging: the gradient allreduce
    /// and the batch-contrastive gathers, every step.
    public static func communication(_ s: PlanStage, ranks k: Int, interconnect: Interconnect) -> Double {
        Double(s.cost.steps) * (interconnect.allreduce(bytes: 4 * s.cost.parameters, ranks: k)
                                + (s.cost.gatheredBytesPerStep > 0 ? interconnect.allreduce(bytes: s.cost.gatheredBytesPerStep, ranks: k) : 0))
    }

    /// A training stage's best node count; every other stage runs on one node.
    static func place(_ s: PlanStage, nodes: Int, speed: Double, interconnect: Interconnect) -> Placement {
        let compute = s.cost.seconds / speed
        guard case .train(let c) = s.config, s.cost.steps > 0 else {
            return Placement(ranks: 1, compute: compute, communication: 0)
        }
        var best = Placement(ranks: 1, compute: compute, communication: 0)
        for k in stride(from: 2, through: min(nodes, c.batch), by: 1) {
            let p = Placement(ranks: k, compute: compute / Double(k), communication: communication(s, ranks: k, interconnect: interconnect))
            if p.seconds < best.seconds { best = p }
        }
        return best
    }

    /// The stage of the critical path that takes longest.
    public var dominant: PlanStage? { criticalPath.max { seconds($0) < seconds($1) } }

    func seconds(_ s: PlanStage) -> Double { placements[s.hash]?.seconds ?? s.cost.seconds }

    /// The schedule as data (`distill plan --nodes N --format json`, under "cluster"): times in seconds.
    public var json: JSON {
        var placed: [String: JSON] = [:]
        for (hash, p) in placements {
            placed[hash] = .object(["ranks": .int(p.ranks), "compute_seconds": .number(p.compute.rounded()),
                                    "communication_seconds": .number(p.communication.rounded())])
        }
        let fields: [String: JSON] = [
            "nodes": .int(nodes), "cores_per_node": coresPerNode.map { JSON.int($0) } ?? .null,
            "wall_seconds": .number(makespan.rounded()), "one_machine_seconds": .number(serialSeconds.rounded()),
            "critical_path_seconds": .number(criticalSeconds.rounded()), "critical_path": .array(criticalPath.map { JSON.string($0.hash) }),
            "interconnect": .string(interconnect.source), "placements": .object(placed),
        ]
        return .object(fields)
    }

    public var text: String {
        var out = "\ncritical path (\(criticalPath.count) stages, \(Format.duration(criticalSeconds))):\n"
        let width = criticalPath.map { Format.duration(seconds($0)).count }.max() ?? 0
        for s in criticalPath {
            let share = criticalSeconds > 0 ? 100 * seconds(s) / criticalSeconds : 0
            let time = Format.duration(seconds(s))
            let ranks = placements[s.hash]?.ranks ?? 1
            out += "  \(s.shortHash)  \(String(repeating: " ", count: width - time.count))\(time)  \(String(format: "%3.0f%%", share))  \(s.label)\(ranks > 1 ? " [\(ranks) nodes]" : "")\n"
        }
        let cores = coresPerNode.map { ", \($0) cores a node" } ?? ""
        out += "on \(nodes) node\(nodes == 1 ? "" : "s")\(cores): ~\(Format.duration(makespan))"
        out += " (one machine: \(Format.duration(serialSeconds)); no schedule beats the critical path, \(Format.duration(criticalSeconds)))\n"
        if let d = dominant, let p = placements[d.hash] {
            out += "dominated by \(d.shortHash) \(d.label): \(Format.duration(p.seconds))"
            if p.ranks > 1 {
                let exchange = d.cost.gatheredBytesPerStep > 0 ? "gradient allreduce and contrastive gathers" : "gradient allreduce"
                out += " data-parallel on \(p.ranks) nodes (compute \(Format.duration(p.compute)), \(exchange) \(Format.duration(p.communication)) over \(d.cost.steps) steps)"
                if case .train(let c) = d.config, p.ranks == c.batch, nodes > p.ranks {
                    out += "; its batch of \(c.batch) allows no more ranks"
                }
            } else if case .train = d.config, nodes > 1 {
                out += "; more ranks would not pay for their allreduces"
            }
            out += "\n"
        }
        out += "interconnect: \(interconnect.source)\n"
        return out
    }
}
