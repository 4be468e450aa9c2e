import Diagnostics
import Foundation
@testable import Spec
import SpecSyntax
import Testing

/// A sweep variant's IR is built from its base's, rebuilding only the units its
/// overrides touch; it must be exactly the IR a full build of the variant's
/// document gives.
@Suite struct IncrementalBuildTests {
    static let sweeps = ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/phantom-study-replication.yaml",
                         "specs/phantom-organs.yaml", "specs/thesis/ablation.yaml"]

    @Test(arguments: sweeps)
    func everyVariantEqualsAFullBuildOfItsDocument(_ path: String) throws {
        let checked = try #require(SpecChecker.check(path: path, loader: SpecLoader(workingDirectory: Fixtures.repository), environment: [:]))
        #expect(!checked.diagnostics.hasErrors)
        #expect(checked.variants.count > 1)
        for variant in checked.variants {
            let spec = try #require(variant.spec, "\(variant.name)")
            var builder = SpecBuilder(validated: true)
            let built = builder.build(spec.document)
            let full = try #require(built)
            #expect(builder.diagnostics.isEmpty)
            #expect(String(reflecting: spec) == String(reflecting: full), "\(path) variant \(variant.name)")
        }
    }

    /// A grid whose overrides reach a discriminator (`cwd` and `infonce` share the key
    /// `temperature` with different defaults), a key below it, a dictionary entry, a list
    /// item, a model's list and whole objects, and whose explicit variants repeat grid
    /// points by other paths.
    static let reaching = """
        data:
          source: {phantom: {}}
          preprocess: {size: 64}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          t: {arch: unet, widths: [16, 32], bottleneck: 64}
          s: {arch: unet, widths: [4, 8], bottleneck: 16, convs_per_block: 1}
        stages:
          t: {model: t, data: full, loss: [{kind: dice_bce}], optimizer: {kind: adamw, lr: 0.001}, epochs: 4, batch: 8}
          s:
            model: s
            data: half
            loss: [{kind: dice}, {kind: bce, weight: 0.5}]
            optimizer: {kind: rmsprop, lr: 0.01}
            epochs: 4
            batch: 8
            distill:
              teacher: t
              taps:
                ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}, loss: {kind: infonce}}
                dd: {teacher: decoder.0, student: decoder.0, adapter: {side: teacher}}
        sweep:
          max_variants: 1000
          axes:
            kind: {path: stages.s.distill.taps.ee.loss.kind, values: {nce: infonce, cwd: cwd}}
            tau: {path: stages.s.distill.taps.ee.loss.temperature, values: {default: 0.1, hot: 2}}
            lr: {path: stages.s.optimizer.lr, values: {base: 0.01, high: 0.05}}
            bce: {path: 'stages.s.loss[1].weight', values: {half: 0.5, one: 1}}
            widths: {path: models.s.widths, values: {narrow: [4, 8], wide: [8, 16]}}
          variants:
            whole-loss: {stages.s.distill.taps.ee.loss: {kind: infonce, temperature: 2}}
            whole-optimizer: {stages.s.optimizer: {kind: rmsprop, lr: 0.05}}
            whole-pair: {stages.s.distill.taps.dd: {teacher: decoder.0, student: decoder.0, adapter: {side: teacher}, weight: 1}}
            cwd-default: {stages.s.distill.taps.ee.loss: {kind: cwd}}
            cwd-kind: {stages.s.distill.taps.ee.loss.kind: cwd}
        """

    /// Every variant's incrementally validated document is what validating its whole tree
    /// gives, and two variants are merged exactly when those documents are equal.
    @Test func reusedPartsEqualAFullValidationOfEveryVariant() throws {
        let source = SourceFile(displayPath: "reaching.yaml", text: Self.reaching)
        let loaded = SpecLoader(workingDirectory: Fixtures.repository).load(file: source, directory: Fixtures.repository)
        let root = try #require(loaded.root)
        let (document, base) = SpecChecker.evaluate(root, environment: [:])
        #expect(!base.all.hasErrors)
        let baseDocument = try #require(document)
        let sweepNode = try #require(root["sweep"])
        var expansion = SweepExpansion()
        let variants = expansion.expand(root: root, sweepNode: sweepNode, sweep: try #require(baseDocument["sweep"]))
        #expect(expansion.diagnostics.isEmpty)
        #expect(variants.count == 2 * 2 * 2 * 2 * 2 + 5)

        let tree = SyntaxNode(.mapping((root.entries ?? []).filter { $0.key != "sweep" }), range: root.range)
        var incremental = IncrementalChecker(baseTree: tree, baseDocument: baseDocument, environment: [:],
                                             baseValidated: base.validated, baseSpec: base.spec)
        var identities: [String: String] = [:], documents: [String: String] = [:]
        for v in variants {
            var whole = tree
            for o in v.overrides { whole = o.path.write(o.value, into: whole) }
            let (document, evaluation) = SpecChecker.evaluate(whole, environment: [:])
            let checked = incremental.evaluate(v.overrides)
            var reused = try #require(checked.evaluation.spec?.document, "\(v.name)")
            if case .object(let members) = reused.kind { reused.kind = .object(members.filter { $0.key != "sweep" }) }
            #expect(String(reflecting: reused) == String(reflecting: try #require(document)), "\(v.name)")
            #expect(evaluation.all.map(\.message) == checked.evaluation.all.map(\.message), "\(v.name)")
            // The stage rebuilt from the base's parts is the stage a full build gives.
            let spec = try #require(checked.evaluation.spec)
            var builder = SpecBuilder(validated: true)
            let built = builder.build(spec.document)
            let full = try #require(built)
            #expect(String(reflecting: spec) == String(reflecting: full), "\(v.name)")
            identities[v.name] = checked.identity
            documents[v.name] = document?.canonicalText
        }
        // Explicit variants that repeat grid points by another path are the same spec; the rest differ.
        let pairs = variants.indices.flatMap { i in variants.indices.filter { $0 > i }.map { (variants[i].name, variants[$0].name) } }
        var merged = 0
        for (a, b) in pairs {
            let same = documents[a] == documents[b]
            #expect((identities[a] == identities[b]) == same, "\(a) and \(b)")
            if same { merged += 1 }
        }
        #expect(merged >= 4)
    }

    /// The comparison above can fail: a variant whose touched stage kept the base's value differs.
    @Test func aStaleUnitIsSeen() throws {
        let checked = try #require(SpecChecker.check(path: "specs/quickstart.yaml", loader: SpecLoader(workingDirectory: Fixtures.repository), environment: [:]))
        let (a, b) = (try #require(checked.variants.first?.spec), try #require(checked.variants.last?.spec))
        var stale = b
        stale.stages = a.stages
        #expect(String(reflecting: stale) != String(reflecting: b))
    }
}
