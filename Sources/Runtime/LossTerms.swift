import Architecture
import Foundation
import NN
import Plan
import Tensor

/// The loss of one training step, assembled from the stage's terms: supervised
/// terms on heads, and (for distill stages) feature, logit and SupCon terms.
struct LossTerms {
    struct Supervised { let kind: String; let head: String; let weight: Float; let params: JSON }
    struct FeaturePair {
        let name: String
        let teacherTap: String, studentTap: String
        let resample: String
        let adapterSide: String?
        let adapter: (Variable, Variable)?
        let trainable: Bool
        let reinit: Bool
        let loss: JSON
        let weight: Float
    }
    struct Logits { let kind: String; let head: String; let temperature: Float; let weight: Float }
    struct SupCon { let tap: String; let temperature: Float; let samples: Int; let weight: Float }

    var supervised: [Supervised] = []
    var pairs: [FeaturePair] = []
    var logits: Logits?
    var supcon: SupCon?

    /// Parameters the optimiser trains besides the model's: persistent adapters, by name.
    var adapterParameters: [(String, Variable)] {
        pairs.flatMap { p -> [(String, Variable)] in
            guard let a = p.adapter, p.trainable, !p.reinit else { return [] }
            return [("adapter.\(p.name).weight", a.0), ("adapter.\(p.name).bias", a.1)]
        }
    }

    /// Teacher taps a step needs (for the cache and the live teacher alike).
    var teacherTaps: [String] {
        var t = Set(pairs.map(\.teacherTap))
        if let l = logits { t.insert("logits.\(l.head)") }
        return t.sorted()
    }

    init(params: JSON, student: ModelArchitecture, teacher: ModelArchitecture?, rng: inout RNG) throws {
        for term in params["loss"]?.array ?? [] {
            supervised.append(Supervised(kind: term["kind"]?.string ?? "dice", head: term["head"]?.string ?? "segmentation",
                                         weight: Float(term["weight"]?.number ?? 1), params: term))
        }
        guard let distill = params["distill"]?.object, let teacher else { return }
        let sm = student.tapManifest, tm = teacher.tapManifest
        for key in distill.keys.sorted() {
            guard let term = distill[key] else { continue }
            if key.hasPrefix("taps.") {
                let name = String(key.dropFirst(5))
                guard let tt = term["teacher"]?.string, let st = term["student"]?.string, let tTap = tm[tt], let sTap = sm[st] else {
                    throw RuntimeError.badPlan("tap pair '\(name)' names taps the models do not have")
                }
                var adapter: (Variable, Variable)?
                let a = term["adapter"]
                let side = a?["side"]?.string
                if let a, a["kind"]?.string != "identity" {
                    let (cin, cout) = side == "student" ? (sTap.channels, tTap.channels) : (tTap.channels, sTap.channels)
                    adapter = (Variable(Initializer.uniform([cout, cin, 1, 1], fanIn: cin, rng: &rng), requiresGrad: true),
                               Variable(Initializer.uniform([cout], fanIn: cin, rng: &rng), requiresGrad: true))
                }
                pairs.append(FeaturePair(name: name, teacherTap: tt, studentTap: st, resample: term["resample"]?.string ?? "none",
                                         adapterSide: a == nil ? nil : (side ?? "teacher"), adapter: adapter,
                                         trainable: a?["trainable"] != .bool(false), reinit: a?["reinit_each_step"] == .bool(true),
                                         loss: term["loss"] ?? .object(["kind": .string("mse")]), weight: Float(term["weight"]?.number ?? 1)))
            } else if key == "logits" {
                logits = Logits(kind: term["kind"]?.string ?? "binary_kl", head: term["head"]?.string ?? "segmentation",
                                temperature: Float(term["temperature"]?.number ?? 4), weight: Float(term["weight"]?.number ?? 1))
            } else if key == "supcon" {
                supcon = SupCon(tap: term["tap"]?.string ?? "bottleneck", temperature: Float(term["temperature"]?.number ?? 0.1),
                                samples: term["samples_per_class"]?.int ?? 64, weight: Float(term["weight"]?.number ?? 1))
            }
        }
    }

