import Foundation
import Medical
import Plan
import Statistics
import StageConfig

/// The sweep's table in the study's form (Table 4.2): one row per trained stage
/// of each variant with IoU, Dice, recall, precision, parameters, and the change
/// of Dice against the matching baseline student (a non-distilled stage that
/// trains the same architecture on the same data).
public enum Report {
    public struct Row {
        public var variant: String
        public var stage: String
        public var kind: String
        public var metrics: JSON
        public var baseline: String?
        public var baselineDice: Double?
    }

    public static func rows(_ plan: ExecutionPlan, store: RunStore) -> [Row] {
        var rows: [Row] = []
        var seen = Set<String>()
        for v in plan.variants {
            for s in v.stages {
                guard let metrics = readMetrics(store, s.evaluate), let train = plan.stage(s.train) else { continue }
                // A stage shared by every variant is one row, not one per variant.
                let shared = train.variants.count == plan.variants.count && plan.variants.count > 1
                if shared, !seen.insert(s.train).inserted { continue }
                var row = Row(variant: shared ? "*" : v.name, stage: s.name, kind: train.kind.rawValue, metrics: metrics)
                if let base = baseline(of: train, in: v, plan) {
                    row.baseline = base.name
                    row.baselineDice = readMetrics(store, base.evaluate)?["pooled"]?["dice"]?.number
                }
                rows.append(row)
            }
        }
        return rows
    }

    /// The baseline a distilled stage is compared with: in the same variant, a stage
    /// that trains the same architecture on the same data without a teacher.
    static func baseline(of train: PlanStage, in variant: PlanVariant, _ plan: ExecutionPlan) -> (name: String, train: String, evaluate: String)? {
        guard case .train(let c) = train.config, c.distill != nil else { return nil }
        return variant.stages.first { b in
            guard let t = plan.stage(b.train), case .train(let bc) = t.config else { return false }
            return bc.distill == nil && bc.model == c.model && bc.subset == c.subset
        }
    }

    /// The prepared slices of the plan's data and the indices of its test split (nil before `prepare` ran).
    static func testSlices(_ plan: ExecutionPlan, _ store: RunStore) -> (set: SliceSet, test: [Int], classes: LabelClasses)? {
        guard let prepare = plan.stages.first(where: { $0.kind == .prepare }), case .prepare(let config) = prepare.config,
              let set = try? SliceSet(path: store.file(prepare.hash, "slices.bin")) else { return nil }
        return (set, SplitManifest.make(set, config.split).slices(.test), config.classes)
    }

    static func readMetrics(_ store: RunStore, _ hash: String) -> JSON? {
        guard store.isDone(hash), let data = FileManager.default.contents(atPath: store.file(hash, "metrics.json")) else { return nil }
        return JSON.parse(data)
    }

    /// The Markdown a person reads: the table of stages over seeds, then each distilled
    /// student against its baseline with an interval and a test, saying on what unit.
    public static func markdown(_ data: ReportData, title: String) -> String {
        var out = "# \(title)\n\n"
        let seeds = data.seeds
        out += "Test set: \(data.testCases) case\(data.testCases == 1 ? "" : "s") (patients). Metrics pooled over all test slices "
        out += "(TP, FP and FN summed, then Dice = 2TP/(2TP+FP+FN), as the study did)"
        out += seeds > 1 ? ", as mean +- sd over the seeds of each stage; the last column is the mean over cases of each case's Dice, averaged over seeds.\n\n"
                         : "; the last column is the mean over cases of each case's Dice.\n\n"
        out += "| group | stage | role | seeds | IoU | Dice | recall | precision | params (M) | Dice, mean over cases |\n|---|---|---|---|---|---|---|---|---|---|\n"
        for s in data.summaries {
            func f(_ k: String) -> String {
                guard let v = s.pooled[k], v.mean.isFinite else { return "-" }
                return s.seeds > 1 ? String(format: "%.3f +- %.3f", v.mean, v.sd) : String(format: "%.3f", v.mean)
            }
            out += "| \(s.group) | \(s.stage) | \(s.role.rawValue) | \(s.seeds) | \(f("iou")) | \(f("dice")) | \(f("recall")) | \(f("precision")) | "
            out += String(format: "%.3f | %.3f |\n", Double(s.parameters) / 1e6, s.caseMeanDice)
        }
        out += classesMarkdown(data)
        out += comparisonsMarkdown(data)
        if !data.warnings.isEmpty {
            out += "\n## Warnings\n\n" + data.warnings.map { "- " + $0 + "\n" }.joined()
        }
        return out
    }

