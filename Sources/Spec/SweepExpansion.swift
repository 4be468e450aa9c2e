import Diagnostics
import SpecSyntax

/// One point of a sweep: a name and the values it writes into the spec.
public struct SweepVariant: Sendable {
    public struct Override: Sendable {
        public var path: SpecPath
        public var value: SyntaxNode
    }

    /// `teacher=t1,student=s1,scales=ee+pmd`, or an explicit variant's name; safe as a folder name.
    public var name: String
    /// The axis value names that made it (axis name, value name), empty for explicit variants.
    public var choices: [(axis: String, value: String)]
    public var overrides: [Override]
}

/// Expands `sweep:` into variants: the grid product, zipped groups, explicit
/// variants, exclusions, with every path checked before anything is written.
struct SweepExpansion {
    var diagnostics: [Diagnostic] = []

    struct Axis {
        var name: String
        var nameRange: SourceRange
        var values: [(name: String, overrides: [SweepVariant.Override])]
    }

    mutating func expand(root: SyntaxNode, sweepNode: SyntaxNode, sweep: Value) -> [SweepVariant] {
        let base = SyntaxNode(.mapping((root.entries ?? []).filter { $0.key != "sweep" }), range: root.range)
        var axes: [Axis] = []
        for entry in sweepNode["axes"]?.entries ?? [] {
            guard let axisValue = sweep["axes"]?[entry.key], axisValue.isComplete else { continue }
            let path = entry.value["path"]
            var values: [(String, [SweepVariant.Override])] = []
            for v in entry.value["values"]?.entries ?? [] {
                if let p = path, let text = p.scalar?.text {
                    if let o = override(text, p.range, v.value, base) { values.append((v.key, [o])) } else { values.append((v.key, [])) }
                } else {
                    values.append((v.key, overrides(from: v.value, base, what: "value '\(v.key)' of axis '\(entry.key)'")))
                }
            }
            axes.append(Axis(name: entry.key, nameRange: entry.keyRange, values: values))
        }

        var variants: [SweepVariant] = []
        if !axes.isEmpty { variants += combine(axes, sweepNode, sweep) }
        for entry in sweepNode["variants"]?.entries ?? [] {
            variants.append(SweepVariant(name: entry.key, choices: [],
                                         overrides: overrides(from: entry.value, base, what: "variant '\(entry.key)'")))
        }
        return variants
    }

    /// Parses and checks one `path: value` override.
    private mutating func override(_ text: String, _ range: SourceRange, _ value: SyntaxNode, _ base: SyntaxNode) -> SweepVariant.Override? {
        guard let path = SpecPath(text) else {
            diagnostics.append(Diagnostic(SpecDiagnostics.badPath, "'\(text)' is not a spec path like 'stages.kd.distill.teacher'",
                                          at: range, path: "sweep"))
            return nil
        }
        if let (message, guess) = path.problem(in: base) {
            diagnostics.append(Diagnostic(SpecDiagnostics.badPath, "sweep path '\(text)' does not exist: \(message)", at: range, path: "sweep",
                                          fixIts: guess.map { [FixIt("did you mean '\($0)'?")] } ?? []))
            return nil
        }
        return SweepVariant.Override(path: path, value: value)
    }

    private mutating func overrides(from node: SyntaxNode, _ base: SyntaxNode, what: String) -> [SweepVariant.Override] {
        guard let entries = node.entries else {
            diagnostics.append(Diagnostic(SpecDiagnostics.badAxisValue,
                "\(what) must map spec paths to values, found \(node.kindDescription)", at: node.range, path: "sweep",
                notes: [DiagnosticNote("give the axis a 'path:' to write plain values to one place")]))
            return []
        }
        return entries.compactMap { override($0.key, $0.keyRange, $0.value, base) }
    }

