import Diagnostics
import SpecSyntax
import StageConfig

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
/// variants, exclusions, then every variant once per seed of `seeds`, with every
/// path checked before anything is written.
struct SweepExpansion {
    var diagnostics: [Diagnostic] = []
    /// Runs of each variant that `seeds` asks for (teacher seeds x student seeds).
    private var replicas = 1

    struct Axis {
        var name: String
        var nameRange: SourceRange
        var values: [(name: String, overrides: [SweepVariant.Override])]
    }

    mutating func expand(root: SyntaxNode, sweepNode: SyntaxNode, sweep: Value) -> [SweepVariant] {
        let base = SyntaxNode(.mapping((root.entries ?? []).filter { $0.key != "sweep" }), range: root.range)
        let seeds = sweep["seeds"]?.isComplete == true ? seedAxes(base: base, sweepNode: sweepNode) : []
        replicas = seeds.reduce(1) { $0 * max(1, $1.values.count) }
        var axes: [Axis] = []
        for entry in sweepNode["axes"]?.entries ?? [] {
            if Replication.axes.contains(entry.key) {
                diagnostics.append(Diagnostic(SpecDiagnostics.reservedAxis,
                    "axis name '\(entry.key)' is reserved for the runs that `sweep.seeds` makes", at: entry.keyRange, path: "sweep.axes",
                    notes: [DiagnosticNote("a report treats seeds as training randomness, not as a setting to compare")],
                    fixIts: [FixIt(entry.key == Replication.teacherAxis ? "write 'seeds: {teachers: [1, 2, 3]}' under 'sweep'" : "write 'seeds: {students: [1, 2, 3, 4, 5]}' under 'sweep'")]))
                continue
            }
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
        guard !seeds.isEmpty, !diagnostics.hasErrors else { return variants }
        if variants.count * replicas > cap(sweep) {
            tooLarge(variants.count * replicas, sweepNode, sweep)
            return []
        }
        return replicate(variants.isEmpty ? [SweepVariant(name: "", choices: [], overrides: [])] : variants, seeds)
    }

    /// The largest expansion allowed without (or by) `max_variants`.
    private func cap(_ sweep: Value) -> Int { sweep["max_variants"]?.int ?? SpecSchema.defaultVariantCap }

    private mutating func tooLarge(_ count: Int, _ sweepNode: SyntaxNode, _ sweep: Value) {
        let explicit = sweep["max_variants"] != nil
        let seeds = replicas > 1 ? " (\(count / replicas) times \(replicas) seed combinations)" : ""
        diagnostics.append(Diagnostic(SpecDiagnostics.tooManyVariants,
            explicit ? "the sweep expands to \(count) variants\(seeds), more than max_variants \(cap(sweep))"
                     : "the sweep expands to \(count) variants\(seeds), more than the default cap of \(cap(sweep))",
            at: explicit ? sweep.range(of: "max_variants") : sweepNode.range, path: "sweep",
            fixIts: explicit ? [] : [FixIt("add 'max_variants: \(count)' to confirm a sweep this large")]))
    }

    /// The axes of `seeds`: teacher seeds, then student seeds, each value writing the
    /// seed into every stage of its role. Teachers are the trained stages some stage
    /// distils from, in the spec or in any axis or variant; students are the others.
    private mutating func seedAxes(base: SyntaxNode, sweepNode: SyntaxNode) -> [Axis] {
        guard let node = sweepNode["seeds"] else { return [] }
        let stages = base["stages"]?.entries ?? []
        let trained = stages.filter { ($0.value["kind"]?.scalar?.text ?? "train") == "train" }.map(\.key)
        var teachers = Set(stages.compactMap { $0.value["distill"]?["teacher"]?.scalar?.text })
        func isTeacherPath(_ text: String) -> Bool { text.hasSuffix(".distill.teacher") }
        for axis in sweepNode["axes"]?.entries ?? [] {
            let values = axis.value["values"]?.entries ?? []
            if let path = axis.value["path"]?.scalar?.text {
                if isTeacherPath(path) { teachers.formUnion(values.compactMap { $0.value.scalar?.text }) }
            } else {
                for v in values { teachers.formUnion((v.value.entries ?? []).filter { isTeacherPath($0.key) }.compactMap { $0.value.scalar?.text }) }
            }
        }
        for v in sweepNode["variants"]?.entries ?? [] {
            teachers.formUnion((v.value.entries ?? []).filter { isTeacherPath($0.key) }.compactMap { $0.value.scalar?.text })
        }
        var axes: [Axis] = []
        for (role, name, seeded) in [("teachers", Replication.teacherAxis, trained.filter { teachers.contains($0) }),
                                     ("students", Replication.studentAxis, trained.filter { !teachers.contains($0) })] {
            guard let entry = node.entries?.first(where: { $0.key == role }), let items = entry.value.items else { continue }
            guard !seeded.isEmpty else {
                diagnostics.append(Diagnostic(SpecDiagnostics.nothingToSeed,
                    role == "teachers" ? "no trained stage is distilled from, so 'seeds.teachers' has no teacher to seed"
                                       : "every trained stage is a teacher, so 'seeds.students' has no student to seed",
                    at: entry.keyRange, path: "sweep.seeds.\(role)",
                    notes: [DiagnosticNote(role == "teachers" ? "a teacher is a stage named by some stage's 'distill.teacher'; a pretrained one has no seed"
                                                              : "students are the trained stages no stage distils from")]))
                continue
            }
            var seen: [String: SourceRange] = [:], values: [(name: String, overrides: [SweepVariant.Override])] = []
            for item in items {
                guard let text = item.scalar?.text else { continue }
                if let first = seen[text] {
                    diagnostics.append(Diagnostic(SpecDiagnostics.seedTwice, "seed \(text) is listed twice in 'seeds.\(role)'; each seed is one run",
                                                  at: item.range, path: "sweep.seeds.\(role)", notes: [DiagnosticNote("first listed here", at: first)]))
                    continue
                }
                seen[text] = item.range
                values.append((text, seeded.compactMap { stage in SpecPath("stages.\(stage).seed").map { SweepVariant.Override(path: $0, value: item) } }))
            }
            axes.append(Axis(name: name, nameRange: entry.keyRange, values: values))
        }
        return axes
    }

    /// Every variant once per combination of the seed axes (students vary fastest).
    private func replicate(_ variants: [SweepVariant], _ seeds: [Axis]) -> [SweepVariant] {
        var out = variants
        for axis in seeds {
            out = out.flatMap { v in
                axis.values.map { value in
                    let part = "\(axis.name)=\(value.name)"
                    return SweepVariant(name: v.name.isEmpty ? part : v.name + "," + part, choices: v.choices + [(axis.name, value.name)],
                                        overrides: v.overrides + value.overrides)
                }
            }
        }
        return out
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
        let count = factors.reduce(1) { $0 * max(1, $1.count) } * replicas
        if count > cap(sweep) {
            tooLarge(count, sweepNode, sweep)
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
