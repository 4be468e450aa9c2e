import Architecture
import Foundation
import Diagnostics
import StageConfig
import Storage

/// Builds the typed IR from a validated document. Parts that validation left
/// incomplete are skipped: they already carry a diagnostic.
///
/// Every setting is read by its StageConfig type from the document in canonical
/// form (`JSON(value, completing:)`): the defaults the validator filled in from
/// the schema, absent optional keys as `null`. A complete part that its type
/// cannot read means the schema and the type disagree; that is reported as
/// E0001 rather than dropped.
struct SpecBuilder {
    private(set) var diagnostics: [Diagnostic] = []
    /// Whether validation found nothing wrong: only then is a part its type cannot
    /// read an inconsistency (after a validation error a part may lack a key).
    let validated: Bool

    init(validated: Bool) { self.validated = validated }

    mutating func build(_ doc: Value) -> Spec? {
        let full = JSON(doc, completing: .object(SpecSchema.root))
        guard let dataValue = doc["data"], dataValue.isComplete, let data = buildData(dataValue, full["data"] ?? .null) else { return nil }
        var models: [ModelSpec] = []
        for m in doc["models"]?.members ?? [] where m.value.isComplete {
            if let model = buildModel(m.key, m.value, keyRange: m.keyRange, full: full["models"]?[m.key], channels: data.channels) { models.append(model) }
        }
        var stages: [StageSpec] = []
        var pretrained: [PretrainedStageSpec] = []
        for m in doc["stages"]?.members ?? [] {
            if m.value.text("kind") == "pretrained" {
                if let p = buildPretrained(m.key, m.keyRange, m.value, full["stages"]?[m.key] ?? .null) { pretrained.append(p) }
            } else if let s = buildStage(m.key, m.keyRange, m.value, full["stages"]?[m.key] ?? .null) {
                stages.append(s)
            }
        }
        let e = doc["evaluate"] ?? Value(.object([]))
        guard let evaluate = decode(EvaluateConfiguration.self, full["evaluate"] ?? .null, "evaluate", at: e),
              let report = decode(ComparisonSettings.self, full["report"] ?? .null, "report", at: doc["report"] ?? Value(.object([]))) else { return nil }
        var spec = Spec(name: doc.text("name"), data: data, models: models, stages: stages, pretrained: pretrained,
                        evaluate: EvaluateSpec(config: evaluate, source: e), report: report, document: doc)
        if let s = doc["execution"]?["slurm"] {
            if s.isComplete { spec.slurm = decode(SlurmSettings.self, full["execution"]?["slurm"] ?? .null, "execution.slurm", at: s) }
        } else {
            // Without `execution.slurm`, the schema's defaults (the only place they are written).
            spec.slurm = decode(SlurmSettings.self, SpecSchema.slurm.canonicalDefaults, "execution.slurm", at: doc)
        }
        return spec
    }

