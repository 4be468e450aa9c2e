import Architecture
import Foundation
@testable import Spec
import StageConfig
import Testing

/// The language's declaration (SpecSchema: key, type, range, enum values, default) and
/// the typed configuration's readers and encoders describe the same fields. For every
/// object the spec builder hands to a reader, a sample built from the declaration alone
/// (defaults, and the smallest valid value where there is none) must be read, and
/// encoded back to itself; every bound the declaration writes must be the reader's
/// (one step outside it refused, the bound itself accepted); every enumeration's
/// values accepted and an unknown one refused. A field added to one side only, a
/// default the encoder rewrites, or a range written twice and drifted fails here.
@Suite struct DeclarationConformanceTests {
    /// A schema object and the reader the spec builder gives it to, read and encoded again.
    struct Pair: CustomTestStringConvertible, Sendable {
        let schema: ObjectSchema
        let roundTrip: @Sendable (JSON) throws -> JSON
        var testDescription: String { schema.name }
        /// `builder`: what the spec builder does to a key before the reader sees the object (a model's
        /// `in_channels` comes from `data.preprocess.channels`; a subset's `of` becomes its parent; one
        /// normalisation becomes a list); nil removes the key. Those keys are left out of the comparison.
        init<T: ConfigCodable>(_ schema: ObjectSchema, _ type: T.Type, builder: [String: @Sendable (JSON) -> JSON?] = [:]) {
            self.schema = schema
            roundTrip = { json in
                guard case .object(var o) = json else { return try T(json: json, at: schema.name).json }
                for (k, rewrite) in builder { o[k] = o[k].flatMap(rewrite) }
                guard case .object(var back) = try T(json: .object(o), at: schema.name).json, case .object(let given) = json else { return .null }
                for k in builder.keys { back[k] = given[k] }
                return .object(back)
            }
        }
    }

    static let pairs: [Pair] = [
        Pair(SpecSchema.evaluate, EvaluateConfiguration.self), Pair(SpecSchema.report, ComparisonSettings.self),
        Pair(SpecSchema.slurm, SlurmSettings.self), Pair(SpecSchema.phantom, PhantomSettings.self),
        Pair(SpecSchema.split, SplitSettings.self), Pair(SpecSchema.augment, AugmentationSettings.self),
        Pair(SpecSchema.optimizer, OptimizerSettings.self), Pair(SpecSchema.schedule, LearningRateSchedule.self),
        Pair(SpecSchema.select, CheckpointSelection.self), Pair(SpecSchema.lossTerm, SupervisedTerm.self),
        Pair(SpecSchema.tapPair, TapPair.self), Pair(SpecSchema.logits, LogitTerm.self), Pair(SpecSchema.supcon, SupConTerm.self),
        Pair(SpecSchema.rename, WeightRename.self), Pair(SpecSchema.source, DataSource.self),
        Pair(SpecSchema.model, ModelArchitecture.self, builder: ["in_channels": { $0 == .null ? .int(1) : $0 }]),
        Pair(SpecSchema.subset, SubsetLevel.self, builder: ["of": { _ in nil }]),
        Pair(SpecSchema.preprocess, Preprocessing.self, builder: [
            "normalize": { $0.string.map { .array([.object(["kind": .string($0)])]) } ?? $0 },
            "size": { if case .int(let n) = $0 { return .array([.int(n), .int(n)]) } else { return $0 } },
        ]),
        // Not here: `preprocess`, whose `normalize` the builder rewrites (one name for every modality, a
        // mapping per kind) before its reader; and the objects the builder assembles from several places
        // (a stage, a subset's parent, the model's channels and heads).
    ]

    /// The smallest value a type accepts, as the declaration gives it.
    static func sample(_ type: SchemaType) -> JSON {
        switch type {
        case .string, .path: return .string("x")
        case .identifier: return .string("x")
        case .integer(let min, _): return .int(min ?? 0)
        case .number(let min, let exclusive, let max): return .number(exclusive ? ((min ?? 0) + (max ?? (min ?? 0) + 2)) / 2 : min ?? 0)
        case .boolean: return .bool(false)
        case .enumeration(let names): return .string(names[0])
        case .list(let item, let minCount, _): return .array(Array(repeating: sample(item), count: minCount))
        case .object(let o): return sample(o, case: o.discriminator?.defaultCase ?? o.discriminator?.cases.first?.name)
        case .dictionary: return .object([:])
        case .oneOf(let alternatives): return sample(alternatives[0])
        case .any: return .null
        }
    }

    /// An object as the builder completes it: every field's default, the smallest valid value of
    /// a required field, `null` for an optional one without a default; `exactlyOne` gets its first key.
    static func sample(_ o: ObjectSchema, case name: String?, present: String? = nil) -> JSON {
        let present = present ?? o.exactlyOne.first
        var members: [String: JSON] = [:]
        for f in o.fields(for: name) {
            if f.key == o.discriminator?.key, let name { members[f.key] = .string(name); continue }
            if let d = f.defaultValue {
                // A nested object's default (`{}`) is completed by its own declaration, as the checker completes it.
                if case .object(let inner) = f.type, case .object(let given) = d.json,
                   case .object(var completed) = sample(inner, case: inner.discriminator?.defaultCase) {
                    for (k, v) in given { completed[k] = v }
                    members[f.key] = .object(completed)
                } else {
                    members[f.key] = d.json
                }
            }
            else if f.required || f.key == present { members[f.key] = sample(f.type) }
            else { members[f.key] = .null }
        }
        return .object(members)
    }

