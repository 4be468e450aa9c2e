import Architecture
import Diagnostics
import SpecSyntax
import StageConfig

/// A value a spec leaves to the data (`auto`): the planner computes it from the dataset's
/// fingerprint, as nnU-Net plans its 3D recipes. Before the checker validates a spec, every
/// `auto` is replaced by the computed value (located at the `auto`, so every rule and
/// every diagnostic applies to what will run); where it cannot be computed (the data is
/// not there), the spec is checked with stand-ins and cannot be planned.
public struct RecipeSlot: Hashable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case spacing, patch, widths, bottleneck, kernels, pools, batch
    }

    public var kind: Kind
    /// The model or stage it belongs to (nil for the data's `spacing` and `patch`).
    public var owner: String?
    public var range: SourceRange

    /// Where it is in the document.
    public var path: [String] {
        switch kind {
        case .spacing, .patch: return ["data", "preprocess", kind.rawValue]
        case .widths, .bottleneck, .kernels, .pools: return ["models", owner ?? "", kind.rawValue]
        case .batch: return ["stages", owner ?? "", kind.rawValue]
        }
    }

    public var dotted: String { path.joined(separator: ".") }

    public init(kind: Kind, owner: String?, range: SourceRange) {
        (self.kind, self.owner, self.range) = (kind, owner, range)
    }

    /// Whether `slots` leaves this slot's owner's widths to the recipe.
    public func ownerWidthsAreAuto(in slots: [RecipeSlot]) -> Bool {
        slots.contains { $0.kind == .widths && $0.owner == owner }
    }

    public static func == (a: RecipeSlot, b: RecipeSlot) -> Bool { a.kind == b.kind && a.owner == b.owner }
    public func hash(into h: inout Hasher) {
        h.combine(kind)
        h.combine(owner)
    }
}

/// What the planner made of a spec's `auto` values.
public enum RecipeResolution: Sendable {
    /// Every slot's value, lines that say what was chosen and why, and the recipe's levels
    /// (what a sweep variant that changes a model's depth takes its `auto` levels from).
    case resolved([RecipeSlot: JSON], lines: [String], levels: VolumeLevels)
    /// Not computed, and why (the data is not there).
    case unavailable(String)
    /// Computed, but wrong for the spec (a model deeper than the data allows): located errors.
    case failed([Diagnostic])
}

/// Computes the values of `slots` for a spec built with stand-ins (`AutoRecipe.standIns`);
/// the planner gives one (it reads the data).
public typealias RecipeResolver = @Sendable (_ spec: Spec, _ slots: [RecipeSlot]) -> RecipeResolution

public enum AutoRecipe {
    /// The word a spec writes.
    public static let word = "auto"

    /// The schema objects and keys that take it (what `slots(in:)` looks for).
    static func takesAuto(_ object: String, _ key: String) -> Bool {
        switch (object, key) {
        case ("Preprocess", "patch"), ("Preprocess", "spacing"), ("Stage", "batch"): return true
        case ("Model", let k): return [RecipeSlot.Kind.widths, .bottleneck, .kernels, .pools].map(\.rawValue).contains(k)
        default: return false
        }
    }

    /// Given where `auto` could not be computed: the spec is checked with stand-ins and has no IR,
    /// so it cannot be planned (`plan` and the run commands stop on it).
    public static let notComputed = DiagnosticID("W0415", .warning, "auto values not computed")

    /// Every `auto` at a key that takes it, in document order.
    public static func slots(in root: SyntaxNode) -> [RecipeSlot] {
        var out: [RecipeSlot] = []
        func auto(_ node: SyntaxNode?) -> SourceRange? {
            guard let node, let s = node.scalar, !s.style.isQuoted, s.text == word else { return nil }
            return node.range
        }
        for kind in [RecipeSlot.Kind.spacing, .patch] {
            if let r = auto(root["data"]?["preprocess"]?[kind.rawValue]) { out.append(RecipeSlot(kind: kind, owner: nil, range: r)) }
        }
        for entry in root["models"]?.entries ?? [] {
            for kind in [RecipeSlot.Kind.widths, .bottleneck, .kernels, .pools] {
                if let r = auto(entry.value[kind.rawValue]) { out.append(RecipeSlot(kind: kind, owner: entry.key, range: r)) }
            }
        }
        for entry in root["stages"]?.entries ?? [] {
            if let r = auto(entry.value["batch"]) { out.append(RecipeSlot(kind: .batch, owner: entry.key, range: r)) }
        }
        return out
    }