    /// A sweep variant's IR from its base's: only the units its overrides touched (a
    /// model, a stage, `evaluate`, `report`) are built again, in place;
    /// the rest is the base's, which the same document would build identically.
    /// `data` (whose channels complete the models), `execution` and anything a
    /// unit's rebuild cannot stand for (a model or stage the base lacks, a stage
    /// that changes kind) build the whole document, as `build` does.
    mutating func rebuild(_ base: Spec, document doc: Value, touched: Set<DocumentUnit>, reusing reuse: [DocumentUnit: StageReuse] = [:]) -> Spec? {
        let local: Set<String> = ["models", "stages", "evaluate", "report"]
        guard touched.allSatisfy({ local.contains($0.section) && (DocumentUnit.keyed.contains($0.section) == ($0.entry != nil)) }) else {
            return build(doc)
        }
        var spec = base
        spec.document = doc
        for u in touched.sorted() {
            let value = doc.unit(u)
            switch (u.section, u.entry) {
            case ("models", let name?):
                guard let i = spec.models.firstIndex(where: { $0.name == name }) else { return build(doc) }
                if let m = value, m.isComplete, let model = buildModel(name, m, keyRange: base.models[i].nameRange, channels: spec.data.channels) {
                    spec.models[i] = model
                } else {
                    spec.models.remove(at: i)
                }
            case ("stages", let name?):
                guard let v = value else { return build(doc) }
                let pretrained = v.text("kind") == "pretrained"
                let r = reuse[u]
                let j = JSON(v, completing: SpecSchema.stageEntryType, reusing: r?.json, below: r?.trie)
                if pretrained, let i = spec.pretrained.firstIndex(where: { $0.name == name }) {
                    if let p = buildPretrained(name, spec.pretrained[i].nameRange, v, j) { spec.pretrained[i] = p } else { spec.pretrained.remove(at: i) }
                } else if !pretrained, let i = spec.stages.firstIndex(where: { $0.name == name }) {
                    let same = r.map { (trie: $0.trie, stage: spec.stages[i]) }
                    if let s = buildStage(name, spec.stages[i].nameRange, v, j, reusing: same) { spec.stages[i] = s } else { spec.stages.remove(at: i) }
                } else {
                    return build(doc)
                }
            case ("evaluate", nil):
                let e = value ?? Value(.object([]))
                guard let evaluate = decode(EvaluateConfiguration.self, JSON(e, completing: SpecSchema.fieldType("evaluate")), "evaluate", at: e) else { return nil }
                spec.evaluate = EvaluateSpec(config: evaluate, source: e)
            case ("report", nil):
                let r = value ?? Value(.object([]))
                guard let report = decode(ComparisonSettings.self, JSON(r, completing: SpecSchema.fieldType("report")), "report", at: r) else { return nil }
                spec.report = report
            default:
                return build(doc)
            }
        }
        return spec
    }

    /// Reads `json` as `T`; a failure is reported at `value` (E0001).
    private mutating func decode<T: ConfigCodable>(_ type: T.Type, _ json: JSON, _ path: String, at value: Value) -> T? {
        do {
            // A document without errors was checked against the declarations the readers check.
            return try ConfigReader.$checkedBySpecChecker.withValue(validated) { try T(json: json, at: path) }
        } catch {
            guard validated else { return nil }
            diagnostics.append(Diagnostic(SpecDiagnostics.internalInconsistency,
                "the checked spec does not fit the runtime's configuration: \(error)", at: value.range, path: path,
                notes: [DiagnosticNote("this is a bug in Distillery, not in the spec; please report it with the spec")]))
            return nil
        }
    }

    /// One model; `full` is its canonical JSON when the caller has the whole document's.
    mutating func buildModel(_ name: String, _ v: Value, keyRange: SourceRange?, full: JSON? = nil, channels: Int) -> ModelSpec? {
        guard case .object(var o) = full ?? JSON(v, completing: SpecSchema.modelEntryType) else { return nil }
        if o["in_channels"] == .null { o["in_channels"] = .int(channels) }
        guard checkVolumeLevels(name, v, o) else { return nil }
        guard let arch = decode(ModelArchitecture.self, .object(o), "models.\(name)", at: v) else { return nil }
        return ModelSpec(name: name, architecture: arch, source: v, nameRange: keyRange)
    }