    /// With more than one class: each class's pooled Dice (the table above shows their mean).
    static func classesMarkdown(_ data: ReportData) -> String {
        guard data.classes.count > 1 else { return "" }
        var out = "\n## Dice by class\n\n"
        out += "Pooled over all test slices for each class (TP, FP and FN of that class summed)"
        out += data.seeds > 1 ? ", mean +- sd over seeds" : ""
        out += "; in brackets, the mean over test cases of each case's Dice for the class (cases without the class and without a prediction of it left out). "
        out += "The Dice above is their mean over the \(data.classes.count) classes (background left out).\n\n"
        out += "| group | stage | " + data.classes.joined(separator: " | ") + " |\n|---|---|" + String(repeating: "---|", count: data.classes.count) + "\n"
        for s in data.summaries {
            let cells = data.classes.map { name -> String in
                guard let c = s.classDice.first(where: { $0.name == name }), c.mean.isFinite else { return "-" }
                let pooled = s.seeds > 1 ? String(format: "%.3f +- %.3f", c.mean, c.sd) : String(format: "%.3f", c.mean)
                return pooled + (c.caseMean.isFinite ? String(format: " (%.3f)", c.caseMean) : "")
            }
            out += "| \(s.group) | \(s.stage) | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    static func comparisonsMarkdown(_ data: ReportData) -> String {
        guard !data.comparisons.isEmpty else { return "" }
        let n = data.comparisons.map(\.cases).max() ?? 0
        let exact = data.comparisons.allSatisfy { ($0.test?.method ?? .exact) == .exact }
        var out = "\n## Distillation against the baselines\n\n"
        out += "Each distilled student against its baseline: the same architecture on the same data, trained without a teacher. "
        out += "Unit: the test case (n = \(n)); for each case, the Dice of its slices"
        out += data.seeds > 1 ? ", averaged over the \(data.seeds) seeds, " : " (one seed), "
        out += "distilled minus baseline. Interval: 95% percentile bootstrap of the mean over cases (\(ReportData.bootstrapResamples.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))) resamples, seed \(ReportData.bootstrapSeed)). "
        out += "p: two-sided Wilcoxon signed-rank test over the cases, " + (exact ? "exact (n <= \(WilcoxonSignedRank.exactLimit), zero differences dropped)" : "normal approximation with tie and continuity corrections where n > \(WilcoxonSignedRank.exactLimit)")
        out += ", then Holm-adjusted over the \(data.comparisons.count) comparison\(data.comparisons.count == 1 ? "" : "s") of this report. "
        out += "Teacher - baseline is the gap distillation could close, measured the same way.\n\n"
        out += "| group | student | baseline | teacher - baseline [95% CI] | distilled - baseline | 95% CI | p | p (Holm) | reading |\n|---|---|---|---|---|---|---|---|---|\n"
        for c in data.comparisons {
            let gap = c.gap.map { String(format: "%+.3f [%+.3f, %+.3f]", $0.mean, $0.lower, $0.upper) } ?? "-"
            let mean = c.interval.map { String(format: "%+.3f", $0.mean) } ?? "-"
            let ci = c.interval.map { String(format: "[%+.3f, %+.3f]", $0.lower, $0.upper) } ?? "-"
            let p = c.test.map { String(format: "%.3g", $0.pValue) } ?? "1 (no non-zero difference)"
            let holm = c.holm.map { String(format: "%.3g", $0) } ?? "-"
            out += "| \(c.group) | \(c.stage) | \(c.baseline) | \(gap) | \(mean) | \(ci) | \(p) | \(holm) | \(c.reading) |\n"
        }
        return out
    }

    public static func csv(_ rows: [Row]) -> String {
        var out = "variant,stage,kind,iou,dice,recall,precision,parameters,baseline,baseline_dice\n"
        for r in rows {
            let p = r.metrics["pooled"]
            let values = ["iou", "dice", "recall", "precision"].map { p?[$0]?.number.map { String(format: "%.4f", $0) } ?? "" }
            out += "\"\(r.variant)\",\(r.stage),\(r.kind)," + values.joined(separator: ",")
            out += ",\(r.metrics["parameters"]?.int ?? 0),\(r.baseline ?? ""),\(r.baselineDice.map { String(format: "%.4f", $0) } ?? "")\n"
        }
        return out
    }

    public static func json(_ rows: [Row]) -> JSON {
        .array(rows.map { r in
            .object(["variant": .string(r.variant), "stage": .string(r.stage), "kind": .string(r.kind), "metrics": r.metrics,
                     "baseline": r.baseline.map(JSON.string) ?? .null, "baseline_dice": r.baselineDice.map(JSON.number) ?? .null])
        })
    }

    static func run(_ stage: PlanStage, _ ctx: StageContext) throws {
        let count = try write(plan: ctx.plan, store: ctx.store, to: ctx.directory)
        ctx.log("report of \(count) rows written (report.md, .csv, .json, .html with figures)")
    }

    /// The whole report: Markdown, CSV, JSON, HTML and figures; returns the number of rows.
    @discardableResult
    public static func write(plan: ExecutionPlan, store: RunStore, to directory: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let rows = rows(plan, store: store)
        let data = ReportData(plan: plan, store: store)
        let md = markdown(data, title: plan.specName ?? "Report")
        try RunStore.writeAtomically(Data(csv(rows).utf8), to: directory + "/report.csv")
        try RunStore.writeAtomically(Data(json(rows).pretty.utf8), to: directory + "/report.json")
        let figures = try ReportFigures.write(plan: plan, store: store, data: data, markdown: md, to: directory)
        try RunStore.writeAtomically(Data((md + figures).utf8), to: directory + "/report.md")
        return rows.count
    }

    /// The Markdown a person reads in a terminal: the table and the comparisons.
    public static func text(_ plan: ExecutionPlan, store: RunStore) -> String {
        markdown(ReportData(plan: plan, store: store), title: plan.specName ?? "Report")
    }
}
