import Architecture
import Diagnostics
import StageConfig

/// Rules over the shapes that meet: inputs, taps, heads.
enum ShapeChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [inputSizes, dimensions, tapPairs, heads, headClasses, logitDistillation, supcon]

    /// Every network a stage trains (or loads) sees what the data gives: slices for 2D
    /// networks, patches of volumes for 3D ones.
    static func dimensions(_ spec: Spec) -> [Diagnostic] {
        let data = spec.data.preprocess.spatialDimensions
        var out: [Diagnostic] = []
        for stage in spec.stages {
            guard let model = spec.model(stage.model.name), model.architecture.spatialDimensions != data else { continue }
            let dims = model.architecture.spatialDimensions
            out.append(Diagnostic(SpecDiagnostics.dimensions,
                "stage '\(stage.name)' trains the \(dims)D model '\(model.name)' on \(data == 3 ? "patches of volumes ('patch')" : "slices")",
                at: stage.model.range, path: "stages.\(stage.name).model",
                notes: [DiagnosticNote("model '\(model.name)' defined here", at: model.nameRange)],
                fixIts: [FixIt(dims == 3 ? "add 'patch: [depth, height, width]' to data.preprocess" : "add 'dims: 3' to model '\(model.name)'")]))
        }
        return out
    }

    /// Input size divisible by what the architecture down-samples; channels match the data.
    static func inputSizes(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let d = spec.data
        if d.split.test + d.split.val >= 1 {
            out.append(Diagnostic(SpecDiagnostics.noTrainingSet,
                "test (\(Value.plain(d.split.test))) and val (\(Value.plain(d.split.val))) leave nothing to train on",
                at: d.value["split"]?.range(of: "test"), path: "data.split"))
        }
        if let fold = d.split.fold {
            if d.split.folds == nil {
                out.append(Diagnostic(SpecDiagnostics.missingKey, "'fold' needs 'folds'", at: d.value["split"]?.range(of: "fold"), path: "data.split.fold"))
            } else if let k = d.split.folds, fold >= k {
                out.append(Diagnostic(SpecDiagnostics.outOfRange, "fold \(fold) is outside 0..<\(k)", at: d.value["split"]?.range(of: "fold"), path: "data.split.fold"))
            }
        }
        // A quarter turn would change a non-square slice's shape; the augmenter skips it there.
        let extent = d.preprocess.inputExtent, volumes = d.preprocess.volume != nil
        if d.augment?.rotate90 != nil, extent[extent.count - 2] != extent[extent.count - 1] {
            out.append(Diagnostic(SpecDiagnostics.squareOnly,
                "'rotate90' never applies: \(volumes ? "patches" : "slices") are \(extent.map(String.init).joined(separator: "x")), and a quarter turn needs square \(volumes ? "planes" : "ones")",
                at: d.value["augment"]?.range(of: "rotate90"), path: "data.augment.rotate90",
                fixIts: [FixIt("remove 'rotate90', or make 'preprocess.\(volumes ? "patch" : "size")' square\(volumes ? " in the plane" : "")")]))
        }
        if !spec.evaluate.config.mirror.isEmpty, !volumes {
            out.append(Diagnostic(SpecDiagnostics.unknownKey, "'mirror' applies to 3D networks predicted by sliding windows; slices are predicted whole",
                                  at: spec.evaluate.source.range(of: "mirror"), path: "evaluate.mirror", fixIts: [FixIt("remove 'mirror'")]))
        }
        if d.augment?.flip?.depth == true, !volumes {
            let axes = d.value["augment"]?["flip"]?["axes"]
            let item = axes?.list.first { $0.string == "depth" }
            out.append(Diagnostic(SpecDiagnostics.unknownValue, "flip axis 'depth' applies to 3D patches; slices have no depth",
                                  at: item?.range ?? axes?.range, path: "data.augment.flip.axes"))
        }
        // The phantom's modalities are known before anything is read.
        if case .phantom(let p) = d.source {
            let pre = d.value["preprocess"]
            if let chosen = d.preprocess.modalities {
                for (i, name) in chosen.enumerated() where !p.modalities.contains(name) {
                    let item = pre?["modalities"]?.list[safe: i]
                    out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownValue, "modality", Ref(name: name, range: item?.range), p.modalities,
                                                       path: "data.preprocess.modalities[\(i)]"))
                }
            } else if p.modalities.count > 1 {
                out.append(Diagnostic(SpecDiagnostics.missingKey,
                    "the phantom has \(p.modalities.count) modalities (\(p.modalities.joined(separator: ", "))); say which become input channels",
                    at: pre?.range ?? d.value.range, path: "data.preprocess.modalities",
                    fixIts: [FixIt("add 'modalities: [\(p.modalities.joined(separator: ", "))]' and 'channels: \(p.modalities.count)'")]))
            }
        }
        for model in spec.models {
            let divisor = model.architecture.inputDivisor
            if case .unet(let u) = model.architecture, let levels = u.volume {
                if let patch = d.preprocess.volume?.patch, zip(patch, levels.divisor).contains(where: { $0 % $1 != 0 }) {
                    out.append(Diagnostic(SpecDiagnostics.inputSize,
                        "patch \(patch.map(String.init).joined(separator: "x")) is not divisible by \(levels.divisor.map(String.init).joined(separator: "x")), the pooling of model '\(model.name)' (\(model.architecture.summary)) per axis",
                        at: d.value["preprocess"]?.range(of: "patch"), path: "data.preprocess.patch",
                        notes: [DiagnosticNote("model '\(model.name)' defined here", at: model.nameRange)]))
                }
            } else if d.preprocess.volume == nil, d.height % divisor != 0 || d.width % divisor != 0 {
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
    }

    /// Distilling stages whose student and teacher models both resolve.
    static func pairings(_ spec: Spec) -> [Pairing] {
        spec.stages.compactMap { s in
            guard let d = s.distill, let student = spec.model(s.model.name), let tm = spec.producedModel(d.teacher.name),
                  let teacher = spec.model(tm.name) else { return nil }
            return Pairing(stage: s, distill: d, student: student, teacher: teacher)
        }
    }

    static func tapNote(_ model: ModelSpec) -> DiagnosticNote {
        DiagnosticNote("'\(model.name)' (\(model.architecture.summary)) has taps: \(model.taps.names.joined(separator: ", "))",
                       at: nil)
    }

    /// The unknown-tap diagnostic with the model's taps and a did-you-mean.
    static func unknownTap(_ ref: Ref, of model: ModelSpec, role: String, path: String) -> Diagnostic {
        let manifest = model.taps
        var fixIts: [FixIt] = []
        if let guess = Suggestions.closest(to: ref.name, in: manifest.names) {
            fixIts.append(FixIt("did you mean '\(guess)'?", range: ref.range, replacement: guess))
        }
        return Diagnostic(SpecDiagnostics.unknownTap, "unknown tap '\(ref.name)' of \(role) model '\(model.name)'",
                          at: ref.range, path: path, notes: [tapNote(model)], fixIts: fixIts)
    }

    /// Each tap pair's problems (StageConfig's rules, shared with the runtime), located.
    static func tapPairs(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let input = spec.data.preprocess.inputExtent
        func size(_ strides: [Int]) -> String {
            zip(input, strides).map { String($0 / $1) }.joined(separator: "x")
        }
        for p in pairings(spec) {
            for pairSpec in p.distill.taps {
                let pair = pairSpec.pair
                let base = "stages.\(p.stage.name).distill.taps.\(pair.name)"
                for problem in pair.problems(teacher: p.teacher.taps, student: p.student.taps) {
                    switch problem {
                    case .unknownTap(let role, _):
                        let (ref, model) = role == .teacher ? (pairSpec.teacher, p.teacher) : (pairSpec.student, p.student)
                        out.append(unknownTap(ref, of: model, role: role.rawValue, path: "\(base).\(role.rawValue)"))
                    case .tokenTap(let role, let name):
                        out.append(Diagnostic(SpecDiagnostics.tokenTap,
                            "\(role.rawValue) tap '\(name)' is a token sequence; feature distillation compares spatial maps",
                            at: role == .teacher ? pairSpec.teacher.range : pairSpec.student.range, path: "\(base).\(role.rawValue)",
                            notes: [DiagnosticNote("use the map after it, e.g. 'bottleneck'")]))
                    case .channelMismatch(let t, let s, let identity):
                        out.append(Diagnostic(SpecDiagnostics.channelMismatch,
                            "tap pair '\(pair.name)': teacher '\(t.name)' has \(t.channels) channels, student '\(s.name)' has \(s.channels)\(identity ? "; an identity adapter cannot change that" : "")",
                            at: identity ? pairSpec.source["adapter"]?.range(of: "kind") : pairSpec.teacher.range, path: identity ? "\(base).adapter.kind" : base,
                            notes: [DiagnosticNote("\(pair.loss.kind) compares maps channel by channel")],
                            fixIts: [FixIt("add 'adapter: {side: teacher}' (a 1x1 conv \(t.channels)->\(s.channels) on the teacher map) or 'adapter: {side: student}' (\(s.channels)->\(t.channels))")]))
                    case .uselessResample(let strides):
                        out.append(Diagnostic(SpecDiagnostics.uselessResample,
                            "tap pair '\(pair.name)': both maps are \(size(strides)); 'resample: \(pair.resample.rawValue)' does nothing",
                            at: pairSpec.source.range(of: "resample"), path: "\(base).resample"))
                    case .spatialMismatch(let ts, let ss):
                        let enlarge = zip(ts, ss).contains { $0 > $1 }
                        out.append(Diagnostic(SpecDiagnostics.spatialMismatch,
                            "tap pair '\(pair.name)': teacher map is \(size(ts)), student map is \(size(ss))",
                            at: pairSpec.teacher.range, path: base,
                            fixIts: enlarge && ts.count == 3 ? [FixIt("pair taps of the same size: volumes are only resampled by 'avgpool', which shrinks")]
                                : [FixIt("add 'resample: \(enlarge ? "bilinear" : "avgpool")' to bring the teacher map to the student's size")]))
                    case .averagePoolingEnlarges(let ts, let ss):
                        out.append(Diagnostic(SpecDiagnostics.spatialMismatch,
                            "tap pair '\(pair.name)': 'avgpool' only shrinks, but the teacher map (\(size(ts))) is smaller than the student's (\(size(ss)))\(ts.count == 3 ? " along an axis" : "")",
                            at: pairSpec.source.range(of: "resample"), path: "\(base).resample",
                            fixIts: ts.count == 3 ? [] : [FixIt("use 'resample: bilinear'", range: pairSpec.source.range(of: "resample"), replacement: "bilinear")]))
                    case .dimensionMismatch:
                        out.append(Diagnostic(SpecDiagnostics.spatialMismatch, "tap pair '\(pair.name)': \(problem.summary)",
                                              at: pairSpec.teacher.range, path: base))
                    case .resampleOfVolumes(let r):
                        out.append(Diagnostic(SpecDiagnostics.spatialMismatch,
                            "tap pair '\(pair.name)': 'resample: \(r.rawValue)' is for slices; a 3D teacher map is brought to the student's size by 'avgpool'",
                            at: pairSpec.source.range(of: "resample"), path: "\(base).resample",
                            fixIts: [FixIt("use 'resample: avgpool'", range: pairSpec.source.range(of: "resample"), replacement: "avgpool")]))
                    default:
                        break
                    }
                }
            }
        }
        return out
    }

    /// Loss terms name heads their model has, and fit their channel counts.
    static func heads(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for stage in spec.stages {
            guard let model = spec.model(stage.model.name) else { continue }
            for (i, term) in stage.loss.enumerated() {
                let path = "stages.\(stage.name).loss[\(i)]"
                let kindRange = term.source.range(of: "kind")
                for problem in term.term.problems(model.architecture) {
                    switch problem {
                    case .unknownHead(_, let name, let available):
                        out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownHead, "head", Ref(name: name, range: term.source.range(of: "head")),
                                                           available, path: "\(path).head",
                                                           extra: [DiagnosticNote("model '\(model.name)' defined here", at: model.nameRange)]))
                    case .needsClasses(let kind, let head):
                        out.append(Diagnostic(SpecDiagnostics.lossHead,
                            "'\(kind)' needs a head with 2 or more classes; '\(head.name)' has \(head.channels) channel",
                            at: kindRange, path: "\(path).kind",
                            fixIts: [FixIt("use 'bce' or 'dice_bce' for a 1-channel head", range: kindRange, replacement: "dice_bce")]))
                    case .sigmoidLossOnClasses(let kind, let head, let replacement):
                        out.append(Diagnostic(SpecDiagnostics.lossHead,
                            "'\(kind)' is a sigmoid loss for a 1-channel head; '\(head.name)' has \(head.channels) channels (softmax over classes)",
                            at: kindRange, path: "\(path).kind",
                            fixIts: [FixIt("use '\(replacement)', its softmax counterpart", range: kindRange, replacement: replacement)]))
                    case .reconstructionChannels(let head, let inputs):
                        out.append(Diagnostic(SpecDiagnostics.lossHead,
                            "'mse' reconstructs the input (\(inputs) channels) but head '\(head.name)' has \(head.channels)",
                            at: term.source.range(of: "head"), path: "\(path).head"))
                    default:
                        break
                    }
                }
            }
        }
        return out
    }

    /// Every model a stage trains has a segmentation head that fits the data's classes.
    static func headClasses(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let used = Set(spec.stages.map(\.model.name))
        for model in spec.models where used.contains(model.name) {
            for case .headClasses(let head, let classes) in spec.data.classes.problems(model.architecture) {
                let want = classes.headChannels.last ?? 1
                let range = model.source["heads"]?.range(of: head.name) ?? model.nameRange
                out.append(Diagnostic(SpecDiagnostics.headClasses,
                    "model '\(model.name)': head '\(head.name)' has \(head.channels) channel\(head.channels == 1 ? "" : "s") but data.foreground has \(classes.count) class\(classes.count == 1 ? "" : "es") (\(classes.classes.map(\.name).joined(separator: ", ")))",
                    at: range, path: "models.\(model.name).heads.\(head.name)",
                    notes: [DiagnosticNote(classes.count == 1
                        ? "one class takes 1 channel (sigmoid) or 2 (softmax with background)"
                        : "softmax over \(classes.count) classes and background takes \(want) channels"),
                            DiagnosticNote("the classes are defined here", at: spec.data.value["foreground"]?.range)],
                    fixIts: [model.source["heads"]?.range == nil
                        ? FixIt("add 'heads: {\(head.name): \(want)}' to model '\(model.name)'")
                        : FixIt("write '\(head.name): \(want)'", range: model.source["heads"]?[head.name]?.range, replacement: String(want))]))
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
            let headRef = Ref(name: l.term.head, range: l.source.range(of: "head"))
            let kindRange = l.source.range(of: "kind")
            for problem in l.term.problems(student: p.student.architecture, teacher: p.teacher.architecture) {
                switch problem {
                case .unknownHead(_, _, let available):
                    out.append(ReferenceChecks.unknown(SpecDiagnostics.unknownHead, "head", headRef, available, path: "\(path).head"))
                case .logitChannels(let head, let t, let s):
                    out.append(Diagnostic(SpecDiagnostics.logitChannels,
                        "head '\(head)': teacher '\(p.teacher.name)' has \(t) channels, student '\(p.student.name)' has \(s)",
                        at: l.source.range(of: "head"), path: "\(path).head"))
                case .binaryKLOnClasses(let head, let channels):
                    out.append(Diagnostic(SpecDiagnostics.lossHead,
                        "'binary_kl' reads each of the \(channels) channels of head '\(head)' as its own sigmoid, but they are softmax logits over classes",
                        at: kindRange, path: "\(path).kind",
                        fixIts: [FixIt("use 'kl', the softmax KL over channels", range: kindRange, replacement: "kl")]))
                case .softmaxOneChannel(let head, let accepted):
                    let explanation = DiagnosticNote("softmax over one channel is 1 everywhere, so the KL is 0 and gives no gradient: the term does nothing")
                    if accepted {
                        out.append(Diagnostic(SpecDiagnostics.softmaxOneChannelAccepted,
                            "softmax KL on the 1-channel head '\(head)' is identically zero (accepted by 'accept_zero_gradient')",
                            at: kindRange, path: "\(path).kind", notes: [explanation]))
                    } else {
                        out.append(Diagnostic(SpecDiagnostics.softmaxOneChannel,
                            "softmax KL on the 1-channel head '\(head)' is identically zero",
                            at: kindRange, path: "\(path).kind",
                            notes: [explanation, DiagnosticNote("to reproduce the study's defect on purpose, add 'accept_zero_gradient: true'")],
                            fixIts: [FixIt("use 'binary_kl', the Bernoulli KL for sigmoid outputs", range: kindRange, replacement: "binary_kl")]))
                    }
                default:
                    break
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
            for problem in sc.term.problems(student: p.student.taps) {
                switch problem {
                case .unknownTap: out.append(unknownTap(sc.tap, of: p.student, role: "student", path: path))
                case .tokenTap(_, let name):
                    out.append(Diagnostic(SpecDiagnostics.tokenTap, "supcon needs a spatial map; '\(name)' is a token sequence",
                                          at: sc.tap.range, path: path))
                case .supconOnVolume:
                    out.append(Diagnostic(SpecDiagnostics.dimensions, "\(problem.summary); 3D students distill through tap pairs and logits",
                                          at: sc.tap.range, path: path))
                default: break
                }
            }
        }
        return out
    }
}