    /// A U-Net's 3D fields, located: `kernels` and `pools` only with `dims: 3`, one kernel per
    /// level and the bottleneck, one pooling per level, odd kernel sides, transposed up-sampling.
    mutating func checkVolumeLevels(_ name: String, _ v: Value, _ o: [String: JSON]) -> Bool {
        let path = "models.\(name)"
        let written = ["kernels", "pools"].filter { v[$0] != nil }
        guard o["dims"]?.int == 3 else {
            for key in written {
                diagnostics.append(Diagnostic(SpecDiagnostics.unknownKey, "'\(key)' applies to 3D U-Nets; model '\(name)' is 2D",
                                              at: v.range(of: key), path: "\(path).\(key)", fixIts: [FixIt("add 'dims: 3', or remove '\(key)'")]))
            }
            return written.isEmpty
        }
        let depth = o["widths"]?.array?.count ?? 0
        var ok = true
        for (key, count, what) in [("kernels", depth + 1, "one per encoder level and one for the bottleneck"), ("pools", depth, "one after each encoder level")] {
            guard let items = v[key]?.list else { continue }
            if items.count != count {
                diagnostics.append(Diagnostic(SpecDiagnostics.listLength,
                    "model '\(name)' has \(depth) level\(depth == 1 ? "" : "s") (widths) and needs \(count) \(key), found \(items.count)",
                    at: v[key]?.range, path: "\(path).\(key)", notes: [DiagnosticNote("\(key): \(what)")]))
                ok = false
            }
        }
        for (i, kernel) in (v["kernels"]?.list ?? []).enumerated() {
            for (axis, side) in kernel.list.enumerated() where (side.int ?? 1) % 2 == 0 {
                diagnostics.append(Diagnostic(SpecDiagnostics.outOfRange, "kernel side \(side.int ?? 0) is even; a convolution keeps its input's size only with odd sides",
                                              at: side.range, path: "\(path).kernels[\(i)][\(axis)]"))
                ok = false
            }
        }
        if o["up"]?.string == UpsamplingKind.bilinear.rawValue {
            diagnostics.append(Diagnostic(SpecDiagnostics.unknownValue, "a 3D U-Net up-samples with 'transpose'; 'bilinear' is for slices",
                                          at: v["up"]?.range, path: "\(path).up",
                                          fixIts: [FixIt("write 'up: transpose'", range: v["up"]?.range, replacement: "transpose")]))
            ok = false
        }
        return ok
    }

    mutating func buildData(_ v: Value, _ j: JSON) -> DataSpec? {
        guard let srcValue = v["source"], let pre = v["preprocess"], let split = v["split"], srcValue.isComplete, pre.isComplete, split.isComplete
        else { return nil }
        var sourceJSON = j["source"] ?? .null
        if srcValue["phantom"] != nil, srcValue["analyze_orientation"] != nil, case .object(var o) = sourceJSON {
            diagnostics.append(Diagnostic(SpecDiagnostics.unknownKey, "'analyze_orientation' applies to 'msd' folders; the phantom is NIfTI",
                                          at: srcValue.range(of: "analyze_orientation"), path: "data.source.analyze_orientation"))
            o["analyze_orientation"] = .null
            sourceJSON = .object(o)
        }
        guard let source = decode(DataSource.self, sourceJSON, "data.source", at: srcValue),
              let preprocess = buildPreprocessing(pre, j["preprocess"] ?? .null),
              let splitSettings = decode(SplitSettings.self, j["split"] ?? .null, "data.split", at: split) else { return nil }
        var subsets: [SubsetSpec] = []
        for m in v["subsets"]?.members ?? [] where m.value.isComplete {
            guard case .object(var o)? = j["subsets"]?[m.key] else { continue }
            let parent = m.value.ref("of")
            o["of"] = nil
            guard let level = decode(SubsetLevel.self, .object(o), "data.subsets.\(m.key)", at: m.value) else { continue }
            subsets.append(SubsetSpec(name: m.key, level: level, parent: parent, source: m.value))
        }
        guard let classes = buildClasses(v["foreground"]) else { return nil }
        let background = j["background"]?.array?.compactMap(\.int) ?? []
        let overlap = Set(background).intersection(classes.classes.flatMap(\.values))
        if !overlap.isEmpty {
            diagnostics.append(Diagnostic(SpecDiagnostics.badClasses,
                "label value\(overlap.count == 1 ? "" : "s") \(overlap.sorted().map(String.init).joined(separator: ", ")) \(overlap.count == 1 ? "is" : "are") both background and a class",
                at: v["background"]?.range ?? v.range, path: "data.background"))
            return nil
        }
        var augment: AugmentationSettings?
        if let a = v["augment"], case .object(var o)? = j["augment"] {
            guard a.isComplete else { return nil }
            for key in ["flip", "rotate90", "rotate", "scale", "elastic", "brightness", "contrast", "gamma", "noise", "blur"] where o[key] == nil { o[key] = .null }
            for (key, value) in o {
                guard let range = value["range"]?.array?.compactMap(\.number), range.count == 2, range[0] > range[1] else { continue }
                diagnostics.append(Diagnostic(SpecDiagnostics.outOfRange,
                    "augment.\(key): the range [\(Value.plain(range[0])), \(Value.plain(range[1]))] runs backwards; write [low, high]",
                    at: a[key]?["range"]?.range, path: "data.augment.\(key).range"))
                return nil
            }
            guard let settings = decode(AugmentationSettings.self, .object(o), "data.augment", at: a) else { return nil }
            augment = settings
        }
        return DataSpec(source: source, classes: classes, background: background, preprocess: preprocess,
                        split: splitSettings, subsets: subsets, augment: augment, value: v)
    }

