import Architecture
import Diagnostics

/// Rules over the shapes that meet: inputs, taps, heads.
enum ShapeChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [inputSizes, tapPairs, heads, logitDistillation, supcon]

    /// Input size divisible by what the architecture down-samples; channels match the data.
    static func inputSizes(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let d = spec.data
        if d.channels == 2 {
            out.append(Diagnostic(SpecDiagnostics.outOfRange, "channels must be 1 or 3, found 2",
                                  at: d.value["preprocess"]?.range(of: "channels"), path: "data.preprocess.channels"))
        }
        if d.testFraction + d.valFraction >= 1 {
            out.append(Diagnostic(SpecDiagnostics.noTrainingSet,
                "test (\(Value.plain(d.testFraction))) and val (\(Value.plain(d.valFraction))) leave nothing to train on",
                at: d.value["split"]?.range(of: "test"), path: "data.split"))
        }
        if let fold = d.fold {
            if d.folds == nil {
                out.append(Diagnostic(SpecDiagnostics.missingKey, "'fold' needs 'folds'", at: d.value["split"]?.range(of: "fold"), path: "data.split.fold"))
            } else if let k = d.folds, fold >= k {
                out.append(Diagnostic(SpecDiagnostics.outOfRange, "fold \(fold) is outside 0..<\(k)", at: d.value["split"]?.range(of: "fold"), path: "data.split.fold"))
            }
        }
        for model in spec.models {
            let divisor = model.architecture.inputDivisor
            if d.height % divisor != 0 || d.width % divisor != 0 {
                out.append(Diagnostic(SpecDiagnostics.inputSize,
                    "input \(d.height)x\(d.width) is not divisible by \(divisor), as model '\(model.name)' (\(model.architecture.summary)) needs",
                    at: d.value["preprocess"]?.range(of: "size"), path: "data.preprocess.size",
                    notes: [DiagnosticNote("model '\(model.name)' defined here", at: model.nameRange)]))
            }
            if model.source["in_channels"] != nil, model.architecture.inChannels != d.channels {
                out.append(Diagnostic(SpecDiagnostics.inChannels,
                    "model '\(model.name)' takes \(model.architecture.inChannels) input channels but the data has \(d.channels)",
                    at: model.source.range(of: "in_channels"), path: "models.\(model.name).in_channels"))
            }
            if case .transunet(let t) = model.architecture {
                if t.decoderWidths.count != t.stageWidths.count + 1 {
                    out.append(Diagnostic(SpecDiagnostics.vitShape,
                        "a transunet with \(t.stageWidths.count) stages needs \(t.stageWidths.count + 1) decoder widths to reach full resolution, found \(t.decoderWidths.count)",
                        at: model.source.range(of: "decoder_widths"), path: "models.\(model.name).decoder_widths"))
                }
                if t.vitHeads > t.vitDim {
                    out.append(Diagnostic(SpecDiagnostics.vitShape,
                        "ViT with \(t.vitHeads) heads on \(t.vitDim) features leaves no features per head",
                        at: model.source["vit"]?.range(of: "heads"), path: "models.\(model.name).vit.heads"))
                }
            }
        }
        return out
    }

    struct Pairing {
        let stage: StageSpec
        let distill: DistillSpec
        let student: ModelSpec
        let teacher: ModelSpec
        let teacherStage: StageSpec
    }

    /// Distilling stages whose student and teacher models both resolve.
    static func pairings(_ spec: Spec) -> [Pairing] {
        spec.stages.compactMap { s in
            guard let d = s.distill, let student = spec.model(s.model.name), let ts = spec.stage(d.teacher.name),
                  let teacher = spec.model(ts.model.name) else { return nil }
            return Pairing(stage: s, distill: d, student: student, teacher: teacher, teacherStage: ts)
        }
    }

    static func tapNote(_ model: ModelSpec) -> DiagnosticNote {
        DiagnosticNote("'\(model.name)' (\(model.architecture.summary)) has taps: \(model.architecture.tapManifest.names.joined(separator: ", "))",
                       at: nil)
    }

    /// Resolves a tap name on a model, or explains why it cannot.
    static func tap(_ ref: Ref, of model: ModelSpec, role: String, path: String, _ out: inout [Diagnostic]) -> Tap? {
        let manifest = model.architecture.tapManifest
        if let t = manifest[ref.name] { return t }
        var fixIts: [FixIt] = []
        if let guess = Suggestions.closest(to: ref.name, in: manifest.names) {
            fixIts.append(FixIt("did you mean '\(guess)'?", range: ref.range, replacement: guess))
        }
        out.append(Diagnostic(SpecDiagnostics.unknownTap, "unknown tap '\(ref.name)' of \(role) model '\(model.name)'",
                              at: ref.range, path: path, notes: [tapNote(model)], fixIts: fixIts))
        return nil
    }

    static func tapPairs(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for p in pairings(spec) {
            for pair in p.distill.taps {
                let base = "stages.\(p.stage.name).distill.taps.\(pair.name)"
                let t = tap(pair.teacher, of: p.teacher, role: "teacher", path: "\(base).teacher", &out)
                let s = tap(pair.student, of: p.student, role: "student", path: "\(base).student", &out)
                guard let t, let s else { continue }
                var tokenTap = false
                for (tapValue, ref, role) in [(t, pair.teacher, "teacher"), (s, pair.student, "student")] where tapValue.stride == nil {
                    tokenTap = true
                    out.append(Diagnostic(SpecDiagnostics.tokenTap,
                        "\(role) tap '\(ref.name)' is a token sequence; feature distillation compares spatial maps",
                        at: ref.range, path: "\(base).\(role)",
                        notes: [DiagnosticNote("use the map after it, e.g. 'bottleneck'")]))
                }
                guard !tokenTap, let ts = t.stride, let ss = s.stride else { continue }
                checkChannels(pair, t, s, p, base, &out)
                checkSpatial(pair, ts, ss, base, spec.data, &out)
            }
        }
        return out
    }

    static func checkChannels(_ pair: TapPairSpec, _ t: Tap, _ s: Tap, _ p: Pairing, _ base: String, _ out: inout [Diagnostic]) {
        guard t.channels != s.channels, pair.lossKind != "attention" else { return }
        if let a = pair.adapter, a.kind == "conv1x1" { return }
        let identity = pair.adapter?.kind == "identity"
        out.append(Diagnostic(SpecDiagnostics.channelMismatch,
            "tap pair '\(pair.name)': teacher '\(t.name)' has \(t.channels) channels, student '\(s.name)' has \(s.channels)\(identity ? "; an identity adapter cannot change that" : "")",
            at: identity ? pair.adapter?.source.range(of: "kind") : pair.teacher.range, path: identity ? "\(base).adapter.kind" : base,
            notes: [DiagnosticNote("\(pair.lossKind) compares maps channel by channel")],
            fixIts: [FixIt("add 'adapter: {side: teacher}' (a 1x1 conv \(t.channels)->\(s.channels) on the teacher map) or 'adapter: {side: student}' (\(s.channels)->\(t.channels))")]))
    }

    static func checkSpatial(_ pair: TapPairSpec, _ ts: Int, _ ss: Int, _ base: String, _ data: DataSpec, _ out: inout [Diagnostic]) {
        let th = data.height / ts, sh = data.height / ss
        if ts == ss {
            if pair.resample != "none" {
                out.append(Diagnostic(SpecDiagnostics.uselessResample,
                    "tap pair '\(pair.name)': both maps are \(sh)x\(data.width / ss); 'resample: \(pair.resample)' does nothing",
                    at: pair.source.range(of: "resample"), path: "\(base).resample"))
            }
            return
        }
        if pair.resample == "none" {
            out.append(Diagnostic(SpecDiagnostics.spatialMismatch,
                "tap pair '\(pair.name)': teacher map is \(th)x\(data.width / ts), student map is \(sh)x\(data.width / ss)",
                at: pair.teacher.range, path: base,
                fixIts: [FixIt("add 'resample: \(ts > ss ? "bilinear" : "avgpool")' to bring the teacher map to the student's size")]))
        } else if pair.resample == "avgpool", ts > ss {
            out.append(Diagnostic(SpecDiagnostics.spatialMismatch,
                "tap pair '\(pair.name)': 'avgpool' only shrinks, but the teacher map (\(th)x\(th)) is smaller than the student's (\(sh)x\(sh))",
                at: pair.source.range(of: "resample"), path: "\(base).resample",
                fixIts: [FixIt("use 'resample: bilinear'", range: pair.source.range(of: "resample"), replacement: "bilinear")]))
        }
    }

    /// Loss terms name heads their model has, and fit their channel counts.
    static func heads(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for stage in spec.stages {
            guard let model = spec.model(stage.model.name) else { continue }
            let heads = model.architecture.heads
            for (i, term) in stage.loss.enumerated() {
                let path = "stages.\(stage.name).loss[\(i)]"
                guard let head = heads.first(where: { $0.name == term.head }) else {
                    out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownHead, "head", Ref(name: term.head, range: term.source.range(of: "head")),
                                                       heads.map(\.name), path: "\(path).head",
                                                       extra: [DiagnosticNote("model '\(model.name)' defined here", at: model.nameRange)]))
                    continue
                }
                if ["ce", "focal"].contains(term.kind), head.channels < 2 {
                    out.append(Diagnostic(SpecDiagnostics.lossHead,
                        "'\(term.kind)' needs a head with 2 or more classes; '\(head.name)' has \(head.channels) channel",
                        at: term.source.range(of: "kind"), path: "\(path).kind",
                        fixIts: [FixIt("use 'bce' or 'dice_bce' for a 1-channel head", range: term.source.range(of: "kind"), replacement: "dice_bce")]))
                }
                if term.kind == "mse", term.source.text("target") == "input", head.channels != model.architecture.inChannels {
                    out.append(Diagnostic(SpecDiagnostics.lossHead,
                        "'mse' reconstructs the input (\(model.architecture.inChannels) channels) but head '\(head.name)' has \(head.channels)",
                        at: term.source.range(of: "head"), path: "\(path).head"))
                }
            }
        }
        return out
    }

    /// Logit distillation: both heads exist and agree; softmax KL needs 2 or more channels.
    static func logitDistillation(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for p in pairings(spec) {
            guard let l = p.distill.logits else { continue }
            let path = "stages.\(p.stage.name).distill.logits"
            let headRef = Ref(name: l.head, range: l.source.range(of: "head"))
            guard let sh = p.student.architecture.heads.first(where: { $0.name == l.head }) else {
                out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownHead, "head", headRef, p.student.architecture.heads.map(\.name), path: "\(path).head"))
                continue
            }
            guard let th = p.teacher.architecture.heads.first(where: { $0.name == l.head }) else {
                out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownHead, "head", headRef, p.teacher.architecture.heads.map(\.name), path: "\(path).head"))
                continue
            }
            if sh.channels != th.channels {
                out.append(Diagnostic(SpecDiagnostics.logitChannels,
                    "head '\(l.head)': teacher '\(p.teacher.name)' has \(th.channels) channels, student '\(p.student.name)' has \(sh.channels)",
                    at: l.source.range(of: "head"), path: "\(path).head"))
            }
            if l.kind == "kl", sh.channels == 1 {
                let kindRange = l.source.range(of: "kind")
                let explanation = DiagnosticNote("softmax over one channel is 1 everywhere, so the KL is 0 and gives no gradient: the term does nothing")
                if l.acceptZeroGradient {
                    out.append(Diagnostic(SpecDiagnostics.softmaxOneChannelAccepted,
                        "softmax KL on the 1-channel head '\(l.head)' is identically zero (accepted by 'accept_zero_gradient')",
                        at: kindRange, path: "\(path).kind", notes: [explanation]))
                } else {
                    out.append(Diagnostic(SpecDiagnostics.softmaxOneChannel,
                        "softmax KL on the 1-channel head '\(l.head)' is identically zero",
                        at: kindRange, path: "\(path).kind",
                        notes: [explanation, DiagnosticNote("to reproduce the study's defect on purpose, add 'accept_zero_gradient: true'")],
                        fixIts: [FixIt("use 'binary_kl', the Bernoulli KL for sigmoid outputs", range: kindRange, replacement: "binary_kl")]))
                }
            }
        }
        return out
    }

    static func supcon(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for p in pairings(spec) {
            guard let sc = p.distill.supcon else { continue }
            let path = "stages.\(p.stage.name).distill.supcon.tap"
            if let t = tap(sc.tap, of: p.student, role: "student", path: path, &out), t.stride == nil {
                out.append(Diagnostic(SpecDiagnostics.tokenTap, "supcon needs a spatial map; '\(t.name)' is a token sequence",
                                      at: sc.tap.range, path: path))
            }
        }
        return out
    }
}
