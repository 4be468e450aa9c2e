import Architecture
import Diagnostics
import Foundation
import Plan
@testable import Spec
import StageConfig
import Testing

/// The typed stage configuration: one canonical encoding, read back exactly, and
/// read strictly (every missing, unknown or unknown-valued field is named).
@Suite struct StageConfigTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let specs = ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/thesis/ablation.yaml", "specs/reproduce-thesis-bugs.yaml"]

    static func plan(_ path: String) throws -> ExecutionPlan {
        let checked = try #require(SpecChecker.check(path: path, loader: SpecLoader(workingDirectory: repository), environment: [:]))
        #expect(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer.text(checked.diagnostics))")
        let dir = ((repository as NSString).appendingPathComponent(path) as NSString).deletingLastPathComponent
        return Planner(throughput: .fallback, specDirectory: dir).plan(checked)
    }

    /// A distill stage's params from the quickstart, as a plan file holds them.
    static func distillParams() throws -> JSON {
        let plan = try plan("specs/quickstart.yaml")
        return try #require(plan.stages.first { $0.kind == .distill }).config.json
    }

    /// `json` with the value at `path` (dotted; `[i]` indexes a list) replaced, or removed when nil.
    static func editing(_ json: JSON, _ path: [String], _ value: JSON?) -> JSON {
        guard let key = path.first else { return value ?? .null }
        switch json {
        case .object(var o):
            if path.count == 1 { o[key] = value } else { o[key] = editing(o[key] ?? .null, Array(path.dropFirst()), value) }
            return .object(o)
        case .array(var a):
            guard let i = Int(key), a.indices.contains(i) else { return json }
            a[i] = editing(a[i], Array(path.dropFirst()), value ?? .null)
            return .array(a)
        default:
            return json
        }
    }

    static func readError(_ params: JSON, kind: StageKind = .distill) -> ConfigError? {
        do {
            _ = try StageConfiguration(kind: kind, params: params)
            return nil
        } catch {
            return error as? ConfigError
        }
    }

    @Test(arguments: specs)
    func everyStageOfEveryPlanReadsBackToItself(_ path: String) throws {
        let plan = try Self.plan(path)
        for s in plan.stages {
            let read = try StageConfiguration(kind: s.kind, params: JSON.parse(Data(s.config.json.canonical.utf8)) ?? .null)
            #expect(read == s.config, "\(path): stage \(s.shortHash) (\(s.label)) reads back differently")
            #expect(read.json == s.config.json)
        }
    }

    @Test func aMissingFieldIsAnErrorNamingIt() throws {
        let params = try Self.distillParams()
        let e = try #require(Self.readError(Self.editing(params, ["distill", "taps", "bb", "resample"], nil)))
        #expect(e.field == "params.distill.taps.bb.resample")
        #expect(e.problem == .missing)
        // An optional field is written as null, never left out: leaving it out is an error too.
        let clip = try #require(Self.readError(Self.editing(params, ["clip_grad_norm"], nil)))
        #expect(clip.field == "params.clip_grad_norm" && clip.problem == .missing)
    }

    @Test func anUnknownFieldIsAnErrorNamingItAndItsValue() throws {
        let params = try Self.distillParams()
        let e = try #require(Self.readError(Self.editing(params, ["optimizer", "momentum"], .number(0.9))))
        #expect(e.field == "params.optimizer.momentum")
        #expect(e.problem == .unknownField)
        #expect(e.value == "0.9")
    }

    @Test func anUnknownValueIsAnErrorListingTheKnownOnes() throws {
        let params = try Self.distillParams()
        let resample = try #require(Self.readError(Self.editing(params, ["distill", "taps", "bb", "resample"], .string("bicubic"))))
        #expect(resample.description == "field 'params.distill.taps.bb.resample' has the unknown value \"bicubic\"; expected one of 'none', 'bilinear', 'nearest', 'avgpool'")
        let loss = try #require(Self.readError(Self.editing(params, ["loss", "0", "kind"], .string("hinge"))))
        #expect(loss.field == "params.loss[0].kind")
        #expect(loss.problem == .unknownValue(expected: SupervisedLoss.kinds))
        let logits = try #require(Self.readError(Self.editing(params, ["distill", "logits", "kind"], .string("softmax_kl"))))
        #expect(logits.field == "params.distill.logits.kind")
        let axis = try #require(Self.readError(Self.editing(try Self.plan("specs/quickstart.yaml").stages[0].config.json,
                                                            ["preprocess", "slice_axis"], .string("oblique")), kind: .prepare))
        #expect(axis.field == "params.preprocess.slice_axis" && axis.value == "\"oblique\"")
    }

    @Test func wrongTypesAndRangesAreErrors() throws {
        let params = try Self.distillParams()
        #expect(Self.readError(Self.editing(params, ["batch"], .int(0)))?.problem == .outOfRange("between 1 and 65536"))
        #expect(Self.readError(Self.editing(params, ["epochs"], .string("40")))?.problem == .wrongType(expected: "an integer"))
        #expect(Self.readError(Self.editing(params, ["optimizer", "lr"], .number(-1)))?.field == "params.optimizer.lr")
        // A train stage with distillation terms (or a distill stage without) says so.
        #expect(Self.readError(params, kind: .train)?.field == "params.distill")
        #expect(Self.readError(Self.editing(params, ["distill"], .null))?.field == "params.distill")
    }

    @Test func theCanonicalEncodingIgnoresHowTheSpecWroteIt() throws {
        // `size: 64` and `size: [64, 64]`, `lr: 5e-3` and `lr: 0.005`, and key order plan to the same stages.
        let a = try Self.plan("specs/quickstart.yaml")
        let text = try String(contentsOfFile: Self.repository + "/specs/quickstart.yaml", encoding: .utf8)
            .replacingOccurrences(of: "    size: 96\n", with: "    size: [96, 96]\n").replacingOccurrences(of: "lr: 5.0e-3", with: "lr: 0.005")
        let checked = SpecChecker.check(source: SourceFile(displayPath: "q.yaml", text: text), directory: Self.repository + "/specs")
        let b = Planner(throughput: .fallback, specDirectory: Self.repository + "/specs").plan(checked)
        #expect(a.stages.map(\.hash) == b.stages.map(\.hash))
    }

    /// The schema's discriminated objects and the typed enums name the same kinds: a
    /// kind the checker accepts is one the runtime can read, and the other way round.
    @Test func theSchemaAndTheTypesKnowTheSameKinds() throws {
        let schema = try JSONSerialization.jsonObject(with: Data(SchemaExport.jsonSchema().utf8)) as? [String: Any]
        let defs = try #require(schema?["$defs"] as? [String: Any])
        func kinds(_ def: String, _ key: String = "kind") throws -> Set<String> {
            let properties = (defs[def] as? [String: Any])?["properties"] as? [String: Any]
            return Set(try #require((properties?[key] as? [String: Any])?["enum"] as? [String]))
        }
        #expect(try kinds("LossTerm") == Set(SupervisedLoss.kinds))
        #expect(try kinds("Optimizer") == Set(OptimizerAlgorithm.kinds))
        #expect(try kinds("Schedule") == Set(LearningRateSchedule.kinds))
        #expect(try kinds("FeatureLoss") == Set(FeatureLoss.kinds))
        #expect(try kinds("LogitDistillation") == Set(LogitLoss.kinds))
        #expect(try kinds("Adapter") == Set(Adapter.kinds))
        #expect(try kinds("Model", "arch") == Set(ModelArchitecture.archNames))
    }

    /// Every kind of every discriminated block, written with its defaults, checks and
    /// reads as the typed value of that kind (no E0001 anywhere).
    @Test func everyKindWithItsDefaultsReadsAsItsType() throws {
        let base = try String(contentsOfFile: Self.repository + "/specs/quickstart.yaml", encoding: .utf8)
        func check(_ replacing: String, _ with: String) throws -> Spec {
            #expect(base.contains(replacing))
            let text = base.replacingOccurrences(of: replacing, with: with)
            let checked = SpecChecker.check(source: SourceFile(displayPath: "k.yaml", text: text), directory: Self.repository + "/specs")
            #expect(!checked.diagnostics.hasErrors, "\(with): \(DiagnosticRenderer.text(checked.diagnostics))")
            return try #require(checked.base)
        }
        let optimizer = "optimizer: {kind: adamw, lr: 5.0e-3}\n    epochs: 40\n    batch: 8\n    distill"
        for kind in OptimizerAlgorithm.kinds {
            let spec = try check(optimizer, "optimizer: {kind: \(kind), lr: 5.0e-3}\n    epochs: 40\n    batch: 8\n    distill")
            #expect(spec.stage("kd")?.optimizer.algorithm.kind == kind)
        }
        for (kind, extra) in [("constant", ""), ("cosine", ""), ("poly", ""), ("step", ", step_size: 5")] {
            let spec = try check(optimizer, "optimizer: {kind: adamw, lr: 5.0e-3}\n    schedule: {kind: \(kind)\(extra)}\n    epochs: 40\n    batch: 8\n    distill")
            #expect(spec.stage("kd")?.schedule.json["kind"] == .string(kind))
        }
        for kind in ["dice", "bce", "dice_bce"] {
            let spec = try check("loss: [{kind: dice_bce, weight: 0.5}]", "loss: [{kind: \(kind), weight: 0.5}]")
            #expect(spec.stage("kd")?.loss.first?.term.loss.kind == kind)
        }
        for kind in FeatureLoss.kinds {
            let spec = try check("loss: {kind: infonce, temperature: 0.4}\n          weight: 0.1", "loss: {kind: \(kind)}\n          weight: 0.1")
            #expect(spec.stage("kd")?.distill?.taps.first { $0.name == "ee" }?.pair.loss.kind == kind)
        }
        let identity = try check("student: pool.1\n          adapter: {side: teacher}", "student: pool.1\n          adapter: {kind: conv1x1, side: student, trainable: false}")
        #expect(identity.stage("kd")?.distill?.taps.first { $0.name == "ee" }?.pair.adapter == .conv1x1(side: .student, trainable: false, reinitEachStep: false))
    }
}