    /// `data.preprocess`, its spec forms made canonical: `normalize` as one normalisation
    /// per modality, `modalities` null when absent; the modality, normalisation and channel
    /// counts checked together.
    mutating func buildPreprocessing(_ v: Value, _ j: JSON) -> Preprocessing? {
        guard case .object(var o) = j else { return nil }
        func canonical(_ n: JSON) -> JSON {
            switch n {
            case .string(let name): return name == "zscore" ? Normalization.zscore(mask: .all).json : Normalization.window.json
            default:
                if let z = n["zscore"] { return .object(["kind": .string("zscore"), "mask": z["mask"] ?? .string("all")]) }
                let p = n["percentile"]?.array ?? []
                return .object(["kind": .string("percentile"), "low": p.first ?? .null, "high": p.last ?? .null])
            }
        }
        let modalities = o["modalities"]?.array?.count ?? 1
        var normalize: [JSON]
        if case .array(let items)? = o["normalize"] { normalize = items.map(canonical) } else { normalize = [canonical(o["normalize"] ?? .string("window"))] }
        // One normalisation written for several modalities applies to each.
        if normalize.count == 1, modalities > 1, v["normalize"]?.list.isEmpty != false { normalize = Array(repeating: normalize[0], count: modalities) }
        o["normalize"] = .array(normalize)
        o["modalities"] = o["modalities"] ?? .null
        for n in normalize where n["kind"] == .string("percentile") {
            if let lo = n["low"]?.number, let hi = n["high"]?.number, lo >= hi {
                diagnostics.append(Diagnostic(SpecDiagnostics.outOfRange, "the low percentile (\(Value.plain(lo))) must be below the high one (\(Value.plain(hi)))",
                                              at: v["normalize"]?.range, path: "data.preprocess.normalize"))
                return nil
            }
        }
        let names = v["modalities"]?.list.compactMap(\.string)
        let planes = names?.count ?? 1
        let channels = v["channels"]?.int ?? 1
        if let names, Set(names).count != names.count {
            diagnostics.append(Diagnostic(SpecDiagnostics.outOfRange, "a modality is listed twice in [\(names.joined(separator: ", "))]",
                                          at: v["modalities"]?.range, path: "data.preprocess.modalities"))
            return nil
        }
        if normalize.count != planes {
            diagnostics.append(Diagnostic(SpecDiagnostics.listLength,
                "\(normalize.count) normalisation\(normalize.count == 1 ? "" : "s") for \(planes) modalit\(planes == 1 ? "y" : "ies")",
                at: v["normalize"]?.range, path: "data.preprocess.normalize",
                notes: [DiagnosticNote("one normalisation applies to every modality; a list gives one per modality, in the order of 'modalities'")]))
            return nil
        }
        if channels != planes, !(planes == 1 && channels == 3) {
            let message = planes == 1 ? "channels must be 1 or 3 for one modality, found \(channels)" : "\(planes) modalities give \(planes) input channels, but channels is \(channels)"
            diagnostics.append(Diagnostic(SpecDiagnostics.outOfRange, message, at: v.range(of: "channels"), path: "data.preprocess.channels",
                                          notes: planes == 1 ? [DiagnosticNote("3 replicates the grey value (the study's RGB PNGs); more channels come from 'modalities'")] : [],
                                          fixIts: planes > 1 ? [FixIt("write 'channels: \(planes)'", range: v["channels"]?.range, replacement: String(planes))] : []))
            return nil
        }
        // Slices or patches: the fields of the other mode do not apply.
        let slicesOnly = ["size", "keep_empty"].filter { v[$0]?.range != nil }
        if v["patch"] != nil, !slicesOnly.isEmpty {
            for key in slicesOnly {
                diagnostics.append(Diagnostic(SpecDiagnostics.unknownKey, "'\(key)' applies to slices; with 'patch', 3D networks train on patches of volumes resampled to 'spacing'",
                                              at: v.range(of: key), path: "data.preprocess.\(key)", fixIts: [FixIt("remove '\(key)'")]))
            }
            return nil
        }
        if v["patch"] == nil, v["spacing"] != nil {
            diagnostics.append(Diagnostic(SpecDiagnostics.unknownKey, "'spacing' applies to volumes cut into patches; add 'patch' for 3D networks",
                                          at: v.range(of: "spacing"), path: "data.preprocess.spacing"))
            return nil
        }
        return decode(Preprocessing.self, .object(o), "data.preprocess", at: v)
    }

