import Architecture
import StageConfig
import Tensor

/// The loss of one training step, assembled from a stage's typed terms:
/// supervised losses on the student's heads and, for a distilled student,
/// feature terms between tap pairs (through their adapters and resampling),
/// logit distillation and supervised pixel contrast.
///
/// This is the one place a stage's terms become arithmetic: the trainer, the
/// PyTorch parity harness (`kd_step_t1_s1` and every loss case) and the
/// benchmark all build it, so parity checks what `distill run` executes.
public final class DistillationObjective {
    public let supervised: [SupervisedTerm]
    public let distillation: DistillationTerms?
    /// The 1x1 adapters of the tap pairs that have one, by pair name: created
    /// once here; a `reinitEachStep` adapter is replaced by fresh weights every step.
    public private(set) var adapters: [String: (weight: Variable, bias: Variable)] = [:]

    /// Builds the objective and checks every term against the models (heads, taps,
    /// channels, map sizes); adapter weights are drawn from `rng`.
    public init(supervised: [SupervisedTerm], distillation: DistillationTerms?, student: ModelArchitecture,
                teacher: ModelArchitecture?, rng: inout RNG) throws {
        self.supervised = supervised
        self.distillation = distillation
        var problems: [(String, TermProblem)] = supervised.flatMap { t in t.problems(student).map { ("loss on head '\(t.head)'", $0) } }
        if let d = distillation {
            guard let teacher else { throw ObjectiveError.noTeacher }
            let sm = student.tapManifest, tm = teacher.tapManifest
            for pair in d.pairs {
                problems += pair.problems(teacher: tm, student: sm).map { ("tap pair '\(pair.name)'", $0) }
                guard case .conv1x1(let side, _, _)? = pair.adapter, let t = tm[pair.teacherTap], let s = sm[pair.studentTap] else { continue }
                let (cin, cout) = side == .student ? (s.channels, t.channels) : (t.channels, s.channels)
                adapters[pair.name] = Self.freshAdapter(cin: cin, cout: cout, spatial: s.strides?.count ?? 2, rng: &rng, trainable: pair.adapter?.isTrained == true)
            }
            if let l = d.logits { problems += l.problems(student: student, teacher: teacher).map { ("logit term", $0) } }
            if let sc = d.supcon { problems += sc.problems(student: sm).map { ("supcon term", $0) } }
        }
        let errors = problems.filter { $0.1.isError }
        if !errors.isEmpty { throw ObjectiveError.terms(errors.map { "\($0.0): \($0.1.summary)" }) }
    }

    /// A 1x1 (1x1x1 over volumes, `spatial` 3) convolution's weight and bias.
    static func freshAdapter(cin: Int, cout: Int, spatial: Int, rng: inout RNG, trainable: Bool) -> (weight: Variable, bias: Variable) {
        (Variable(Initializer.uniform([cout, cin] + Array(repeating: 1, count: spatial), fanIn: cin, rng: &rng), requiresGrad: trainable),
         Variable(Initializer.uniform([cout], fanIn: cin, rng: &rng), requiresGrad: trainable))
    }

    /// Parameters the optimiser trains besides the model's: persistent trainable adapters, by checkpoint name.
    public var trainedParameters: [(String, Variable)] {
        (distillation?.pairs ?? []).flatMap { p -> [(String, Variable)] in
            guard p.adapter?.isTrained == true, let a = adapters[p.name] else { return [] }
            return [("adapter.\(p.name).weight", a.weight), ("adapter.\(p.name).bias", a.bias)]
        }
    }

    /// Replaces adapter weights by name (`adapter.ee.weight`), e.g. from a reference case.
    public func loadAdapters(_ tensors: [String: Tensor]) throws {
        for (name, a) in adapters {
            for (suffix, v) in [("weight", a.weight), ("bias", a.bias)] {
                guard let t = tensors["adapter.\(name).\(suffix)"] else { throw ObjectiveError.missingAdapter("adapter.\(name).\(suffix)") }
                guard t.shape == v.shape else { throw ObjectiveError.adapterShape("adapter.\(name).\(suffix)", t.shape, v.shape) }
                v.value.pointer.update(from: t.pointer, count: t.count)
            }
        }
    }

    /// Teacher taps a step reads.
    public var teacherTaps: [String] { distillation?.teacherTaps ?? [] }

    /// One named, weighted term of a step.
    public struct Term {
        public var name: String
        public var value: Variable
        public var weight: Float
    }

