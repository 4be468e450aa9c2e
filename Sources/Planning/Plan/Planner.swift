import Architecture
import Foundation
import Hashing
import Medical
import Spec
import StageConfig
import Storage

/// Lowers a checked spec and its sweep into an execution plan: stages named by
/// the SHA-256 of everything that determines their result, shared across
/// variants, each with its cost.
public struct Planner {
    public var throughput: Throughput
    /// Largest teacher-output cache the planner will choose.
    public var cacheBudgetBytes: Int
    /// Relative data paths resolve against this directory (the spec's).
    public var specDirectory: String
    /// A run store whose prepared data, when there, gives exact slice counts (which slices
    /// keep_empty and stratified subsets keep needs each slice's foreground).
    public var store: String?

    public static let defaultCacheBudget = 32 << 30

    public init(throughput: Throughput = .fallback, cacheBudgetBytes: Int = Planner.defaultCacheBudget, specDirectory: String, store: String? = nil) {
        self.throughput = throughput
        self.cacheBudgetBytes = cacheBudgetBytes
        self.specDirectory = specDirectory
        self.store = store
    }

    /// Plans every variant (or only `variant`). The spec must be free of errors.
    public func plan(_ checked: CheckedSpec, variant: String? = nil) -> ExecutionPlan {
        // A first pass over the whole sweep (whichever variant is asked for) finds the taps every
        // student of each teacher reads, so that one teacher-output cache serves them all.
        var survey = PlanBuilder(planner: self)
        survey.surveying = true
        let surveyBase = checked.base.map { survey.lower($0, reuse: nil, touched: []) }
        for v in checked.variants {
            guard let spec = v.spec else { continue }
            _ = survey.lower(spec, reuse: surveyBase, touched: v.touched, variantName: v.name)
        }
        var builder = PlanBuilder(planner: self)
        builder.cacheTaps = survey.tapsRead
        builder.summaries = survey.summaries
        builder.digests = survey.digests
        var baseResult: [String: StageResult]?
        if let base = checked.base {
            baseResult = builder.lower(base, reuse: nil, touched: [])
        }
        var variants: [PlanVariant] = []
        for v in checked.variants where variant == nil || v.name == variant {
            guard let spec = v.spec else { continue }
            let results = builder.lower(spec, reuse: v.touched.isEmpty ? baseResult : baseResult, touched: v.touched,
                                        variantName: v.name)
            variants.append(PlanVariant(name: v.name, choices: v.choices,
                                        stages: spec.stageNames.compactMap { n in results[n].map { (n, $0.train, $0.evaluate) } }))
            for r in results.values { builder.mark(r, variant: v.name) }
        }
        // The comparison settings are the spec's, not a variant's (a report compares variants).
        if let comparison = checked.base?.report ?? checked.variants.lazy.compactMap({ $0.spec?.report }).first {
            let reportHash = builder.report(variants, specName: checked.base?.name, comparison: comparison)
            for v in variants { builder.mark(hash: reportHash, variant: v.name) }
        }
        // The base itself is only a starting point: keep what some variant runs.
        return ExecutionPlan(specName: checked.base?.name, stages: builder.ordered.filter { !$0.variants.isEmpty }, variants: variants,
                             throughput: throughput)
    }
}

/// What one spec stage lowered to.
struct StageResult {
    var prepare: String
    var train: String
    var evaluate: String
    var teacherOutputs: String?
}

struct PlanBuilder {
    let planner: Planner
    private(set) var ordered: [PlanStage] = []
    private var index: [String: Int] = [:]
    private var prepareMemo: [String: (hash: String, model: CostModel)] = [:]
    /// The cache decision and cache stage of a student, by everything they read (the teacher-output
    /// key, the taps, the student's epochs): a grid's variants mostly share one.
    private var cacheMemo: [String: (note: String, cache: String?)] = [:]
    /// What the data folders hold, read once per plan (the survey pass hands its readings on).
    var summaries: [String: DatasetSummary] = [:]
    private var basePrepare: (String, CostModel)?
    /// SHA-256 of each weight file, read once per plan (the survey pass hands its digests on).
    var digests: [String: String] = [:]
    /// Teacher taps the students read, by teacher stage and training subset (recorded while lowering).
    private(set) var tapsRead: [String: Set<String>] = [:]
    /// What each teacher-output cache holds: the taps of every student of the teacher over the subset.
    var cacheTaps: [String: Set<String>] = [:]
    /// The survey pass: only `tapsRead` matters, so a stage no other stage builds on (a student of
    /// a grid) records the taps it reads and is not lowered (no configuration, hash or cost).
    var surveying = false

    init(planner: Planner) { self.planner = planner }