/// A bound is written once: the spec language's schema, the typed reader and the CLI
/// accept the same phantoms (they once said size >= 32, >= 8 and >= 16).
@Suite struct DeclaredOnceTests {
    @Test(arguments: [("cases", PhantomSettings.casesRange), ("size", PhantomSettings.sizeRange), ("slices", PhantomSettings.slicesRange)])
    func phantomBoundsAgreeBetweenSchemaAndReader(_ key: String, _ range: ClosedRange<Int>) throws {
        let field = try #require(SpecSchema.phantom.fields.first(where: { $0.key == key }))
        guard case .integer(let min, let max) = field.type else { Issue.record("\(key) is not an integer field"); return }
        #expect(min == range.lowerBound && max == range.upperBound, "schema \(key): \(String(describing: min))...\(String(describing: max)), reader \(range)")
        guard case .object(var o) = SpecSchema.phantom.defaults else { Issue.record("no defaults"); return }
        for (value, accepted) in [(range.lowerBound - 1, false), (range.lowerBound, true), (range.upperBound, true), (range.upperBound + 1, false)] {
            o[key] = .int(value)
            let read = (try? PhantomSettings(json: .object(o), at: "phantom")) != nil
            #expect(read == accepted, "the reader on \(key) = \(value)")
        }
    }