    /// Every term of one step. `teacher` holds the teacher's taps (constants), `images`
    /// the input batch (reconstruction target), `labels` the masks `[N,1,H,W]` as 0/1.
    public func terms(student s: ModelOutput, teacher t: [String: Variable], images: Variable, labels: Tensor, rng: inout RNG) throws -> [Term] {
        var out = try supervisedTerms(student: s, images: images, labels: labels)
        guard let d = distillation else { return out }
        for p in d.pairs {
            guard let tv = t[p.teacherTap], let sv = s.taps[p.studentTap] else { throw ObjectiveError.missingOutput("tap pair '\(p.name)' taps") }
            var adapter = adapters[p.name]
            if case .conv1x1(_, _, true)? = p.adapter, let a = adapter {
                // The study's defect on purpose: a fresh random projection every step, never trained.
                adapter = Self.freshAdapter(cin: a.weight.shape[1], cout: a.weight.shape[0], spatial: a.weight.shape.count - 2, rng: &rng, trainable: false)
            }
            out.append(Term(name: p.name, value: Self.feature(p, student: sv, teacher: tv, adapter: adapter), weight: Float(p.weight)))
        }
        if let l = d.logits {
            guard let sl = s.logits[l.head], let tl = t["logits.\(l.head)"] else { throw ObjectiveError.missingOutput("logits of head '\(l.head)'") }
            out.append(Term(name: "logits", value: Self.logits(l.loss, student: sl, teacher: tl, temperature: Float(l.temperature)), weight: Float(l.weight)))
        }
        if let sc = d.supcon {
            guard let tap = s.taps[sc.tap] else { throw ObjectiveError.missingOutput("supcon tap '\(sc.tap)'") }
            out.append(Term(name: "supcon", value: Self.supCon(tap, labels, sc, &rng), weight: Float(sc.weight)))
        }
        return out
    }

    /// The supervised terms alone (what validation reports as the loss).
    public func supervisedTerms(student s: ModelOutput, images: Variable, labels: Tensor) throws -> [Term] {
        try supervised.enumerated().map { i, term in
            guard let logits = s.logits[term.head] else { throw ObjectiveError.missingOutput("head '\(term.head)'") }
            let name = supervised.count == 1 ? term.loss.kind : "\(term.loss.kind).\(term.head).\(i)"
            return Term(name: name, value: Self.supervised(term.loss, logits, labels: labels, images: images), weight: Float(term.weight))
        }
    }

    /// The weighted sum of the terms: the loss a step minimises.
    public static func total(_ terms: [Term]) -> Variable { F.weightedSum(terms.map { ($0.value, $0.weight) }) }

    // MARK: single terms (the loss parity cases call these)

    /// A supervised loss of `logits` against `labels` (0/1 masks, or class indices for
    /// `ce` and `focal`), or for `mse` with target input against the images.
    public static func supervised(_ loss: SupervisedLoss, _ logits: Variable, labels: Tensor, images: Variable) -> Variable {
        switch loss {
        case .dice(let smooth) where logits.shape[1] > 1: return Loss.softmaxDice(logits, classIndices(labels), smooth: smooth)
        case .dice(let smooth): return Loss.dice(logits, labels, smooth: smooth)
        case .bce: return Loss.bceWithLogits(logits, labels)
        case .diceBCE(let smooth): return Loss.diceBCE(logits, labels, smooth: smooth)
        case .crossEntropy: return Loss.crossEntropy(logits, classIndices(labels), gamma: 0)
        case .diceCE(let smooth):
            let target = classIndices(labels)
            return F.add(Loss.crossEntropy(logits, target, gamma: 0), Loss.softmaxDice(logits, target, smooth: smooth))
        case .focal(let gamma): return Loss.crossEntropy(logits, classIndices(labels), gamma: gamma)
        case .mse(.input): return Loss.mse(logits, images)
        case .mse(.label): return Loss.mse(logits, Variable(labels))
        }
    }

    /// A label map (class indices stored as floats) as the integer targets of a softmax loss.
    static func classIndices(_ labels: Tensor) -> [Int32] {
        let n = labels.count, p = labels.pointer
        return [Int32](unsafeUninitializedCapacity: n) { buffer, count in
            for i in 0..<n { buffer[i] = Int32(p[i]) }
            count = n
        }
    }

