import Architecture
import Diagnostics
import Foundation
import Medical
import Spec
import StageConfig
import Storage

/// The planner's side of `auto`: the dataset's fingerprint (measured once and kept in the
/// run store), the recipe computed from it (`VolumeRecipe`), and each `auto` value taken
/// from the recipe.
///
/// The recipe is planned for one reference network: the first model with `widths: auto`
/// (its norm, blocks, heads and input channels, with nnU-Net's widths), else nnU-Net's own
/// network. Every 3D model with `pools` or `kernels: auto` takes the recipe's first levels,
/// as many as its `widths` has (a student planned to its teacher's patch and pooling, so
/// their taps meet), and every `batch: auto` the recipe's batch.
public enum RecipePlanning {
    public static let tooDeep = DiagnosticID("E0814", .error, "model deeper than the data's recipe")
    public static let overBudget = DiagnosticID("E0815", .error, "the smallest recipe exceeds the memory budget")
    public static let notVolumes = DiagnosticID("E0816", .error, "auto outside a 3D recipe")

    /// Computes `auto` values for specs in `specDirectory`, keeping fingerprints in `store` (when given).
    /// `keep`: keep a fingerprint measured here in `store` (plans do; `check` writes nothing).
    public static func resolver(specDirectory: String, store: String?, keep: Bool, progress: (@Sendable (String) -> Void)? = nil) -> RecipeResolver {
        { spec, slots in resolve(spec, slots, specDirectory: specDirectory, cache: FingerprintCache(store: store, keeps: keep), progress: progress) }
    }

    static func resolve(_ spec: Spec, _ slots: [RecipeSlot], specDirectory: String, cache: FingerprintCache, progress: (@Sendable (String) -> Void)?) -> RecipeResolution {
        if let misplaced = misplaced(spec, slots) { return .failed(misplaced) }
        let f: DatasetFingerprint
        switch fingerprint(spec.data, specDirectory: specDirectory, cache: cache, progress: progress) {
        case .success(let measured): f = measured
        case .failure(let reason): return .unavailable(reason.message)
        }
        // `execution` has no default object: without one, its `memory` is the declared default.
        let memory = spec.document["execution"]?["memory"]?.number ?? SpecSchema.defaultMemoryGiB
        let budget = Int(memory * Double(1 << 30))
        let given: [Double]? = switch spec.data.preprocess.volume?.spacing {
        case .millimetres(let mm) where !slots.contains(where: { $0.kind == .spacing }): mm
        case .median where !slots.contains(where: { $0.kind == .spacing }): f.medianSpacing
        default: nil
        }
        let (template, stateSlots) = reference(spec, slots)
        let recipe = VolumeRecipe.plan(f, spacing: given, budgetBytes: budget, stepBytes: VolumeRecipe.stepBytes(like: template, optimizerSlots: stateSlots))
        var lines = ["3D recipe from the fingerprint of \(f.cases.count) cases (nnU-Net's planning rules; execution.memory \(Format.bytes(budget))):"]
            + recipe.lines.map { "  " + $0 }
        if recipe.stepBytes > budget {
            return .failed([Diagnostic(overBudget, "the recipe's smallest patch \(recipe.patch) needs \(Format.bytes(recipe.stepBytes)) a training step, over execution.memory (\(Format.bytes(budget)))",
                                       at: slots[0].range, path: slots[0].dotted,
                                       notes: [DiagnosticNote("raise execution.memory, or write the patch and levels yourself")])])
        }
        var values: [RecipeSlot: JSON] = [:], problems: [Diagnostic] = []
        for slot in slots {
            switch slot.kind {
            case .spacing: values[slot] = .array(recipe.spacing.map { .number(($0 * 1e5).rounded() / 1e5) })
            case .patch: values[slot] = .array(recipe.patch.map(JSON.int))
            case .widths: values[slot] = .array(recipe.widths.map(JSON.int))
            case .bottleneck: values[slot] = .int(recipe.bottleneck)
            case .batch: values[slot] = .int(recipe.batch)
            case .kernels, .pools:
                let depth = slot.ownerWidthsAreAuto(in: slots) ? recipe.widths.count
                    : spec.model(slot.owner ?? "").flatMap { if case .unet(let u) = $0.architecture { u.depth } else { nil } } ?? recipe.widths.count
                guard depth <= recipe.levels.pools.count else {
                    problems.append(Diagnostic(tooDeep, "model '\(slot.owner ?? "")' has \(depth) levels; the recipe for this data pools \(recipe.levels.pools.count) times",
                                               at: slot.range, path: slot.dotted, notes: [DiagnosticNote("give it fewer `widths`, or write its `\(slot.kind.rawValue)`")]))
                    continue
                }
                let chosen: [[Int]] = slot.kind == .pools ? Array(recipe.levels.pools.prefix(depth)) : Array(recipe.levels.kernels.prefix(depth)) + [recipe.levels.kernels[depth]]
                values[slot] = JSON.array(chosen.map { JSON.array($0.map(JSON.int)) })
            }
        }
        if !problems.isEmpty { return .failed(problems) }
        lines += slots.map { "  \($0.dotted) = \(values[$0]?.canonical ?? "")" }
        return .resolved(values, lines: lines, levels: recipe.levels)
    }