    /// Values that let a spec with `auto` be built and checked where the data is not there:
    /// a five-level network, isotropic levels, a patch they divide, the median spacing, a batch of 2.
    /// They are never planned: a spec checked with them has no IR.
    static func standIns(_ slots: [RecipeSlot], in root: SyntaxNode) -> [RecipeSlot: JSON] {
        var values: [RecipeSlot: JSON] = [:]
        let levels = 5
        for slot in slots {
            let depth = slot.ownerWidthsAreAuto(in: slots) ? levels
                : root["models"]?[slot.owner ?? ""]?["widths"]?.items?.count ?? levels
            switch slot.kind {
            case .spacing: values[slot] = .string("median")
            case .patch: values[slot] = .array(Array(repeating: .int(1 << (levels + 2)), count: 3))
            case .widths: values[slot] = .array((0..<levels).map { .int(32 << $0) })
            case .bottleneck: values[slot] = .int(32 << levels)
            case .kernels: values[slot] = .array(Array(repeating: .array([.int(3), .int(3), .int(3)]), count: depth + 1))
            case .pools: values[slot] = .array(Array(repeating: .array([.int(2), .int(2), .int(2)]), count: depth))
            case .batch: values[slot] = .int(2)
            }
        }
        return values
    }

    /// For a sweep variant that gives a model other `widths`, that model's `auto` kernels and
    /// pools for its new depth: the recipe's first levels again (the base's were for its own depth).
    static func depthOverrides(_ slots: [RecipeSlot], levels: VolumeLevels) -> @Sendable ([SweepVariant.Override]) -> [SweepVariant.Override] {
        let leveled = slots.filter { ($0.kind == .pools || $0.kind == .kernels) && $0.owner != nil }
        return { overrides in
            leveled.compactMap { slot -> SweepVariant.Override? in
                let owner = slot.owner ?? "", key = slot.kind.rawValue
                guard !overrides.contains(where: { $0.path.description == "models.\(owner).\(key)" }) else { return nil }
                var widths: SyntaxNode?
                for o in overrides {
                    switch o.path.description {
                    case "models.\(owner).widths": widths = o.value
                    case "models.\(owner)": widths = o.value["widths"] ?? widths
                    case "models": widths = o.value[owner]?["widths"] ?? widths
                    default: break
                    }
                }
                guard let depth = widths?.items?.count, let path = SpecPath("models.\(owner).\(key)") else { return nil }
                let chosen = slot.kind == .pools ? Array(levels.pools.prefix(depth))
                    : Array(levels.kernels.prefix(depth)) + (depth < levels.kernels.count ? [levels.kernels[depth]] : [])
                return SweepVariant.Override(path: path, value: node(.array(chosen.map { .array($0.map(JSON.int)) }), at: slot.range))
            }
        }
    }

    /// `root` with each slot's `auto` replaced by its value, located at the `auto`.
    static func substitute(_ values: [RecipeSlot: JSON], in root: SyntaxNode) -> SyntaxNode {
        var tree = root
        for (slot, value) in values { tree = replacing(slot.path[...], in: tree, with: node(value, at: slot.range)) }
        return tree
    }

    private static func replacing(_ path: ArraySlice<String>, in node: SyntaxNode, with value: SyntaxNode) -> SyntaxNode {
        guard let key = path.first, let entries = node.entries else { return value }
        let replaced = entries.map { e -> MappingEntry in
            e.key == key ? MappingEntry(key: e.key, keyRange: e.keyRange, value: replacing(path.dropFirst(), in: e.value, with: value)) : e
        }
        return SyntaxNode(.mapping(replaced), range: node.range)
    }

    /// A syntax tree for a computed value, every node at `range`.
    static func node(_ value: JSON, at range: SourceRange) -> SyntaxNode {
        switch value {
        case .array(let items): return SyntaxNode(.sequence(items.map { node($0, at: range) }), range: range)
        case .object(let o): return SyntaxNode(.mapping(o.sorted { $0.key < $1.key }.map { MappingEntry(key: $0.key, keyRange: range, value: node($0.value, at: range)) }), range: range)
        case .string(let s): return SyntaxNode(.scalar(Scalar(s, style: .doubleQuoted)), range: range)
        default: return SyntaxNode(.scalar(Scalar(value.canonical)), range: range)
        }
    }
}
