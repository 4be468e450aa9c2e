import StageConfig
/// The plan as people read it: a text table of the DAG, or Graphviz DOT.
extension ExecutionPlan {
    /// One line per unique stage in execution order, with what it needs, how many
    /// variants share it and its cost; then the sweep's bill.
    public func text(title: String) -> String {
        var out = "plan for \(title): \(variants.count) variant\(variants.count == 1 ? "" : "s"), "
        out += "\(plannedInstances) stage instances, \(stages.count) unique stages\n"
        out += "throughput: \(throughput.source)\n\n"
        let header = ["stage", "kind", "needs", "shared", "FLOPs", "time", "memory", "disk"]
        var rows: [[String]] = []
        var labels: [[String]] = []
        for s in stages {
            let needs = s.inputs.sorted { $0.key < $1.key }.map { String($0.value.prefix(12)) }
            let needsText = needs.count <= 2 ? needs.joined(separator: " ") : "\(needs.count) stages"
            rows.append([s.shortHash, s.kind.rawValue, needsText.isEmpty ? "-" : needsText, "\(s.variants.count)/\(variants.count)",
                         s.cost.flops > 0 ? Format.flops(s.cost.flops) : "-", Format.duration(s.cost.seconds),
                         s.cost.memoryBytes > 0 ? Format.bytes(s.cost.memoryBytes) : "-", Format.bytes(s.cost.diskBytes)])
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
        return out
    }

    /// Graphviz DOT: stages coloured by kind, edges from inputs.
    public func dot() -> String {
        let colours: [StageKind: String] = [.prepare: "#d9d9d9", .train: "#9ecae1", .teacherOutputs: "#fdd0a2",
                                            .distill: "#a1d99b", .evaluate: "#dadaeb", .report: "#fcbba1"]
        var out = "digraph plan {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
        for s in stages {
            let label = "\(s.kind.rawValue) \(s.shortHash)\\n\(s.label.replacingOccurrences(of: "\"", with: "'"))"
            out += "  \"\(s.shortHash)\" [label=\"\(label)\", fillcolor=\"\(colours[s.kind] ?? "white")\"];\n"
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