    /// `auto` where no 3D recipe applies: data cut into slices, or a model that is not a 3D U-Net.
    static func misplaced(_ spec: Spec, _ slots: [RecipeSlot]) -> [Diagnostic]? {
        guard spec.data.preprocess.volume != nil else {
            return [Diagnostic(notVolumes, "`auto` plans 3D recipes, and this data is cut into slices", at: slots[0].range, path: slots[0].dotted,
                               notes: [DiagnosticNote("give `data.preprocess.patch` (or `patch: auto`) to train 3D networks on patches")])]
        }
        let found = slots.compactMap { slot -> Diagnostic? in
            guard slot.kind != .batch, slot.owner != nil else { return nil }
            if let m = spec.model(slot.owner ?? ""), case .unet(let u) = m.architecture, u.volume != nil { return nil }
            return Diagnostic(notVolumes, "model '\(slot.owner ?? "")' is not a 3D U-Net: `\(slot.kind.rawValue): auto` applies to `dims: 3`",
                              at: slot.range, path: slot.dotted)
        }
        return found.isEmpty ? nil : found
    }

    /// The network the recipe is planned for, and its optimiser's state slots.
    static func reference(_ spec: Spec, _ slots: [RecipeSlot]) -> (UNetArchitecture, Int) {
        let classes = spec.data.classes.count + 1
        let owner = slots.first { $0.kind == .widths }?.owner
        guard let owner, let model = spec.model(owner), case .unet(var u) = model.architecture else {
            return (VolumeRecipe.nnUNetTemplate(inChannels: spec.data.preprocess.channels, classes: classes), VolumeRecipe.nnUNetOptimizerSlots)
        }
        u.volume = nil
        let stateSlots = spec.stages.filter { $0.model.name == owner }.map(\.optimizer.algorithm.stateSlots).max() ?? VolumeRecipe.nnUNetOptimizerSlots
        return (u, stateSlots)
    }

    struct Unavailable: Error { var message: String }

    /// The data's fingerprint: kept in the store when it was measured before, else measured (and kept).
    static func fingerprint(_ data: DataSpec, specDirectory: String, cache: FingerprintCache, progress: (@Sendable (String) -> Void)?) -> Result<DatasetFingerprint, Unavailable> {
        let axis = data.preprocess.sliceAxis, modalities = data.preprocess.modalities
        /// The kept one under `identity`, else `measure()`'s, kept.
        func kept(_ identity: String, _ what: String, _ measure: () throws -> DatasetFingerprint) throws -> DatasetFingerprint {
            if let kept = cache.load(identity) { return kept }
            progress?("measuring the fingerprint of \(what)")
            let f = try measure()
            cache.keep(f)
            return f
        }
        do {
            switch data.source {
            case .phantom(let p):
                return .success(try kept(DatasetFingerprint.identity(p, axis: axis, modalities: modalities), "the phantom (\(p.cases) cases)") {
                    try DatasetFingerprint.measure(p, axis: axis, modalities: modalities)
                })
            case .msd(let path, let orientation):
                let folder = FilePath.resolve(path, against: specDirectory)
                guard FileManager.default.fileExists(atPath: folder + "/dataset.json") else {
                    return .failure(Unavailable(message: "they are computed from the data, and there is no dataset at '\(path)'"))
                }
                let dataset = try MSDDataset.load(folder, analyzeOrientation: orientation)
                return .success(try kept(DatasetFingerprint.identity(dataset, axis: axis, modalities: modalities), "\(folder) (\(dataset.cases.count) cases)") {
                    try DatasetFingerprint.measure(dataset, axis: axis, modalities: modalities)
                })
            }
        } catch {
            return .failure(Unavailable(message: "the data's fingerprint cannot be measured: \(error)"))
        }
    }
}

/// Fingerprints kept in a run store, `<store>/fingerprints/<identity>.json`, read without
/// following a link; one that does not decode, or was measured by another version or on
/// other data, is measured again.
struct FingerprintCache {
    let store: String?
    /// Whether fingerprints measured now are kept.
    let keeps: Bool
    static let folder = "fingerprints"

    func load(_ identity: String) -> DatasetFingerprint? {
        guard let store, identity.allSatisfy(\.isHexDigit) else { return nil }
        let tree = ConfinedTree(root: store)
        guard let data = try? tree.read("\(Self.folder)/\(identity).json"), let f = try? DatasetFingerprint.decode(data),
              f.version == DatasetFingerprint.version, f.identity == identity else { return nil }
        return f
    }

    /// Keeps `f` in a store that exists and can be written: a fingerprint is a cache, never a result.
    func keep(_ f: DatasetFingerprint) {
        var folder: ObjCBool = false
        guard keeps, let store, FileManager.default.fileExists(atPath: store, isDirectory: &folder), folder.boolValue,
              f.identity.allSatisfy(\.isHexDigit) else { return }
        let tree = ConfinedTree(root: store)
        switch tree.kind(Self.folder).kind {
        case .missing: guard mkdir(store + "/" + Self.folder, 0o755) == 0 else { return }
        case .directory: break
        default: return
        }
        guard let data = try? f.encoded() else { return }
        try? AtomicFile.write(data, to: "\(store)/\(Self.folder)/\(f.identity).json")
    }
}