    /// A feature term: the teacher map resampled to the student's size, the adapter
    /// applied on its side, then the comparison (query = student, key = teacher).
    public static func feature(_ p: TapPair, student: Variable, teacher: Variable, adapter: (weight: Variable, bias: Variable)?) -> Variable {
        var tv = teacher, sv = student
        if sv.shape.count == 5 {
            // Volumes: average pooling is the one resampling (the checker allows no other).
            if tv.shape[2...] != sv.shape[2...] {
                let k = (2..<5).map { max(1, tv.shape[$0] / sv.shape[$0]) }
                tv = F.avgPool3d(tv, kernel: k, stride: k)
            }
            if case .conv1x1(let side, _, _)? = p.adapter, let a = adapter {
                if side == .student { sv = F.conv3d(sv, a.weight, a.bias) } else { tv = F.conv3d(tv, a.weight, a.bias) }
            }
            return comparison(p.loss, student: sv, teacher: tv)
        }
        if tv.shape[2] != sv.shape[2] || tv.shape[3] != sv.shape[3] {
            switch p.resample {
            case .nearest: tv = F.resizeNearest(tv, height: sv.shape[2], width: sv.shape[3])
            case .avgpool:
                let k = max(1, tv.shape[2] / sv.shape[2])
                tv = F.avgPool2d(tv, kernel: k, stride: k)
            case .bilinear, .none: tv = F.resizeBilinear(tv, height: sv.shape[2], width: sv.shape[3])
            }
        }
        if case .conv1x1(let side, _, _)? = p.adapter, let a = adapter {
            if side == .student { sv = F.conv2d(sv, a.weight, a.bias) } else { tv = F.conv2d(tv, a.weight, a.bias) }
        }
        return comparison(p.loss, student: sv, teacher: tv)
    }

    public static func comparison(_ loss: FeatureLoss, student sv: Variable, teacher tv: Variable) -> Variable {
        switch loss {
        case .mse: return Loss.mse(sv, tv)
        case .l1: return Loss.l1(sv, tv)
        case .cosine: return Loss.cosine(sv, tv)
        case .infoNCE(let t): return Loss.infoNCE(sv, tv, temperature: Float(t))
        case .attention(let p): return Loss.attentionTransfer(sv, tv, p: Float(p))
        case .channelWise(let t): return Loss.channelWise(sv, tv, tau: Float(t))
        }
    }

    public static func logits(_ loss: LogitLoss, student: Variable, teacher: Variable, temperature: Float) -> Variable {
        switch loss {
        case .binaryKL: return Loss.binaryKL(student, teacher, temperature: temperature)
        case .kl: return Loss.klLogits(student, teacher, temperature: temperature)
        }
    }

    /// SupCon over pixels of a tap: labels from the mask resized (nearest) to the tap,
    /// up to `samplesPerClass` pixels of each class per image, drawn with the step's RNG.
    /// A batch split over processes samples as one process does: every process walks the
    /// labels of the whole batch (gathered) with the same RNG, takes the pixels of its own
    /// images, and the loss contrasts the gathered samples of all of them.
    static func supCon(_ tap: Variable, _ labels: Tensor, _ sc: SupConTerm, _ rng: inout RNG) -> Variable {
        let (n, c, h, w) = (tap.shape[0], tap.shape[1], tap.shape[2], tap.shape[3])
        let (lh, lw) = (labels.shape[2], labels.shape[3])
        let (all, images, first) = CrossBatch.gatherRows(labels.pointer, rows: n, width: lh * lw)
        var map: [Int32] = [], classes: [Int32] = []
        for b in 0..<images {
            var byClass: [Int32: [Int]] = [:]
            for y in 0..<h { for x in 0..<w {
                let v = all[b * lh * lw + min(y * lh / h, lh - 1) * lw + min(x * lw / w, lw - 1)]
                byClass[Int32(v), default: []].append(y * w + x)
            } }
            let mine = b >= first && b < first + n
            for (cls, pixels) in byClass.sorted(by: { $0.key < $1.key }) {
                for k in rng.permutation(pixels.count).prefix(sc.samplesPerClass) {
                    if mine { for ch in 0..<c { map.append(Int32(((b - first) * c + ch) * h * w + pixels[k])) } }
                    classes.append(cls)
                }
            }
        }
        let z = F.batchRows(F.gather(tap, map: map, shape: [map.count / max(1, c), c]))
        return Loss.supCon(z, labels: classes, temperature: Float(sc.temperature))
    }
}

public enum ObjectiveError: Error, CustomStringConvertible {
    case noTeacher
    case terms([String])
    case missingOutput(String)
    case missingAdapter(String)
    case adapterShape(String, [Int], [Int])

    public var description: String {
        switch self {
        case .noTeacher: return "the stage has distillation terms but no teacher"
        case .terms(let problems): return "the loss terms do not fit the models: " + problems.joined(separator: "; ")
        case .missingOutput(let what): return "the forward pass produced no \(what)"
        case .missingAdapter(let name): return "no tensor '\(name)' for the adapter"
        case .adapterShape(let name, let got, let want): return "'\(name)' has shape \(got), the adapter expects \(want)"
        }
    }
}
