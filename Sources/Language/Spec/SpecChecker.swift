import Diagnostics
import Foundation
import SpecSyntax

/// A checked spec: the base document, every sweep variant, and what was wrong.
public struct CheckedSpec: Sendable {
    public struct Variant: Sendable {
        public var name: String
        public var choices: [(axis: String, value: String)]
        /// The variant's IR; nil when its document had errors.
        public var spec: Spec?
        /// The parts of the spec the variant's overrides replace (empty for the base).
        public var touched: Set<DocumentUnit> = []
    }

    /// The spec without its sweep applied.
    public var base: Spec?
    /// One entry per distinct variant; a spec without a sweep has one, named `base`.
    public var variants: [Variant]
    public var diagnostics: [Diagnostic]
    public var files: [SourceFile]
    /// What the spec's `auto` values became, and why (empty without `auto`).
    public var recipe: [String] = []
}

/// The checker: load, validate, build the IR, run every rule, expand the sweep
/// and check every variant. It never stops at the first problem.
public enum SpecChecker {
    /// Every semantic rule, each a small function over the IR.
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = ReferenceChecks.rules + ShapeChecks.rules + StudyChecks.rules + WeightChecks.rules + ClusterChecks.rules

    /// Checks the spec at `path`; nil when the file itself cannot be read. `recipes` computes
    /// its `auto` values (the planner's, which reads the data); without one, or where it cannot,
    /// the spec is checked with stand-ins and has no IR (warning W0415).
    public static func check(path: String, loader: SpecLoader = SpecLoader(),
                             environment: [String: String] = ProcessInfo.processInfo.environment,
                             recipes: RecipeResolver? = nil) -> CheckedSpec? {
        guard let loaded = loader.load(path: path) else { return nil }
        return check(loaded, environment: environment, recipes: recipes)
    }

    /// Checks an in-memory spec (tests, editors).
    public static func check(source: SourceFile, directory: String = FileManager.default.currentDirectoryPath,
                             environment: [String: String] = [:]) -> CheckedSpec {
        check(SpecLoader(workingDirectory: directory).load(file: source, directory: directory), environment: environment)
    }

    static func check(_ loaded: SpecLoader.Result, environment: [String: String], recipes: RecipeResolver? = nil) -> CheckedSpec {
        var loaded = loaded
        let slots = loaded.root.map(AutoRecipe.slots) ?? []
        guard let root = loaded.root, !slots.isEmpty, !loaded.diagnostics.hasErrors else { return checkResolved(loaded, environment: environment) }
        // `auto`: build the spec with stand-ins, let the planner compute the values from it, check again with them.
        let standIns = AutoRecipe.substitute(AutoRecipe.standIns(slots, in: root), in: root)
        var why: String
        if let recipes, let probe = build(standIns, environment: environment) {
            switch recipes(probe, slots) {
            case .resolved(let values, let lines, let levels):
                loaded.root = AutoRecipe.substitute(values, in: root)
                var checked = checkResolved(loaded, environment: environment, variantOverrides: AutoRecipe.depthOverrides(slots, levels: levels))
                checked.recipe = lines
                return checked
            case .failed(let found):
                loaded.root = standIns
                var checked = checkResolved(loaded, environment: environment)
                checked.diagnostics = (checked.diagnostics + found).sortedForOutput()
                return withoutIR(checked)
            case .unavailable(let reason): why = reason
            }
        } else {
            why = recipes == nil ? "they are computed from the data by `distill plan`" : "the spec has errors to fix first"
        }
        loaded.root = standIns
        var checked = checkResolved(loaded, environment: environment)
        // What the stand-ins would say is not the spec's: drop what is located at an `auto`.
        let ranges = Set(slots.map { "\($0.range.file.path ?? ""):\($0.range.start)" })
        checked.diagnostics.removeAll { d in d.range.map { ranges.contains("\($0.file.path ?? ""):\($0.start)") } ?? false }
        checked.diagnostics.append(Diagnostic(AutoRecipe.notComputed, "\(slots.count) `auto` value\(slots.count == 1 ? "" : "s") not computed: \(why)",
                                              at: slots[0].range, path: slots[0].dotted,
                                              notes: (slots.count > 1 ? [DiagnosticNote("also " + slots.dropFirst().map(\.dotted).joined(separator: ", "))] : [])
                                                  + [DiagnosticNote("checked with stand-ins; the values that will run are computed where the data is")]))
        checked.diagnostics = checked.diagnostics.sortedForOutput()
        return withoutIR(checked)
    }

    /// A checked spec that cannot be planned: its variants keep their names, not their IR.
    static func withoutIR(_ checked: CheckedSpec) -> CheckedSpec {
        var c = checked
        c.base = nil
        for i in c.variants.indices { c.variants[i].spec = nil }
        return c
    }

    /// The IR of a tree, built without the rules (nil when it cannot be built).
    static func build(_ tree: SyntaxNode, environment: [String: String]) -> Spec? {
        var validator = Validator(environment: environment)
        guard let document = validator.validate(tree, as: .object(SpecSchema.root), path: ""), !validator.diagnostics.hasErrors else { return nil }
        var builder = SpecBuilder(validated: true)
        return builder.build(document)
    }

