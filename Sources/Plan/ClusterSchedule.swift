/// How long a plan takes on several machines when each stage runs on one of them
/// (what `distill submit --to slurm` does today): the critical path, the wall time of
/// a greedy schedule on `nodes` machines, and the stage that dominates.
///
/// Stages are placed in order of their bottom level (the longest time from their start
/// to the end of the plan), each on the machine that frees first, starting once its
/// inputs are done (Hu's list scheduling). Times are the cost model's, per stage.
public struct ClusterSchedule: Sendable {
    /// The longest chain of dependent stages, first to last.
    public var criticalPath: [PlanStage]
    public var criticalSeconds: Double
    /// Wall time of the greedy schedule.
    public var makespan: Double
    public var nodes: Int
    /// Seconds of every stage added up: the time on one machine.
    public var serialSeconds: Double

    public init(_ plan: ExecutionPlan, nodes: Int) {
        self.nodes = max(1, nodes)
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
            finish[s.hash] = start + s.cost.seconds
            return start + s.cost.seconds
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
        serialSeconds = plan.stages.reduce(0) { $0 + $1.cost.seconds }

        // Bottom levels: a stage's time plus the longest bottom level of what needs it.
        var needers: [String: [String]] = [:]
        for s in plan.stages { for input in Set(s.inputs.values) { needers[input, default: []].append(s.hash) } }
        var bottom: [String: Double] = [:]
        func level(_ h: String) -> Double {
            if let b = bottom[h] { return b }
            let b = (byHash[h]?.cost.seconds ?? 0) + ((needers[h] ?? []).map(level).max() ?? 0)
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
            let node = free.indices.min { free[$0] < free[$1] } ?? 0
            let inputsDone = next.inputs.values.compactMap { done[$0] }.max() ?? 0
            let end = max(free[node], inputsDone) + next.cost.seconds
            free[node] = end
            done[next.hash] = end
            waiting.removeAll { $0.hash == next.hash }
        }
        makespan = done.values.max() ?? 0
    }

    /// The stage of the critical path that takes longest.
    public var dominant: PlanStage? { criticalPath.max { $0.cost.seconds < $1.cost.seconds } }

    public var text: String {
        var out = "\ncritical path (\(criticalPath.count) stages, \(Format.duration(criticalSeconds))):\n"
        let width = criticalPath.map { Format.duration($0.cost.seconds).count }.max() ?? 0
        for s in criticalPath {
            let share = criticalSeconds > 0 ? 100 * s.cost.seconds / criticalSeconds : 0
            let time = Format.duration(s.cost.seconds)
            out += "  \(s.shortHash)  \(String(repeating: " ", count: width - time.count))\(time)  \(String(format: "%3.0f%%", share))  \(s.label)\n"
        }
        out += "on \(nodes) node\(nodes == 1 ? "" : "s"), one stage per node at a time: ~\(Format.duration(makespan))"
        out += " (one machine: \(Format.duration(serialSeconds)); no schedule beats the critical path, \(Format.duration(criticalSeconds)))\n"
        if let d = dominant {
            out += "dominated by \(d.shortHash) \(d.label): \(Format.duration(d.cost.seconds)); a stage runs on one node, so more nodes do not shorten it\n"
        }
        return out
    }
}