    /// Every kind the language names is one the typed configuration reads, and the other
    /// way round: the readers switch over enums, so no kind falls through to another.
    @Test func everyKindOfTheLanguageIsAKindOfTheReader() throws {
        let pairs: [(ObjectSchema, [String])] = [
            (SpecSchema.lossTerm, SupervisedLoss.kinds), (SpecSchema.featureLoss, FeatureLoss.kinds), (SpecSchema.adapter, Adapter.kinds),
            (SpecSchema.logits, LogitLoss.kinds), (SpecSchema.optimizer, OptimizerAlgorithm.kinds), (SpecSchema.schedule, LearningRateSchedule.kinds),
        ]
        for (schema, kinds) in pairs {
            let named = try #require(schema.discriminator).cases.map(\.name)
            #expect(Set(named) == Set(kinds), "\(schema.name): the schema names \(named), the reader reads \(kinds)")
        }
        #expect(Set(try #require(SpecSchema.model.discriminator).cases.map(\.name)) == Set(ModelArchitecture.archNames))
        let augment = Set(SpecSchema.augment.fields.map(\.key))
        #expect(Set(AugmentationSettings.rangedTransforms.map(\.key)).isSubset(of: augment))
        #expect(augment == Set(AugmentationSettings.rangedTransforms.map(\.key) + ["flip", "rotate90", "elastic"]), "\(augment)")
        guard case .enumeration(let names) = SpecSchema.normalizationName else { Issue.record("normalize names are not an enumeration"); return }
        #expect(Set(names + ["percentile"]) == Set(Normalization.Kind.allCases.map(\.rawValue)))
    }
}
