import Diagnostics

/// Rules over names that refer to other parts of the spec.
enum ReferenceChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [stageReferences, subsetNesting, stageCycles, distillTerms]

    static func unknown(_ id: DiagnosticID, _ what: String, _ ref: Ref, _ candidates: [String], path: String,
                        plural: String? = nil, extra: [DiagnosticNote] = []) -> Diagnostic {
        var fixIts: [FixIt] = []
        if let guess = Suggestions.closest(to: ref.name, in: candidates) {
            fixIts.append(FixIt("did you mean '\(guess)'?", range: ref.range, replacement: guess))
        }
        let many = plural ?? what + "s"
        let listing = candidates.isEmpty ? "no \(many) are defined" : "\(many): \(candidates.joined(separator: ", "))"
        return Diagnostic(id, "unknown \(what) '\(ref.name)'", at: ref.range, path: path,
                          notes: extra + [DiagnosticNote(listing)], fixIts: fixIts)
    }

    /// stage -> model, stage -> subset, distill teacher -> stage, init -> stage.
    static func stageReferences(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let modelNames = spec.models.map(\.name), subsetNames = spec.data.subsets.map(\.name)
        let stageNames = spec.stageNames
        for p in spec.pretrained where spec.model(p.model.name) == nil && !modelDefinedButInvalid(spec, p.model.name) {
            out.append(unknown(SpecDiagnostics.unknownModel, "model", p.model, modelNames, path: "stages.\(p.name).model"))
        }
        for stage in spec.stages {
            let base = "stages.\(stage.name)"
            if spec.model(stage.model.name) == nil, !modelDefinedButInvalid(spec, stage.model.name) {
                out.append(unknown(SpecDiagnostics.unknownModel, "model", stage.model, modelNames, path: "\(base).model"))
            }
            if spec.data.subset(stage.data.name) == nil, spec.data.value["subsets"]?[stage.data.name] == nil {
                out.append(unknown(SpecDiagnostics.unknownSubset, "subset", stage.data, subsetNames, path: "\(base).data"))
            }
            if let d = stage.distill, spec.producedModel(d.teacher.name) == nil, !stageDefinedButInvalid(spec, d.teacher.name) {
                out.append(unknown(SpecDiagnostics.unknownStage, "stage", d.teacher, stageNames.filter { $0 != stage.name },
                                   path: "\(base).distill.teacher"))
            }
            if case .stage(let r) = stage.initFrom, spec.producedModel(r.name) == nil, !stageDefinedButInvalid(spec, r.name) {
                out.append(unknown(SpecDiagnostics.unknownStage, "stage", r, stageNames.filter { $0 != stage.name },
                                   path: "\(base).init.stage"))
            }
        }
        return out
    }

    /// A name that exists in the document but whose definition had errors of its own.
    static func modelDefinedButInvalid(_ spec: Spec, _ name: String) -> Bool { spec.document["models"]?[name] != nil }
    static func stageDefinedButInvalid(_ spec: Spec, _ name: String) -> Bool { spec.document["stages"]?[name] != nil }

    /// subset `of` names a subset, and nesting has no cycle.
    static func subsetNesting(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let names = spec.data.subsets.map(\.name)
        for subset in spec.data.subsets {
            guard let parent = subset.parent else { continue }
            guard let p = spec.data.subset(parent.name) else {
                if spec.data.value["subsets"]?[parent.name] != nil { continue }
                out.append(unknown(SpecDiagnostics.unknownSubset, "subset", parent, names.filter { $0 != subset.name },
                                   path: "data.subsets.\(subset.name).of"))
                continue
            }
            if p.part != subset.part {
                out.append(Diagnostic(SpecDiagnostics.subsetOutsideTeacher,
                    "subset '\(subset.name)' is drawn from part '\(subset.part.rawValue)' but nests inside '\(p.name)', drawn from '\(p.part.rawValue)'",
                    at: subset.source.range(of: "part"), path: "data.subsets.\(subset.name).part"))
            }
            var seen: Set<String> = [subset.name]
            var cursor = p
            while let next = cursor.parent {
                if seen.contains(next.name) || next.name == subset.name {
                    out.append(Diagnostic(SpecDiagnostics.subsetCycle,
                        "subset '\(subset.name)' is nested inside itself through 'of'", at: parent.range,
                        path: "data.subsets.\(subset.name).of"))
                    break
                }
                seen.insert(cursor.name)
                guard let n = spec.data.subset(next.name) else { break }
                cursor = n
            }
        }
        return out
    }

    /// Teacher and init edges between stages must not form a cycle.
    static func stageCycles(_ spec: Spec) -> [Diagnostic] {
        func edges(_ s: StageSpec) -> [Ref] {
            var e: [Ref] = []
            if let d = s.distill { e.append(d.teacher) }
            if case .stage(let r) = s.initFrom { e.append(r) }
            return e
        }
        var out: [Diagnostic] = []
        var reported = Set<String>()
        for start in spec.stages {
            // Depth-first walk; a path that returns to `start` is a cycle.
            var stack: [(String, [String])] = [(start.name, [start.name])]
            var visited = Set<String>()
            while let (name, trail) = stack.popLast() {
                guard let stage = spec.stage(name) else { continue }
                for e in edges(stage) {
                    if e.name == start.name {
                        let cycle = trail + [start.name]
                        if reported.insert(Set(cycle).sorted().joined(separator: ",")).inserted {
                            out.append(Diagnostic(SpecDiagnostics.stageCycle,
                                "stage '\(start.name)' depends on itself: \(cycle.joined(separator: " -> "))",
                                at: edges(start).first?.range ?? start.nameRange, path: "stages.\(start.name)",
                                notes: [DiagnosticNote("a teacher or init stage must finish before the stage that reads it")]))
                        }
                    } else if visited.insert(e.name).inserted {
                        stack.append((e.name, trail + [e.name]))
                    }
                }
            }
        }
        return out
    }

    /// `use:` names terms that exist.
    static func distillTerms(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for stage in spec.stages {
            guard let d = stage.distill, let use = d.use else { continue }
            var terms = d.taps.map(\.name)
            if d.logits != nil { terms.append("logits") }
            if d.supcon != nil { terms.append("supcon") }
            for (i, r) in use.enumerated() where !terms.contains(r.name) && d.source["taps"]?[r.name] == nil {
                out.append(unknown(SpecDiagnostics.unknownTerm, "distillation term", r, terms,
                                   path: "stages.\(stage.name).distill.use[\(i)]"))
            }
        }
        return out
    }
}