    /// Adds a stage (once per hash) and returns its hash.
    mutating func add(_ config: StageConfiguration, label: String, inputs: [String: String], cost: StageCost, note: String? = nil) -> String {
        let hash = PlanStage.hash(config, inputs: inputs)
        if index[hash] == nil {
            index[hash] = ordered.count
            ordered.append(PlanStage(hash: hash, label: label, inputs: inputs, config: config, cost: cost, variants: [], note: note))
        }
        return hash
    }

    mutating func mark(_ r: StageResult, variant: String) {
        for h in [r.prepare, r.train, r.evaluate] + (r.teacherOutputs.map { [$0] } ?? []) { mark(hash: h, variant: variant) }
    }

    mutating func mark(hash: String, variant: String) {
        // Variants are marked one after another, so a repeat is always the last entry.
        guard let i = index[hash], ordered[i].variants.last != variant else { return }
        ordered[i].variants.append(variant)
    }

    /// Lowers one spec. Stages whose inputs a variant did not touch are taken from `reuse`.
    mutating func lower(_ spec: Spec, reuse: [String: StageResult]?, touched: Set<DocumentUnit>, variantName: String = "base") -> [String: StageResult] {
        let dataTouched = touched.contains { $0.section == "data" }
        let evaluateTouched = touched.contains { $0.section == "evaluate" }
        let (prepare, cost): (String, CostModel)
        if reuse != nil, !dataTouched, let base = basePrepare {
            (prepare, cost) = base
        } else {
            (prepare, cost) = prepareStage(spec)
            if reuse == nil { basePrepare = (prepare, cost) }
        }
        var results: [String: StageResult] = [:]
        var changed = Set<String>()
        let builtOn = surveying ? Set(spec.stages.flatMap { [$0.distill?.teacher.name, initStage($0)].compactMap { $0 } }) : []
        for p in spec.pretrained {
            guard let r = lowerPretrained(spec, p, prepare: prepare, cost: cost) else { continue }
            if reuse?[p.name]?.train != r.train { changed.insert(p.name) }
            results[p.name] = r
        }
        for stage in dependencyOrder(spec) {
            if surveying, !builtOn.contains(stage.name) {
                if let d = stage.distill, let upstream = results[d.teacher.name] {
                    tapsRead[tapKey(spec, stage, teacher: upstream), default: []].formUnion(d.activeTerms.teacherTaps)
                }
                continue
            }
            let deps = [stage.distill?.teacher.name, initStage(stage)].compactMap { $0 }
            let dirty = reuse == nil || dataTouched
                || touched.contains(DocumentUnit(section: "stages", entry: stage.name))
                || touched.contains(DocumentUnit(section: "models", entry: stage.model.name))
                || deps.contains { changed.contains($0) }
                || stage.distill.flatMap { d in spec.producedModel(d.teacher.name) }.map { touched.contains(DocumentUnit(section: "models", entry: $0.name)) } ?? false
            if !dirty, var r = reuse?[stage.name] {
                if evaluateTouched { r.evaluate = evaluateStage(spec, stage, trained: r.train, prepare: prepare, cost: cost) }
                results[stage.name] = r
                continue
            }
            guard let r = lowerStage(spec, stage, prepare: prepare, cost: cost, lowered: results) else { continue }
            if reuse?[stage.name]?.train != r.train { changed.insert(stage.name) }
            results[stage.name] = r
        }
        return results
    }

    private func initStage(_ s: StageSpec) -> String? {
        if case .stage(let r) = s.initFrom { return r.name }
        return nil
    }

    /// Stages ordered so that teachers and init sources come first; ties keep spec order.
    func dependencyOrder(_ spec: Spec) -> [StageSpec] {
        var done = Set<String>(), out: [StageSpec] = []
        func visit(_ s: StageSpec, _ depth: Int) {
            guard !done.contains(s.name), depth < 1000 else { return }
            for d in [s.distill?.teacher.name, initStage(s)].compactMap({ $0 }) {
                if let t = spec.stage(d) { visit(t, depth + 1) }
            }
            if done.insert(s.name).inserted { out.append(s) }
        }
        for s in spec.stages { visit(s, 0) }
        return out
    }

