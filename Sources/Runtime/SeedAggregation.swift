import Foundation
import Plan
import StageConfig

/// Several seeds per variant (a sweep axis named `seed`): metrics as mean and sd
/// over seeds, and a paired test of each distilled stage against its baseline
/// over seeds and test cases, so that "KD helps" is a measured claim.
public enum SeedAggregation {
    public struct Row {
        public var group: String
        public var stage: String
        public var seeds: Int
        public var dice: (mean: Double, sd: Double)
        public var iou: (mean: Double, sd: Double)
        public var baseline: String?
        /// Mean per-case Dice difference (stage - baseline) over the pairs, and the test's p-value.
        public var delta: Double?
        public var pValue: Double?
        public var pairs: Int
    }

    static func meanSD(_ v: [Double]) -> (Double, Double) {
        guard !v.isEmpty else { return (.nan, .nan) }
        let m = v.reduce(0, +) / Double(v.count)
        return (m, v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0)
    }

    /// Wilcoxon signed-rank test, two-sided, normal approximation with tie correction;
    /// zero differences are dropped. Returns nil with fewer than 6 non-zero pairs.
    public static func wilcoxon(_ differences: [Double]) -> Double? {
        let d = differences.filter { $0 != 0 && $0.isFinite }
        let n = d.count
        guard n >= 6 else { return nil }
        let sorted = d.enumerated().sorted { abs($0.element) < abs($1.element) }
        var ranks = [Double](repeating: 0, count: n), tieTerm = 0.0
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n, abs(sorted[j + 1].element) == abs(sorted[i].element) { j += 1 }
            let rank = Double(i + j + 2) / 2
            for k in i...j { ranks[sorted[k].offset] = rank }
            let t = Double(j - i + 1)
            tieTerm += t * t * t - t
            i = j + 1
        }
        let wPlus = zip(d, ranks).filter { $0.0 > 0 }.map(\.1).reduce(0, +)
        let mean = Double(n * (n + 1)) / 4
        let variance = Double(n * (n + 1) * (2 * n + 1)) / 24 - tieTerm / 48
        guard variance > 0 else { return nil }
        let z = (wPlus - mean) / variance.squareRoot()
        return erfc(abs(z) / 2.0.squareRoot())
    }

    public static func rows(_ plan: ExecutionPlan, store: RunStore, seedAxis: String = "seed") -> [Row] {
        guard plan.variants.contains(where: { $0.choices.contains { $0.axis == seedAxis } }) else { return [] }
        func groupName(_ v: PlanVariant) -> String {
            let rest = v.choices.filter { $0.axis != seedAxis }.map { "\($0.axis)=\($0.value)" }
            return rest.isEmpty ? "*" : rest.joined(separator: ",")
        }
        var groups: [String: [PlanVariant]] = [:], order: [String] = []
        for v in plan.variants {
            let g = groupName(v)
            if groups[g] == nil { order.append(g) }
            groups[g, default: []].append(v)
        }
        var out: [Row] = []
        for g in order {
            guard let variants = groups[g], let stageNames = variants.first?.stages.map(\.name) else { continue }
            for name in stageNames {
                var dice: [Double] = [], iou: [Double] = [], differences: [Double] = []
                var baselineName: String?
                for v in variants {
                    guard let s = v.stages.first(where: { $0.name == name }), let m = Report.readMetrics(store, s.evaluate) else { continue }
                    dice.append(m["pooled"]?["dice"]?.number ?? .nan)
                    iou.append(m["pooled"]?["iou"]?.number ?? .nan)
                    // The matching baseline of this seed: same architecture and data, trained without a teacher.
                    guard let train = plan.stage(s.train), let base = Report.baseline(of: train, in: v, plan),
                          let bm = Report.readMetrics(store, base.evaluate) else { continue }
                    baselineName = base.name
                    let a = caseDice(m), b = caseDice(bm)
                    for (c, x) in a { if let y = b[c] { differences.append(x - y) } }
                }
                guard !dice.isEmpty else { continue }
                let dm = meanSD(dice), im = meanSD(iou)
                out.append(Row(group: g, stage: name, seeds: dice.count, dice: dm, iou: im, baseline: baselineName,
                               delta: differences.isEmpty ? nil : differences.reduce(0, +) / Double(differences.count),
                               pValue: wilcoxon(differences), pairs: differences.count))
            }
        }
        return out
    }

    static func caseDice(_ m: JSON) -> [String: Double] {
        var out: [String: Double] = [:]
        for c in m["cases"]?.array ?? [] { if let name = c["case"]?.string, let d = c["dice"]?.number { out[name] = d } }
        return out
    }

    public static func markdown(_ rows: [Row]) -> String {
        guard !rows.isEmpty else { return "" }
        var out = "\n## Across seeds\n\nPooled test Dice and IoU as mean +- sd over seeds; distilled stages against their baseline: mean per-case Dice difference and the two-sided Wilcoxon signed-rank p-value over (seed, case) pairs.\n\n"
        out += "| group | stage | seeds | Dice | IoU | vs baseline | p |\n|---|---|---|---|---|---|---|\n"
        for r in rows {
            let delta = r.delta.map { String(format: "%+.4f over %d pairs vs %@", $0, r.pairs, r.baseline ?? "") } ?? ""
            let p = r.pValue.map { String(format: "%.3g", $0) } ?? (r.delta == nil ? "" : "too few pairs")
            out += String(format: "| %@ | %@ | %d | %.3f +- %.3f | %.3f +- %.3f | %@ | %@ |\n", r.group, r.stage, r.seeds, r.dice.mean, r.dice.sd, r.iou.mean, r.iou.sd, delta, p)
        }
        return out
    }
}