    /// `data.foreground`: a list of values (one merged class) or a mapping of named classes.
    mutating func buildClasses(_ v: Value?) -> LabelClasses? {
        guard let v, v.isComplete else { return nil }
        let classes: LabelClasses
        if case .object(let members) = v.kind {
            classes = .named(members.map { m in
                SegmentationClass(name: m.key, values: m.value.int.map { [$0] } ?? m.value.list.compactMap(\.int))
            })
        } else {
            classes = .merged(v.list.compactMap(\.int))
        }
        if let problem = classes.problem {
            // Classes merged from several files (`extends`): say where each one of a clash was written.
            var notes: [DiagnosticNote] = []
            if case .object(let members) = v.kind {
                var owner: [Int: Value.Member] = [:]
                for m in members {
                    for value in m.value.int.map({ [$0] }) ?? m.value.list.compactMap(\.int) {
                        if let first = owner[value], first.keyRange?.file.path != m.keyRange?.file.path || first.keyRange?.file.path != v.range?.file.path {
                            notes.append(DiagnosticNote("'\(first.key)' (value \(value)) is declared here", at: first.keyRange))
                            notes.append(DiagnosticNote("'\(m.key)' (value \(value)) is declared here", at: m.keyRange))
                        }
                        owner[value] = owner[value] ?? m
                    }
                }
            }
            diagnostics.append(Diagnostic(SpecDiagnostics.badClasses, problem, at: v.range, path: "data.foreground", notes: notes))
            return nil
        }
        return classes
    }