    /// `variantOverrides`: what a variant's overrides imply besides themselves (`auto` levels for a new depth).
    static func checkResolved(_ loaded: SpecLoader.Result, environment: [String: String],
                              variantOverrides: @Sendable ([SweepVariant.Override]) -> [SweepVariant.Override] = { _ in [] }) -> CheckedSpec {
        var diagnostics = loaded.diagnostics
        var result = CheckedSpec(base: nil, variants: [], diagnostics: [], files: loaded.files)
        // A spec whose bases could not be composed is incomplete: checking it would
        // only report the keys the missing base would have supplied.
        let composed = !diagnostics.contains { [SpecDiagnostics.unreadable, SpecDiagnostics.extendsCycle].contains($0.id) }
        guard composed else {
            result.diagnostics = diagnostics.sortedForOutput()
            return result
        }
        // Nothing but comments or white space (or a lone `null`): say so, at the top of the file.
        guard let root = loaded.root, !root.isNull else {
            if !diagnostics.hasErrors, let file = loaded.files.first {
                diagnostics.append(Diagnostic(SpecDiagnostics.emptySpec, "the spec is empty: a spec needs data, models and stages",
                                              at: SourceRange(file: file, start: 0, end: 0),
                                              notes: [DiagnosticNote("start from specs/quickstart.yaml, or write `extends: other.yaml` to build on a spec")]))
            }
            result.diagnostics = diagnostics.sortedForOutput()
            return result
        }
        guard root.entries != nil else {
            diagnostics.append(Diagnostic(SpecDiagnostics.notASpec,
                "a spec is a mapping with 'data', 'models' and 'stages'; found \(root.kindDescription)", at: root.range))
            result.diagnostics = diagnostics.sortedForOutput()
            return result
        }
        let (document, baseDiagnostics) = evaluate(root, environment: environment)
        diagnostics += baseDiagnostics.all
        result.base = baseDiagnostics.spec

        guard let sweepNode = root["sweep"], let sweepValue = document?["sweep"] else {
            result.variants = [.init(name: "base", choices: [], spec: baseDiagnostics.spec)]
            result.diagnostics = diagnostics.sortedForOutput()
            return result
        }
        var expansion = SweepExpansion()
        let variants = expansion.expand(root: root, sweepNode: sweepNode, sweep: sweepValue)
        diagnostics += expansion.diagnostics

        // Check each variant; report only what the base did not already say.
        let known = Set(diagnostics.map(DiagnosticKey.init))
        var firstSeen: [DiagnosticKey: (index: Int, variants: [String])] = [:]
        var variantDiagnostics: [Diagnostic] = []
        var byDocument: [String: String] = [:]
        let base = SyntaxNode(.mapping((root.entries ?? []).filter { $0.key != "sweep" }), range: root.range)
        guard let baseDocument = document else {
            result.diagnostics = (diagnostics + expansion.diagnostics).sortedForOutput()
            return result
        }
        var incremental = IncrementalChecker(baseTree: base, baseDocument: baseDocument, environment: environment,
                                             baseValidated: baseDiagnostics.validated, baseSpec: baseDiagnostics.spec)
        for v in variants {
            let checked = incremental.evaluate(v.overrides + variantOverrides(v.overrides))
            for d in checked.evaluation.all {
                let key = DiagnosticKey(d)
                if known.contains(key) { continue }
                if let seen = firstSeen[key] {
                    firstSeen[key]?.variants = seen.variants + [v.name]
                } else {
                    firstSeen[key] = (variantDiagnostics.count, [v.name])
                    variantDiagnostics.append(d)
                }
            }
            if !expansion.diagnostics.hasErrors {
                if let first = byDocument[checked.identity] {
                    diagnostics.append(Diagnostic(SpecDiagnostics.duplicateVariant,
                        "variants '\(first)' and '\(v.name)' expand to the same spec; they are merged into '\(first)'",
                        at: sweepNode.range, path: "sweep"))
                    continue
                }
                byDocument[checked.identity] = v.name
            }
            result.variants.append(.init(name: v.name, choices: v.choices, spec: checked.evaluation.spec,
                                         touched: checked.touched))
        }
        for seen in firstSeen.values {
            var d = variantDiagnostics[seen.index]
            let others = seen.variants.count - 1
            d.notes.append(DiagnosticNote("in sweep variant '\(seen.variants[0])'" + (others > 0 ? " and \(others) other\(others == 1 ? "" : "s")" : "")))
            variantDiagnostics[seen.index] = d
        }
        diagnostics += variantDiagnostics
        result.diagnostics = diagnostics.sortedForOutput()
        return result
    }

    struct Evaluation {
        var all: [Diagnostic]
        var spec: Spec?
        /// Whether the document validated without errors.
        var validated = true
    }

    /// Validates a tree, builds its IR and runs every rule.
    static func evaluate(_ tree: SyntaxNode, environment: [String: String]) -> (Value?, Evaluation) {
        var validator = Validator(environment: environment)
        let document = validator.validate(tree, as: .object(SpecSchema.root), path: "")
        var all = validator.diagnostics
        var builder = SpecBuilder(validated: !validator.diagnostics.hasErrors)
        let spec = document.flatMap { builder.build($0) }
        all += builder.diagnostics
        if let spec {
            for rule in rules { all += rule(spec) }
        }
        return (document, Evaluation(all: all, spec: all.hasErrors ? nil : spec, validated: !validator.diagnostics.hasErrors))
    }
}

/// What makes two diagnostics "the same finding" across variants.
struct DiagnosticKey: Hashable {
    let code: String
    let range: SourceRange?
    let message: String

    init(_ d: Diagnostic) {
        code = d.id.code
        range = d.range
        message = d.message
    }
}