    private mutating func combine(_ axes: [Axis], _ sweepNode: SyntaxNode, _ sweep: Value) -> [SweepVariant] {
        let names = axes.map(\.name)
        func resolve(_ key: String) -> [(String, SourceRange?)] {
            (sweep[key]?.list ?? []).compactMap { v in v.string.map { ($0, v.range) } }
        }
        var ok = true
        let zipped = resolve("zip"), gridded = sweep["grid"] == nil ? names.filter { n in !zipped.contains { $0.0 == n } }.map { ($0, SourceRange?.none) } : resolve("grid")
        var used = Set<String>()
        for (name, range) in zipped + gridded {
            if !names.contains(name) {
                ok = false
                diagnostics.append(ReferenceChecks.unknown(SpecDiagnostics.unknownAxis, "axis", Ref(name: name, range: range), names, path: "sweep", plural: "axes"))
            } else if !used.insert(name).inserted {
                ok = false
                diagnostics.append(Diagnostic(SpecDiagnostics.axisTwice, "axis '\(name)' is used twice in grid and zip", at: range, path: "sweep"))
            }
        }
        for axis in axes where !used.contains(axis.name) {
            diagnostics.append(Diagnostic(SpecDiagnostics.unusedAxis, "axis '\(axis.name)' is in neither 'grid' nor 'zip'; it is not swept",
                                          at: axis.nameRange, path: "sweep.axes.\(axis.name)"))
        }
        for axis in axes where axis.values.isEmpty {
            ok = false
            diagnostics.append(Diagnostic(SpecDiagnostics.listLength, "axis '\(axis.name)' has no values: a sweep axis needs at least one",
                                          at: sweepNode["axes"]?[axis.name]?["values"]?.range ?? axis.nameRange, path: "sweep.axes.\(axis.name).values"))
        }
        guard ok else { return [] }
        let byName = Dictionary(axes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let position = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })

        // Factors of the product: each grid axis alone, the zip group together.
        var factors: [[[(Axis, Int)]]] = gridded.compactMap { byName[$0.0] }.map { a in a.values.indices.map { [(a, $0)] } }
        if !zipped.isEmpty {
            let group = zipped.compactMap { byName[$0.0] }
            let lengths = Set(group.map(\.values.count))
            if lengths.count > 1 {
                diagnostics.append(Diagnostic(SpecDiagnostics.zipLengths,
                    "zipped axes have different lengths: \(group.map { "'\($0.name)' \($0.values.count)" }.joined(separator: ", "))",
                    at: sweep["zip"]?.range, path: "sweep.zip"))
                return []
            }
            factors.insert((0..<(lengths.first ?? 0)).map { i in group.map { ($0, i) } }, at: 0)
        }
        let count = factors.reduce(1) { $0 * max(1, $1.count) }
        let cap = sweep["max_variants"]?.int ?? SpecSchema.defaultVariantCap
        if count > cap {
            let explicit = sweep["max_variants"] != nil
            diagnostics.append(Diagnostic(SpecDiagnostics.tooManyVariants,
                explicit ? "the sweep expands to \(count) variants, more than max_variants \(cap)"
                         : "the sweep expands to \(count) variants, more than the default cap of \(cap)",
                at: explicit ? sweep.range(of: "max_variants") : sweepNode.range, path: "sweep",
                fixIts: explicit ? [] : [FixIt("add 'max_variants: \(count)' to confirm a sweep this large")]))
            return []
        }
        let rules = exclusions(axes, sweep)
        var out: [SweepVariant] = []
        var index = [Int](repeating: 0, count: factors.count)
        while true {
            var picks: [(Axis, Int)] = []
            for (f, i) in zip(factors, index) { picks += f[i] }
            let order = picks.sorted { a, b in (position[a.0.name] ?? 0) < (position[b.0.name] ?? 0) }
            let choices = order.map { (axis: $0.0.name, value: $0.0.values[$0.1].name) }
            if !rules.contains(where: { rule in rule.allSatisfy { r in choices.contains { $0.axis == r.0 && $0.value == r.1 } } }) {
                out.append(SweepVariant(name: choices.map { "\($0.axis)=\($0.value)" }.joined(separator: ","), choices: choices,
                                        overrides: order.flatMap { $0.0.values[$0.1].overrides }))
            }
            // Odometer increment, last factor fastest.
            var k = factors.count - 1
            while k >= 0 {
                index[k] += 1
                if index[k] < factors[k].count { break }
                index[k] = 0
                k -= 1
            }
            if k < 0 { break }
        }
        return out
    }

    private mutating func exclusions(_ axes: [Axis], _ sweep: Value) -> [[(String, String)]] {
        (sweep["exclude"]?.list ?? []).enumerated().map { (i, rule) in
            rule.members.compactMap { m -> (String, String)? in
                guard let valueName = m.value.string else { return nil }
                guard let a = axes.first(where: { $0.name == m.key }) else {
                    diagnostics.append(ReferenceChecks.unknown(SpecDiagnostics.badExclude, "axis", Ref(name: m.key, range: m.keyRange), axes.map(\.name),
                                                               path: "sweep.exclude[\(i)]", plural: "axes"))
                    return nil
                }
                if !a.values.contains(where: { $0.name == valueName }) {
                    diagnostics.append(ReferenceChecks.unknown(SpecDiagnostics.badExclude, "value of axis '\(a.name)'",
                                                               Ref(name: valueName, range: m.value.range), a.values.map(\.name),
                                                               path: "sweep.exclude[\(i)].\(m.key)", plural: "values of axis '\(a.name)'"))
                }
                return (m.key, valueName)
            }
        }
    }
}
