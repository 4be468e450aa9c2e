import Spec
import StageConfig
/// What a stage took when it ran, from the store's record of it.
public struct RecordedCost: Sendable {
    public var seconds: Double?
    /// Peak resident memory while the stage ran, when the store recorded it.
    public var peakBytes: Int?
    public init(seconds: Double?, peakBytes: Int?) { (self.seconds, self.peakBytes) = (seconds, peakBytes) }
}

/// The plan as people read it: a text table of the DAG, or Graphviz DOT.
extension ExecutionPlan {
    /// One line per unique stage in execution order, with what it needs, how many
    /// variants share it and its cost; then the sweep's bill.
    /// `recorded`: what the store measured when a stage ran (its seconds and peak resident
    /// memory, by stage hash), shown beside the prediction.
    public func text(title: String, recorded: [String: RecordedCost] = [:]) -> String {
        var out = "plan for \(title): \(variants.count) variant\(variants.count == 1 ? "" : "s"), "
        out += "\(plannedInstances) stage instances, \(stages.count) unique stages\n"
        out += "throughput: \(throughput.source)\n"
        let timed = stages.filter { !$0.cost.work.isEmpty }, measured = timed.filter(\.cost.measured).count
        if !timed.isEmpty {
            out += measured == timed.count ? "stage times: from steps measured on this machine\n"
                : "stage times: \(measured) of \(timed.count) from steps measured on this machine, the others (and prepare) from FLOPs at the rate above\n"
        }
        if let runs = replicationSummary { out += runs + "\n" }
        out += "\n"
        let ran = !recorded.isEmpty
        let header = ["stage", "kind", "needs", "shared", "FLOPs", "time", "memory", "disk"] + (ran ? ["ran", "time/ran", "peak RSS", "memory/RSS"] : [])
        var rows: [[String]] = []
        var labels: [[String]] = []
        for s in stages {
            let needs = s.inputs.sorted { $0.key < $1.key }.map { String($0.value.prefix(12)) }
            let needsText = needs.count <= 2 ? needs.joined(separator: " ") : "\(needs.count) stages"
            rows.append([s.shortHash, s.kind.rawValue, needsText.isEmpty ? "-" : needsText, "\(s.variants.count)/\(variants.count)",
                         s.cost.flops > 0 ? Format.flops(s.cost.flops) : "-", Format.duration(s.cost.seconds),
                         s.cost.memoryBytes > 0 ? Format.bytes(s.cost.memoryBytes) : "-", Format.bytes(s.cost.diskBytes)]
                        + (ran ? Self.recordedCells(s.cost, recorded[s.hash]) : []))
            labels.append([s.label] + (s.note.map { [$0] } ?? []))
        }
        let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, cell in
                c >= 4 ? String(repeating: " ", count: widths[c] - cell.count) + cell : cell + String(repeating: " ", count: widths[c] - cell.count)
            }.joined(separator: "  ").replacingTrailingSpaces()
        }
        out += line(header) + "\n"
        for (row, label) in zip(rows, labels) {
            out += line(row) + "\n"
            for l in label { out += String(repeating: " ", count: widths[0] + 2) + l + "\n" }
        }
        let t = totals
        out += "\ntotal: \(Format.flops(t.flops)), ~\(Format.duration(t.seconds)) on one machine, "
        out += "peak memory \(Format.bytes(t.memoryBytes)), disk \(Format.bytes(t.diskBytes))\n"
        let done = stages.filter { recorded[$0.hash]?.seconds != nil }
        if !done.isEmpty {
            let predicted = done.reduce(0) { $0 + $1.cost.seconds }, took = done.reduce(0) { $0 + (recorded[$1.hash]?.seconds ?? 0) }
            out += "ran: \(done.count) of \(stages.count) stages are in the store: they took \(Format.duration(took)) where the plan says \(Format.duration(predicted))"
                + (took > 0 ? String(format: " (%.2fx)", predicted / took) : "") + "\n"
        }
        return out
    }

    /// A stage's recorded time and peak memory, each beside the prediction's ratio to it.
    static func recordedCells(_ cost: StageCost, _ r: RecordedCost?) -> [String] {
        func ratio(_ predicted: Double, _ actual: Double?) -> String {
            guard let actual, actual > 0, predicted > 0 else { return "-" }
            return String(format: "%.2f", predicted / actual)
        }
        return [r?.seconds.map(Format.duration) ?? "-", ratio(cost.seconds, r?.seconds),
                r?.peakBytes.map(Format.bytes) ?? "-", ratio(Double(cost.memoryBytes), r?.peakBytes.map(Double.init))]
    }

    /// With `sweep.seeds`: the seeds, and how many training runs each spec stage takes
    /// (the same stage under another seed of another role is one run, shared).
    var replicationSummary: String? {
        let seeds = Replication.axes.sorted().reversed().compactMap { axis -> String? in
            var values: [String] = []
            for v in variants { for c in v.choices where c.axis == axis && !values.contains(c.value) { values.append(c.value) } }
            return values.isEmpty ? nil : "\(axis == Replication.teacherAxis ? "teacher" : "student") seeds \(values.joined(separator: ", "))"
        }
        guard !seeds.isEmpty else { return nil }
        var order: [String] = [], runs: [String: Set<String>] = [:]
        for v in variants {
            for s in v.stages {
                if runs[s.name] == nil { order.append(s.name) }
                runs[s.name, default: []].insert(s.train)
            }
        }
        return "replication: " + seeds.joined(separator: " x ") + "; training runs: " + order.map { "\($0) \(runs[$0]?.count ?? 0)" }.joined(separator: ", ")
    }

    /// Graphviz DOT: stages coloured by kind, edges from inputs.
    public func dot() -> String {
        var out = "digraph plan {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
        for s in stages {
            let label = "\(s.kind.rawValue) \(s.shortHash)\\n\(s.label.replacingOccurrences(of: "\"", with: "'"))"
            out += "  \"\(s.shortHash)\" [label=\"\(label)\", fillcolor=\"\(s.kind.hexColor)\"];\n"
        }
        for s in stages {
            for (role, input) in s.inputs.sorted(by: { $0.key < $1.key }) {
                let edgeLabel = role.hasPrefix("evaluate.") ? "" : " [label=\"\(role)\", fontsize=8]"
                out += "  \"\(input.prefix(12))\" -> \"\(s.shortHash)\"\(edgeLabel);\n"
            }
        }
        return out + "}\n"
    }
}

extension String {
    func replacingTrailingSpaces() -> String {
        var s = self
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }
}

extension StageKind {
    /// The kind's colour (red, green, blue), in the DOT export and the drawing alike.
    public var rgb: (UInt8, UInt8, UInt8) {
        switch self {
        case .prepare: return (217, 217, 217)
        case .pretrained: return (198, 219, 239)
        case .train: return (158, 202, 225)
        case .teacherOutputs: return (253, 208, 162)
        case .distill: return (161, 217, 155)
        case .evaluate: return (218, 218, 235)
        case .report: return (252, 187, 161)
        }
    }

    /// The colour as `#rrggbb`.
    public var hexColor: String {
        let (r, g, b) = rgb
        return "#" + [r, g, b].map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }
}

private extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
