import Foundation
import Plan
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

    static func readMetrics(_ store: RunStore, _ hash: String) -> JSON? {
        guard store.isDone(hash), let data = FileManager.default.contents(atPath: store.file(hash, "metrics.json")) else { return nil }
        return JSON.parse(data)
    }

    /// Markdown table.
    public static func markdown(_ rows: [Row], title: String) -> String {
        var out = "# \(title)\n\nTest set, metrics pooled over all slices (per-case mean +- sd in brackets).\n\n"
        out += "| variant | stage | IoU | Dice | recall | precision | params (M) | Dice vs baseline |\n|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            let p = r.metrics["pooled"], c = r.metrics["per_case"]
            func f(_ k: String) -> String {
                let pooled = p?[k]?.number.map { String(format: "%.3f", $0) } ?? "-"
                guard let m = c?[k]?["mean"]?.number, let s = c?[k]?["sd"]?.number else { return pooled }
                return pooled + String(format: " (%.3f +- %.3f)", m, s)
            }
            let params = r.metrics["parameters"]?.number.map { String(format: "%.3f", $0 / 1e6) } ?? "-"
            var delta = ""
            if let b = r.baselineDice, let d = p?["dice"]?.number, b > 0 {
                delta = String(format: "%+.1f%% vs %@", (d - b) / b * 100, r.baseline ?? "")
            }
            out += "| \(r.variant) | \(r.stage) | \(f("iou")) | \(f("dice")) | \(f("recall")) | \(f("precision")) | \(params) | \(delta) |\n"
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

    /// The whole report (with the across-seeds section when the sweep has a `seed` axis):
    /// Markdown, CSV, JSON, HTML and figures; returns the number of rows.
    @discardableResult
    public static func write(plan: ExecutionPlan, store: RunStore, to directory: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let rows = rows(plan, store: store)
        let md = text(plan, store: store)
        try RunStore.writeAtomically(Data(md.utf8), to: directory + "/report.md")
        try RunStore.writeAtomically(Data(csv(rows).utf8), to: directory + "/report.csv")
        try RunStore.writeAtomically(Data(json(rows).pretty.utf8), to: directory + "/report.json")
        try ReportFigures.write(plan: plan, store: store, rows: rows, markdown: md, to: directory)
        return rows.count
    }

    /// The Markdown a person reads: the table, and the across-seeds section if any.
    public static func text(_ plan: ExecutionPlan, store: RunStore) -> String {
        markdown(rows(plan, store: store), title: plan.specName ?? "Report") + SeedAggregation.markdown(SeedAggregation.rows(plan, store: store))
    }
}