    mutating func prepareStage(_ spec: Spec) -> (String, CostModel) {
        let memoKey = JSON(spec.data.value).canonical
        if let m = prepareMemo[memoKey] { return (m.hash, m.model) }
        let summary = summaries[memoKey] ?? DatasetSummary.summarize(spec.data, relativeTo: planner.specDirectory)
        summaries[memoKey] = summary
        let model = CostModel(throughput: planner.throughput, summary: summary, data: spec.data, cacheBudgetBytes: planner.cacheBudgetBytes)
        let config = PrepareConfiguration(source: spec.data.source, fingerprint: summary.fingerprint, classes: spec.data.classes, background: spec.data.background,
                                          preprocess: spec.data.preprocess, split: spec.data.split)
        let hash = PlanStage.hash(.prepare(config), inputs: [:])
        var cost = model
        var note = summary.exact ? nil : "sizes are estimates until the data is read"
        if let root = planner.store, spec.data.preprocess.volume == nil, FileManager.default.fileExists(atPath: "\(root)/stages/\(hash)/done"),
           let set = try? SliceSet(path: "\(root)/stages/\(hash)/slices.bin") {
            cost = CostModel(throughput: planner.throughput, summary: summary.refined(by: SliceList(records: set.records, patients: set.patients)),
                             data: spec.data, cacheBudgetBytes: planner.cacheBudgetBytes)
            note = "slice counts from the prepared data in \(root)"
        }
        let shape = spec.data.preprocess.volume.map { v in
            "patches of \(v.patch.map(String.init).joined(separator: "x")) at \(spacingText(v.spacing))"
        } ?? "\(spec.data.height)x\(spec.data.width)"
        _ = add(.prepare(config), label: "prepare \(summary.description), \(shape)",
                inputs: [:], cost: cost.prepare(), note: note)
        prepareMemo[memoKey] = (hash, cost)
        return (hash, cost)
    }

    /// `the median spacing`, or `1.6x0.79x0.79 mm`.
    func spacingText(_ spacing: TargetSpacing) -> String {
        switch spacing {
        case .median: return "the median spacing"
        case .millimetres(let mm): return mm.map { String(format: "%g", $0) }.joined(separator: "x") + " mm"
        }
    }

    /// The subset chain, root first: what a stage trains on, independent of names.
    func subsetChain(_ spec: Spec, _ name: String) -> SubsetChain {
        SubsetChain(spec.data.chain(name).map(\.level))
    }

    /// A stage whose weights come from a file: named by the file's content and the architecture.
    mutating func lowerPretrained(_ spec: Spec, _ p: PretrainedStageSpec, prepare: String, cost: CostModel) -> StageResult? {
        guard let model = spec.model(p.model.name) else { return nil }
        let absolute = FilePath.absolute(p.resolvedFile)
        let digest: String
        if let d = digests[absolute] {
            digest = d
        } else {
            // The checker read this file's header a moment ago; a file gone since is planned as unreadable and fails when run.
            digest = SHA256.file(absolute) ?? "unreadable"
            digests[absolute] = digest
        }
        let config = PretrainedConfiguration(model: model.architecture, file: absolute, sha256: digest, rename: p.rename)
        let c = cost.pretrained(model.architecture)
        let hash = add(.pretrained(config), label: "pretrained \(p.name) (\(model.name), \(Format.count(c.parameters)) params) from \(p.file)",
                       inputs: ["data": prepare], cost: c)
        let evaluate = add(.evaluate(spec.evaluate.config), label: "evaluate \(p.name)", inputs: ["data": prepare, "model": hash],
                           cost: cost.evaluate(model.architecture, name: p.model.name, mirror: spec.evaluate.config.mirror.count))
        return StageResult(prepare: prepare, train: hash, evaluate: evaluate, teacherOutputs: nil)
    }

    mutating func lowerStage(_ spec: Spec, _ stage: StageSpec, prepare: String, cost: CostModel, lowered: [String: StageResult]) -> StageResult? {
        guard let model = spec.model(stage.model.name) else { return nil }
        var inputs: [String: String] = ["data": prepare]
        var initFile: String?
        switch stage.initFrom {
        case .stage(let r)?:
            guard let upstream = lowered[r.name] else { return nil }
            inputs["init"] = upstream.train
        case .file(let path)?:
            initFile = path
        case nil: break
        }
        let subset = subsetChain(spec, stage.data.name)
        let samples = cost.trainingSamples(spec, subset: stage.data.name)
        var teacherArch: ModelArchitecture?
        var cached = false
        var note: String?
        var teacherOutputs: String?
        var distillation: DistillationTerms?
        if let d = stage.distill, let teacherRef = spec.producedModel(d.teacher.name), let teacherModel = spec.model(teacherRef.name),
           let upstream = lowered[d.teacher.name] {
            let terms = d.activeTerms
            distillation = terms
            teacherArch = teacherModel.architecture
            inputs["teacher"] = upstream.train
            let ownTaps = terms.teacherTaps
            let key = tapKey(spec, stage, teacher: upstream)
            tapsRead[key, default: []].formUnion(ownTaps)
            // One cache for every student of this teacher over this subset, unless holding them all breaks the budget.
            let shared = cacheTaps[key].map { $0.union(ownTaps).sorted() } ?? ownTaps
            // A grid's variants mostly ask the same question: decide it once per teacher, data (augmented or not),
            // subset, taps and epochs.
            let memoKey = [key, prepare, String(spec.data.augment != nil), shared.joined(separator: ","), ownTaps.joined(separator: ","),
                           String(stage.epochs)].joined(separator: "\n")
            let decided: (note: String, cache: String?)
            if let m = cacheMemo[memoKey] {
                decided = m
            } else {
                decided = teacherCache(spec, stage, teacher: teacherModel, upstream: upstream, own: ownTaps, shared: shared, subset: subset,
                                       samples: samples, prepare: prepare, cost: cost)
                cacheMemo[memoKey] = decided
            }
            note = decided.note
            if let h = decided.cache {
                cached = true
                inputs["teacher_outputs"] = h
                teacherOutputs = h
            }
        }
        let config = TrainingConfiguration(model: model.architecture, subset: subset, loss: stage.loss.map(\.term), optimizer: stage.optimizer,
                                           schedule: stage.schedule, epochs: stage.epochs, batch: stage.batch, seed: stage.seed,
                                           clipGradNorm: stage.clipGradNorm, select: stage.select, initFile: initFile, distill: distillation,
                                           augment: spec.data.augment)
        let trainCost = cost.train(stage, model: model.architecture, samples: samples, teacher: teacherArch, teacherCached: cached)
        let label = "\(distillation != nil ? "distill" : "train") \(stage.name) (\(model.name), \(Format.count(trainCost.parameters)) params)"
        let train = add(.train(config), label: label, inputs: inputs, cost: trainCost, note: note)
        let evaluate = evaluateStage(spec, stage, trained: train, prepare: prepare, cost: cost)
        return StageResult(prepare: prepare, train: train, evaluate: evaluate, teacherOutputs: teacherOutputs)
    }