    /// A stage from its validated value `v` and canonical form `j`. With `base`, a sweep
    /// variant's stage: the parts no override reaches are the base stage's, which
    /// decoded without errors from the same values.
    mutating func buildStage(_ name: String, _ nameRange: SourceRange?, _ v: Value, _ j: JSON,
                             reusing base: (trie: OverrideTrie, stage: StageSpec)? = nil) -> StageSpec? {
        func same<T>(_ key: String, _ part: (StageSpec) -> T) -> T? {
            guard let base, !base.trie.reaches(key) else { return nil }
            return part(base.stage)
        }
        guard v.isComplete, let model = v.ref("model"), let data = v.ref("data"),
              let epochs = v["epochs"]?.int, let batch = v["batch"]?.int, let seed = v["seed"]?.int,
              let optValue = v["optimizer"],
              let optimizer = same("optimizer", \.optimizer) ?? decode(OptimizerSettings.self, j["optimizer"] ?? .null, "stages.\(name).optimizer", at: optValue),
              let schedule = same("schedule", \.schedule) ?? decode(LearningRateSchedule.self, j["schedule"] ?? .null, "stages.\(name).schedule", at: v["schedule"] ?? v),
              let select = same("select", \.select) ?? decode(CheckpointSelection.self, j["select"] ?? .null, "stages.\(name).select", at: v["select"] ?? v)
        else { return nil }
        var loss: [LossTermSpec] = []
        if let reused = same("loss", \.loss) {
            loss = reused
        } else {
            for (i, t) in (v["loss"]?.list ?? []).enumerated() where t.isComplete {
                guard let item = j["loss"]?.array?[safe: i],
                      let term = decode(SupervisedTerm.self, item, "stages.\(name).loss[\(i)]", at: t) else { continue }
                loss.append(LossTermSpec(term: term, source: t))
            }
        }
        var initFrom: InitSource?
        if let i = v["init"] {
            if let s = i.ref("stage") { initFrom = .stage(s) } else if let f = i.text("file") { initFrom = .file(f) }
        }
        let distill: DistillSpec?
        if let d = same("distill", \.distill) {
            distill = d
        } else {
            let inner = base.flatMap { b in b.trie.below("distill").flatMap { t in b.stage.distill.map { (trie: t, distill: $0) } } }
            distill = v["distill"].flatMap { buildDistill(name, $0, j["distill"] ?? .null, reusing: inner) }
        }
        return StageSpec(name: name, nameRange: nameRange, model: model, data: data, loss: loss, optimizer: optimizer, schedule: schedule,
                         epochs: epochs, batch: batch, seed: seed, clipGradNorm: v["clip_grad_norm"]?.number, select: select,
                         initFrom: initFrom, distill: distill, source: v)
    }

    mutating func buildPretrained(_ name: String, _ nameRange: SourceRange?, _ v: Value, _ j: JSON) -> PretrainedStageSpec? {
        guard v.isComplete, let model = v.ref("model"), let w = v["weights"], let file = w.text("file") else { return nil }
        var rename: [WeightRename] = []
        for (i, r) in (w["rename"]?.list ?? []).enumerated() {
            let path = "stages.\(name).weights.rename[\(i)]"
            let to = r["to"]
            if r["drop"] != nil, let to {
                diagnostics.append(Diagnostic(SpecDiagnostics.unknownKey, "a `drop` rule removes names; it has no `to`", at: to.range ?? r.range, path: path + ".to"))
                continue
            }
            if r["drop"] == nil, to == nil {
                diagnostics.append(Diagnostic(SpecDiagnostics.missingKey, "a `\(r["prefix"] != nil ? "prefix" : "regex")` rule needs `to`, the replacement",
                                              at: r.range, path: path))
                continue
            }
            guard let rule = decode(WeightRename.self, j["weights"]?["rename"]?.array?[safe: i] ?? .null, path, at: r) else { continue }
            rename.append(rule)
        }
        // Relative to the file the path is written in (a base spec's path stays its own under `extends`).
        let directory = (w["file"]?.range ?? v.range).map { FilePath.folder(of: $0.file.path ?? $0.file.displayPath) } ?? ""
        let resolved = FilePath.resolve(file, against: directory)
        return PretrainedStageSpec(name: name, nameRange: nameRange, model: model, file: file, resolvedFile: resolved, rename: rename, source: v)
    }