    /// One sample per discriminator case and per key of `exactlyOne`, with what names it.
    static func samples(_ o: ObjectSchema) -> [(name: String, case: String?, json: JSON)] {
        let cases: [String?] = o.discriminator.map { $0.cases.map(\.name) } ?? [nil]
        let present: [String?] = o.exactlyOne.isEmpty ? [nil] : o.exactlyOne
        return cases.flatMap { c in
            present.map { p in (o.name + (c.map { " (\($0))" } ?? "") + (p.map { " with \($0)" } ?? ""), c, sample(o, case: c, present: p)) }
        }
    }

    /// Reads a sample; nil when the reader refuses it for a rule between fields that the declaration
    /// does not state (a rename's `prefix` needs its `to`), which the builder's diagnostics cover.
    static func read(_ pair: Pair, _ sample: JSON) throws -> JSON? {
        do { return try pair.roundTrip(sample) } catch let e as ConfigError {
            if case .inconsistent = e.problem { return nil }
            throw e
        }
    }

    @Test(arguments: pairs)
    func theReaderReadsWhatTheDeclarationDescribesAndEncodesItBack(_ pair: Pair) throws {
        var read = 0
        for (name, _, sample) in Self.samples(pair.schema) {
            guard let back = try Self.read(pair, sample) else { continue }
            read += 1
            // Keys the canonical form leaves out at these values (the 3D keys of 2D networks and data).
            var expected = sample
            if case .object(var members) = sample {
                for f in pair.schema.fields(for: nil) + (pair.schema.discriminator?.cases.flatMap(\.fields) ?? [])
                where f.omittedAt.contains(where: { $0.json == members[f.key] }) { members[f.key] = nil }
                expected = .object(members)
            }
            #expect(back == expected, "\(name): declared \(expected.canonical), encoded \(back.canonical)")
        }
        #expect(read > 0, "no sample of \(pair.schema.name) was read")
    }

    /// Values one step outside a declared bound, and the bound itself.
    static func probes(_ type: SchemaType) -> [(JSON, Bool)] {
        switch type {
        case .integer(let min, let max):
            return (min.map { [(.int($0 - 1), false), (.int($0), true)] } ?? []) + (max.map { [(.int($0), true), (.int($0 + 1), false)] } ?? [])
        case .number(let min, let exclusive, let max):
            var out: [(JSON, Bool)] = []
            if let min { out += exclusive ? [(.number(min), false), (.number(min + 1e-9), true)] : [(.number(min - 1e-9), false), (.number(min), true)] }
            if let max { out += [(.number(max), true), (.number(max + 1e-9), false)] }
            return out
        case .enumeration(let names):
            return names.map { (.string($0), true) } + [(.string("no-such-value"), false)]
        default:
            return []
        }
    }

    @Test(arguments: pairs)
    func theReaderHoldsEveryDeclaredBoundAndValue(_ pair: Pair) throws {
        for (sampleName, name, sample) in Self.samples(pair.schema) {
            guard case .object(let base) = sample, try Self.read(pair, sample) != nil else { continue }
            for f in pair.schema.fields(for: name) where f.key != pair.schema.discriminator?.key && base[f.key] != nil {
                for (value, accepted) in Self.probes(f.type) {
                    var o = base
                    o[f.key] = value
                    let outcome: Bool?  // nil: refused by a rule between fields, not by this value
                    do { outcome = try Self.read(pair, .object(o)) != nil ? true : nil } catch { outcome = false }
                    guard let read = outcome else { continue }
                    #expect(read == accepted, "\(sampleName): \(f.key) = \(value.canonical): the declaration \(accepted ? "accepts" : "refuses") it, the reader \(read ? "accepts" : "refuses") it")
                }
            }
        }
    }

    /// A training stage's configuration is assembled by the planner, so it has no sample of its own:
    /// the quickstart's teacher is the sample, and the stage fields the spec writes as they are
    /// (`TrainingConfiguration.recipe`) are probed at their declared bounds.
    @Test func theTrainingReaderHoldsTheStageFieldsBounds() throws {
        let plan = try StageConfigTests.plan("specs/quickstart.yaml")
        let stage = try #require(plan.stages.first { $0.kind == .train })
        guard case .object(let base) = stage.config.json else { Issue.record("not an object"); return }
        for f in TrainingConfiguration.recipe {
            for (value, accepted) in Self.probes(f.type) {
                var o = base
                o[f.key] = value
                let read = (try? TrainingConfiguration(json: .object(o), at: "params")) != nil
                #expect(read == accepted, "train stage: \(f.key) = \(value.canonical): the declaration \(accepted ? "accepts" : "refuses") it, the reader \(read ? "accepts" : "refuses") it")
            }
        }
    }
}