    /// Whether a student reads its teacher's maps from a cache (one for every student of the teacher
    /// over the subset, unless holding them all breaks the budget), and that cache's stage.
    mutating func teacherCache(_ spec: Spec, _ stage: StageSpec, teacher: ModelSpec, upstream: StageResult, own: [String], shared: [String],
                               subset: SubsetChain, samples: Double, prepare: String, cost: CostModel) -> (note: String, cache: String?) {
        func decide(_ taps: [String]) -> (cache: Bool, reason: String) {
            if spec.data.preprocess.volume != nil {
                return (false, "live teacher: each step draws its patches at random places, so there is no fixed set of teacher maps to cache")
            }
            return spec.data.augment != nil
                ? (false, "recompute: with augmentation the teacher must see each augmented batch")
                : cost.cacheDecision(teacher: teacher.architecture, taps: taps, samples: samples, epochs: stage.epochs)
        }
        var taps = shared
        var decision = decide(shared)
        if !decision.cache, shared != own {
            taps = own
            decision = decide(own)
        }
        guard decision.cache, !taps.isEmpty, let teacherName = stage.distill?.teacher.name else { return (decision.reason, nil) }
        let h = add(.teacherOutputs(TeacherOutputsConfiguration(subset: subset, taps: taps, precision: .fp16)),
                    label: "teacher outputs of \(teacherName) over \(stage.data.name)",
                    inputs: ["data": prepare, "teacher": upstream.train],
                    cost: cost.teacherOutputs(teacher.architecture, name: teacher.name, taps: taps, samples: samples))
        return (decision.reason, h)
    }

    /// Which teacher-output cache a student reads: its teacher's training stage and its own subset.
    func tapKey(_ spec: Spec, _ stage: StageSpec, teacher: StageResult) -> String {
        teacher.train + " " + subsetChain(spec, stage.data.name).json.canonical
    }

    mutating func evaluateStage(_ spec: Spec, _ stage: StageSpec, trained: String, prepare: String, cost: CostModel) -> String {
        guard let model = spec.model(stage.model.name) else { return trained }
        return add(.evaluate(spec.evaluate.config), label: "evaluate \(stage.name)", inputs: ["data": prepare, "model": trained],
                   cost: cost.evaluate(model.architecture, name: stage.model.name, mirror: spec.evaluate.config.mirror.count))
    }

    mutating func report(_ variants: [PlanVariant], specName: String?, comparison: ComparisonSettings) -> String {
        let config = ReportConfiguration(spec: specName, variants: variants.map { v in
            .init(name: v.name, evaluate: Dictionary(v.stages.map { ($0.name, $0.evaluate) }, uniquingKeysWith: { a, _ in a }))
        }, comparison: comparison)
        let inputs = Dictionary(Set(variants.flatMap { $0.stages.map(\.evaluate) }).sorted().enumerated().map { ("evaluate.\($0.offset)", $0.element) },
                                uniquingKeysWith: { a, _ in a })
        var c = StageCost()
        c.diskBytes = 64 << 10 * max(1, variants.count)
        c.seconds = 1
        return add(.report(config), label: "report of \(variants.count) variant\(variants.count == 1 ? "" : "s")", inputs: inputs, cost: c)
    }
}