    mutating func buildDistill(_ stage: String, _ v: Value, _ j: JSON, reusing same: (trie: OverrideTrie, distill: DistillSpec)? = nil) -> DistillSpec? {
        guard v.isComplete, let teacher = v.ref("teacher") else { return nil }
        let base = "stages.\(stage).distill"
        // The base's terms that no override reaches.
        let reusable = same.flatMap { s in s.trie.whole ? nil : s }
        let tapsTrie = reusable?.trie.below("taps")
        var taps: [TapPairSpec] = []
        for m in v["taps"]?.members ?? [] where m.value.isComplete {
            if let r = reusable, !(tapsTrie?.reaches(m.key) ?? false),
               let pair = r.distill.taps.first(where: { $0.name == m.key }) {
                taps.append(pair)
                continue
            }
            guard let teacherTap = m.value.ref("teacher"), let studentTap = m.value.ref("student"),
                  let pair = decode(TapPair.self, j["taps"]?[m.key] ?? .null, "\(base).taps.\(m.key)", at: m.value) else { continue }
            taps.append(TapPairSpec(pair: pair, teacher: teacherTap, student: studentTap, source: m.value))
        }
        var logits: LogitDistillationSpec?
        if let r = reusable, !r.trie.reaches("logits") {
            logits = r.distill.logits
        } else if let l = v["logits"], l.isComplete, let term = decode(LogitTerm.self, j["logits"] ?? .null, "\(base).logits", at: l) {
            logits = LogitDistillationSpec(term: term, source: l)
        }
        var supcon: SupConSpec?
        if let r = reusable, !r.trie.reaches("supcon") {
            supcon = r.distill.supcon
        } else if let s = v["supcon"], s.isComplete, let tap = s.ref("tap"), let term = decode(SupConTerm.self, j["supcon"] ?? .null, "\(base).supcon", at: s) {
            supcon = SupConSpec(term: term, tap: tap, source: s)
        }
        let use = v["use"].map { u in u.list.compactMap { item in item.string.map { Ref(name: $0, range: item.range) } } }
        return DistillSpec(teacher: teacher, taps: taps, logits: logits, supcon: supcon, use: use, source: v)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

extension JSON {
    /// A validated spec value as JSON (a user's mapping order is dropped: keys sort).
    public init(_ value: Value) {
        switch value.kind {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .number(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .list(let items): self = .array(items.map(JSON.init))
        case .object(let members):
            self = .object(Dictionary(members.filter { $0.key != Value.incompleteKey }.map { ($0.key, JSON($0.value)) },
                                      uniquingKeysWith: { a, _ in a }))
        }
    }

    /// A validated value in canonical form for `type`: every field the schema
    /// declares is present, an absent optional one as `null`.
    public init(_ value: Value, completing type: SchemaType) {
        self.init(value, completing: type, reusing: nil, below: nil)
    }

    /// With `base` (the base's canonical form) and `trie` (where a variant's overrides
    /// write), members no override reaches are the base's, as the validator left them.
    init(_ value: Value, completing type: SchemaType, reusing base: JSON?, below trie: OverrideTrie?) {
        let reuse = trie.flatMap { t in t.whole ? nil : base?.object.map { (trie: t, base: $0) } }
        switch (type, value.kind) {
        case (.object(let schema), .object):
            let kind = schema.discriminator.flatMap { value[$0.key]?.string }
            // Only an object of the base's case has the base's fields and defaults.
            let same = reuse.flatMap { r in schema.discriminator.map { r.base[$0.key]?.string == kind } ?? true ? r : nil }
            let fields = schema.fields(for: kind)
            var out: [String: JSON] = Dictionary(minimumCapacity: fields.count)
            for field in fields {
                if let same, !same.trie.reaches(field.key), let b = same.base[field.key] {
                    out[field.key] = b
                } else if let member = value[field.key] {
                    out[field.key] = JSON(member, completing: field.type, reusing: same?.base[field.key], below: same?.trie.below(field.key))
                } else if !field.required {
                    out[field.key] = .null
                }
            }
            self = .object(out)
        case (.dictionary(let item, _), .object(let members)):
            var out: [String: JSON] = Dictionary(minimumCapacity: members.count)
            for m in members where m.key != Value.incompleteKey && out[m.key] == nil {
                if let reuse, !reuse.trie.reaches(m.key), let b = reuse.base[m.key] {
                    out[m.key] = b
                } else {
                    out[m.key] = JSON(m.value, completing: item, reusing: reuse?.base[m.key], below: reuse?.trie.below(m.key))
                }
            }
            self = .object(out)
        case (.list(let item, _, _), .list(let items)):
            self = .array(items.map { JSON($0, completing: item) })
        default:
            self = JSON(value)
        }
    }
}