    /// Every term of one step, by name, with its weight.
    func terms(student s: ModelOutput, teacher t: [String: Variable], images: Variable, labels: Tensor, rng: inout RNG) throws -> [(String, Variable, Float)] {
        var out: [(String, Variable, Float)] = []
        for (i, term) in supervised.enumerated() {
            guard let logits = s.logits[term.head] else { throw RuntimeError.badPlan("no head '\(term.head)'") }
            let name = supervised.count == 1 ? term.kind : "\(term.kind).\(term.head).\(i)"
            let smooth = term.params["smooth"]?.number ?? 1
            let value: Variable
            switch term.kind {
            case "dice": value = Loss.dice(logits, labels, smooth: smooth)
            case "bce": value = Loss.bceWithLogits(logits, labels)
            case "dice_bce": value = Loss.diceBCE(logits, labels, smooth: smooth)
            case "ce", "focal":
                let classes = labels.values.map { Int32($0) }
                value = Loss.crossEntropy(logits, classes, gamma: term.kind == "focal" ? (term.params["gamma"]?.number ?? 2) : 0)
            case "mse":
                let target = term.params["target"]?.string == "label" ? Variable(labels) : images
                value = Loss.mse(logits, target)
            default: throw RuntimeError.badPlan("unknown loss '\(term.kind)'")
            }
            out.append((name, value, term.weight))
        }
        for p in pairs {
            guard var tv = t[p.teacherTap], var sv = s.taps[p.studentTap] else { throw RuntimeError.badPlan("tap pair '\(p.name)': a tap is missing") }
            if tv.shape[2] != sv.shape[2] || tv.shape[3] != sv.shape[3] {
                switch p.resample {
                case "nearest": tv = F.resizeNearest(tv, height: sv.shape[2], width: sv.shape[3])
                case "avgpool": tv = F.avgPool2d(tv, kernel: max(1, tv.shape[2] / sv.shape[2]), stride: max(1, tv.shape[2] / sv.shape[2]))
                default: tv = F.resizeBilinear(tv, height: sv.shape[2], width: sv.shape[3])
                }
            }
            if let side = p.adapterSide, var a = p.adapter {
                if p.reinit {
                    // The study's defect on purpose: a fresh random projection every step, never trained.
                    let (cout, cin) = (a.0.shape[0], a.0.shape[1])
                    a = (Variable(Initializer.uniform([cout, cin, 1, 1], fanIn: cin, rng: &rng)), Variable(Initializer.uniform([cout], fanIn: cin, rng: &rng)))
                }
                if side == "student" { sv = F.conv2d(sv, a.0, a.1) } else { tv = F.conv2d(tv, a.0, a.1) }
            }
            let kind = p.loss["kind"]?.string ?? "mse"
            let value: Variable
            switch kind {
            case "mse": value = Loss.mse(sv, tv)
            case "l1": value = Loss.l1(sv, tv)
            case "cosine": value = Loss.cosine(sv, tv)
            case "infonce": value = Loss.infoNCE(sv, tv, temperature: Float(p.loss["temperature"]?.number ?? 0.1))
            case "attention": value = Loss.attentionTransfer(sv, tv, p: Float(p.loss["p"]?.number ?? 2))
            case "cwd": value = Loss.channelWise(sv, tv, tau: Float(p.loss["temperature"]?.number ?? 1))
            default: throw RuntimeError.badPlan("unknown feature loss '\(kind)'")
            }
            out.append((p.name, value, p.weight))
        }
        if let l = logits, let sl = s.logits[l.head], let tl = t["logits.\(l.head)"] {
            let value = l.kind == "kl" ? Loss.klLogits(sl, tl, temperature: l.temperature) : Loss.binaryKL(sl, tl, temperature: l.temperature)
            out.append(("logits", value, l.weight))
        }
        if let sc = supcon, let tap = s.taps[sc.tap] {
            out.append(("supcon", supConTerm(tap, labels, sc, &rng), sc.weight))
        }
        return out
    }

    /// SupCon over pixels of a tap: labels from the mask resized (nearest) to the tap,
    /// up to `samples` pixels of each class per image, drawn with the step's RNG.
    func supConTerm(_ tap: Variable, _ labels: Tensor, _ sc: SupCon, _ rng: inout RNG) -> Variable {
        let (n, c, h, w) = (tap.shape[0], tap.shape[1], tap.shape[2], tap.shape[3])
        let (lh, lw) = (labels.shape[2], labels.shape[3])
        var map: [Int32] = [], classes: [Int32] = []
        for b in 0..<n {
            var byClass: [Int32: [Int]] = [:]
            for y in 0..<h { for x in 0..<w {
                let v = labels.pointer[b * lh * lw + min(y * lh / h, lh - 1) * lw + min(x * lw / w, lw - 1)]
                byClass[Int32(v), default: []].append(y * w + x)
            } }
            for (cls, pixels) in byClass.sorted(by: { $0.key < $1.key }) {
                for k in rng.permutation(pixels.count).prefix(sc.samples) {
                    let p = pixels[k]
                    for ch in 0..<c { map.append(Int32((b * c + ch) * h * w + p)) }
                    classes.append(cls)
                }
            }
        }
        let z = F.gather(tap, map: map, shape: [classes.count, c])
        return Loss.supCon(z, labels: classes, temperature: sc.temperature)
    }
}
