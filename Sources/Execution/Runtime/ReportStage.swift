import Foundation
import Storage
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
              let set = try? SliceSet(path: store.file(prepare.hash, "slices.bin")),
              let split = try? SplitManifest.make(set, config.split, keepEmpty: config.preprocess.keepEmpty) else { return nil }
        return (set, split.slices(.test), config.classes)
    }

    static func readMetrics(_ store: RunStore, _ hash: String) -> JSON? {
        guard store.isDone(hash), let data = FileManager.default.contents(atPath: store.file(hash, "metrics.json")) else { return nil }
        return JSON.parse(data)
    }

    /// The Markdown a person reads: the table of stages over their runs, each class on the
    /// patients' grids, then each distilled student against its baseline over runs and test
    /// cases, saying how, and what it would take.
    public static func markdown(_ data: ReportData, title: String) -> String {
        var out = "# \(title)\n\n"
        let runs = data.runs
        out += "Test set: \(data.testCases) case\(data.testCases == 1 ? "" : "s") (patients), measured on each case's own voxel grid: "
        out += data.prediction == Evaluation.slidingWindow
            ? "the volume predicted by overlapping 3D windows (Gaussian-weighted, step half a patch) at the prepared spacing, its logits resampled back to the case's grid, "
            : "its predicted slices placed back in the volume "
        out += "and compared with its label file voxel for voxel. Pooled metrics sum TP, FP and FN over every test voxel (as the study pooled its slices), "
        out += "then Dice = 2TP/(2TP+FP+FN)"
        out += runs > 1 ? "; each as mean +- sd over the stage's runs. The last column is each run's mean over test cases of the per-case Dice, averaged over the runs: the outcome every comparison below uses.\n\n"
                        : ". The last column is the mean over test cases of the per-case Dice, the outcome every comparison below uses.\n\n"
        if runs == 1 {
            out += "Every stage here is one training run (one seed): the numbers say how these runs did, not how the recipe does. A rerun with another seed can move them; add `sweep.seeds` to measure by how much.\n\n"
        }
        out += "| group | stage | role | runs | IoU | Dice | recall | precision | params (M) | Dice, mean over cases |\n|---|---|---|---|---|---|---|---|---|---|\n"
        for s in data.summaries {
            func f(_ k: String) -> String {
                guard let v = s.pooled[k], v.mean.isFinite else { return "n/a" }
                return s.runs.count > 1 ? String(format: "%.3f +- %.3f", v.mean, v.sd) : String(format: "%.3f", v.mean)
            }
            let runCount = s.teacherRuns > 1 ? "\(s.runs.count) (\(s.teacherRuns) teachers)" : "\(s.runs.count)"
            out += "| \(s.group) | \(s.stage) | \(s.role.rawValue) | \(runCount) | \(f("iou")) | \(f("dice")) | \(f("recall")) | \(f("precision")) | "
            out += String(format: "%.3f | ", Double(s.parameters) / 1e6) + (s.caseMeanDice.isFinite ? String(format: "%.3f |\n", s.caseMeanDice) : "n/a |\n")
        }
        out += classesMarkdown(data)
        out += comparisonsMarkdown(data)
        if !data.warnings.isEmpty {
            out += "\n## Warnings\n\n" + data.warnings.map { "- " + $0 + "\n" }.joined()
        }
        if !data.machines.isEmpty {
            out += "\n## Machines\n\nThe machines that trained and evaluated these stages, as each stage's done record names it "
            out += "(a stage's result is bit for bit the same on one kind of machine, not across kinds):\n\n"
            for (machine, stages) in data.machines {
                out += "- \(machine.summary): \(stages.count) stage\(stages.count == 1 ? "" : "s")\n"
            }
        }
        return out
    }

    /// Each class on the patients' grids: pooled Dice, and the means over cases of Dice, HD95 and NSD.
    static func classesMarkdown(_ data: ReportData) -> String {
        guard !data.classes.isEmpty else { return "" }
        let tolerances = Set(data.summaries.flatMap { $0.classMetrics.compactMap(\.tolerance) })
        var out = "\n## By class, on each patient's grid\n\n"
        out += "Dice pooled over the test cases (TP, FP and FN of the class summed), and the means over test cases of each case's Dice, "
        out += "95th-percentile Hausdorff distance (HD95, in mm from the voxel spacing"
        out += data.hd95Definitions.isEmpty ? "" : "; " + data.hd95Definitions.joined(separator: " or ")
        out += ") and normalised surface distance (NSD: the share of both surfaces within "
        out += tolerances.count == 1 ? String(format: "%g mm", tolerances.first ?? 0) + " of the other)" : "each class's tolerance of the other, in brackets)"
        out += data.runs > 1 ? ", each as mean +- sd over runs" : ""
        out += ". A metric is undefined (n/a) where its denominator is empty: Dice when neither the prediction nor the label has the class, HD95 and NSD when either lacks it; "
        out += "the means leave those cases out and say how many.\n\n"
        out += "| group | stage | class | Dice (pooled) | Dice (mean over cases) | HD95 mm | NSD |\n|---|---|---|---|---|---|---|\n"
        for s in data.summaries {
            for c in s.classMetrics {
                func f(_ v: (mean: Double, sd: Double), _ format: String, undefined: Int) -> String {
                    guard v.mean.isFinite else { return "n/a" }
                    let text = s.runs.count > 1 ? String(format: format + " +- " + format, v.mean, v.sd) : String(format: format, v.mean)
                    return text + (undefined > 0 ? " (\(undefined) n/a)" : "")
                }
                let nsd = f(c.nsd, "%.3f", undefined: c.undefined.nsd) + (tolerances.count > 1 ? c.tolerance.map { String(format: " [%g mm]", $0) } ?? "" : "")
                out += "| \(s.group) | \(s.stage) | \(c.name) | \(f(c.pooledDice, "%.3f", undefined: 0)) | \(f(c.caseDice, "%.3f", undefined: c.undefined.dice)) | "
                out += "\(f(c.hd95, "%.1f", undefined: c.undefined.hd95)) | \(nsd) |\n"
            }
        }
        if data.classes.count > 1 { out += "\nThe Dice of the first table is the mean of the pooled Dice over the \(data.classes.count) classes (background left out) that define it.\n" }
        return out
    }

    /// "12", or why no number of seeds is given.
    static func describe(_ needed: RunsNeeded?) -> String {
        switch needed {
        case .runs(let n)?: return "\(n)"
        case .unreachable(let floor)?: return String(format: "none: se stays >= %.3f", floor)
        case .unknown?: return "unknown (one run)"
        case nil: return "-"
        }
    }

    static func comparisonsMarkdown(_ data: ReportData) -> String {
        guard !data.comparisons.isEmpty else { return "" }
        let settings = data.settings
        let tested = data.comparisons.filter(\.replicated).count
        let level = String(format: "%g", settings.alpha), power = String(format: "%g", settings.power)
        var out = "\n## Distillation against the baselines\n\n"
        out += "Each distilled student against its baseline: the same architecture on the same data, trained without a teacher. "
        out += "The outcome is a run's Dice on each test case. Runs pair by seed (a seed starts both arms from the same draws), once under each teacher run; "
        out += "the per-case differences form a teacher run x seed x test case array whose three factors are random and crossed. "
        out += "The effect is the array's mean. Its standard error adds the variation between teacher runs, between seeds and between test cases "
        out += "(ANOVA estimates of the variance components). With teacher runs and seeds both replicated the test refers the mean over its unbiased standard error "
        out += "to a null simulated over what the data say the variance components may be (their fiducial distribution; df is the Student t's with the same critical value); "
        out += "with one teacher run it is a t test with Satterthwaite's degrees of freedom (negative components set to zero). Benchmarks/validity.py measures both on simulated designs"
        let margin = settings.margin.map { String(format: "%g", $0) }
        let claims = margin.map { " and the equivalence tests (two one-sided tests against +-\($0))" } ?? ""
        out += tested > 0 ? ", Holm-adjusted over the \(tested) comparison\(tested == 1 ? "" : "s") with two or more runs per arm\(claims). " : ". "
        out += "A difference needs p (Holm) < \(level); equivalence needs the equivalence p (Holm) < \(level)"
        out += margin == nil ? ", and a margin (`report.margin`), which this spec does not set: without one a comparison can only show a difference or be inconclusive. " : ". "
        out += "With one teacher run a claim holds for that teacher run only; with one run per arm there is no claim about training, "
        out += "and the interval covers the test cases alone. Teacher - baseline is the gap distillation could close, arm against arm (their runs do not pair).\n\n"
        out += "| group | student | baseline | runs (distilled / baseline) | teacher - baseline [95% CI] | distilled - baseline | 95% CI | df | p | p (Holm) |"
        out += (margin == nil ? "" : " equivalence p (Holm) |") + " reading | without collapsed runs | seeds per arm to detect it |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|" + (margin == nil ? "" : "---|") + "---|---|---|\n"
        for c in data.comparisons {
            let gap = c.gap.map { String(format: "%+.3f [%+.3f, %+.3f]", $0.estimate, $0.lower, $0.upper) } ?? "-"
            let mean = c.effect.map { String(format: "%+.3f", $0.estimate) } ?? "-"
            let ci = c.effect.map { String(format: "[%+.3f, %+.3f]", $0.lower, $0.upper) } ?? "-"
            let df = c.effect.map { $0.df.isFinite ? String(format: "%.1f", $0.df) : "inf" } ?? "-"
            let p = c.effect.map { String(format: "%.3g", $0.pValue) } ?? "-"
            let holm = c.holm.map { String(format: "%.3g", $0) } ?? "-"
            let runs = c.teacherRuns > 1 ? "\(c.runs.distilled) (\(c.teacherRuns) x \(c.seeds)) / \(c.runs.baseline)" : "\(c.runs.distilled) / \(c.runs.baseline)"
            var needed = describe(c.runsNeeded) + (settings.minEffect == nil ? "" : " (observed)")
            if let minimum = settings.minEffect, let m = c.runsNeededForMinimum { needed += "; " + describe(m) + String(format: " (%g)", minimum) }
            let equivalence = margin == nil ? "" : " \(c.equivalenceHolm.map { String(format: "%.3g", $0) } ?? "-") |"
            let sensitivity = c.withoutCollapsed.map { String(format: "%+.3f [%+.3f, %+.3f]", $0.estimate, $0.lower, $0.upper) } ?? "none flagged"
            out += "| \(c.group) | \(c.stage) | \(c.baseline) | \(runs) | \(gap) | \(mean) | \(ci) | \(df) | \(p) | \(holm) |\(equivalence) \(c.reading) | \(sensitivity) | \(needed) |\n"
        }
        out += "\nSeeds per arm to detect it: the fewest student seeds per arm (under the same teacher runs, on the same test cases) with which a two-sided t test at \(level) "
        out += "would detect the observed difference"
        out += settings.minEffect.map { String(format: " (and %g, the spec's smallest effect worth detecting)", $0) } ?? ""
        out += " with power \(power), were the variance components what this comparison estimates (noncentral t). "
        out += "\"none\" means that the terms more seeds cannot shrink (the test cases, the teacher runs) already leave more uncertainty than that: more test cases or teacher runs would. "
        out += "Without collapsed runs: the same comparison with the runs the warnings flag as collapsed left out (the verdict uses every run).\n"
        let perRun = data.comparisons.filter { $0.runDifferences.count > 1 }
        if !perRun.isEmpty {
            out += "\nDistilled - baseline per run (mean over test cases), by seed" + (perRun.contains { $0.teacherRuns > 1 } ? " and teacher run" : "") + ":\n\n"
            for c in perRun {
                let name = c.group == "*" ? c.stage : "\(c.group) \(c.stage)"
                let byTeacher = Dictionary(grouping: c.runDifferences, by: \.teacherRun).sorted { $0.key < $1.key }.map { t, runs in
                    (c.teacherRuns > 1 ? "teacher run \(t + 1): " : "") + runs.map { String(format: "%d: %+.3f", $0.seed, $0.difference) }.joined(separator: ", ")
                }
                out += "- \(name): " + byTeacher.joined(separator: "; ") + "\n"
            }
        }
        let leftOut = data.comparisons.filter { !$0.leftOut.isEmpty }
        if !leftOut.isEmpty {
            out += "\nRuns left out because their partner is missing: " + leftOut.map { "\($0.stage): \($0.leftOut.joined(separator: ", "))" }.joined(separator: "; ") + ".\n"
        }
        return out
    }

    /// The comparisons as data: every figure of the table, and each paired run's difference.
    public static func comparisonsJSON(_ data: ReportData) -> JSON {
        func effect(_ e: Effect?) -> JSON {
            guard let e else { return .null }
            return .object(["estimate": .number(e.estimate), "standard_error": .number(e.standardError),
                            "df": e.df.isFinite ? .number(e.df) : .string("inf"), "lower": .number(e.lower), "upper": .number(e.upper),
                            "p": .number(e.pValue), "level": .number(e.level)])
        }
        func needed(_ n: RunsNeeded?) -> JSON {
            switch n {
            case .runs(let k)?: return .object(["seeds": .int(k)])
            case .unreachable(let floor)?: return .object(["seeds": .null, "standard_error_floor": .number(floor)])
            case .unknown?: return .object(["seeds": .null, "why": .string("one run per arm")])
            case nil: return .null
            }
        }
        return .object([
            "method": .string("paired by seed; teacher run x seed x test case crossed random effects; with teacher runs and seeds replicated, the mean over its unbiased ANOVA standard error, calibrated over the fiducial distribution of the variance components (df: the equivalent Student t's); otherwise Satterthwaite's t (negative components set to zero); two one-sided tests against the margin; Holm over every claim of the replicated comparisons"),
            "alpha": .number(data.settings.alpha), "power": .number(data.settings.power),
            "min_effect": data.settings.minEffect.map(JSON.number) ?? .null, "margin": data.settings.margin.map(JSON.number) ?? .null,
            "comparisons": .array(data.comparisons.map { c in
                .object(["group": .string(c.group), "student": .string(c.stage), "baseline": .string(c.baseline),
                         "teacher": c.teacher.map(JSON.string) ?? .null, "teacher_runs": .int(c.teacherRuns), "seeds": .int(c.seeds),
                         "cases": .int(c.cases), "runs": .object(["distilled": .int(c.runs.distilled), "baseline": .int(c.runs.baseline)]),
                         "replicated": .bool(c.replicated), "effect": effect(c.effect), "p_holm": c.holm.map(JSON.number) ?? .null,
                         "gap": effect(c.gap), "reading": .string(c.reading),
                         "equivalence_p": c.equivalence.map(JSON.number) ?? .null, "equivalence_p_holm": c.equivalenceHolm.map(JSON.number) ?? .null,
                         "without_collapsed": effect(c.withoutCollapsed),
                         "seeds_needed": needed(c.runsNeeded), "seeds_needed_for_min_effect": needed(c.runsNeededForMinimum),
                         "run_differences": .array(c.runDifferences.map { .object(["teacher_run": .int($0.teacherRun + 1), "seed": .int($0.seed), "difference": .number($0.difference)]) }),
                         "left_out": .array(c.leftOut.map(JSON.string))])
            }),
            "collapsed_runs": .array(data.collapsed.map { r in
                .object(["stage": .string(r.stage), "group": .string(r.group), "seed": r.seed.map(JSON.int) ?? .null, "hash": .string(r.train),
                         "measure": .string(r.measure), "value": .number(r.value), "median": .number(r.median)])
            }),
        ])
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
        ctx.log("report of \(count) rows written (report.md, .csv, .json, .html with figures; comparisons.json)")
    }

    /// Checks every finished stage the report reads (the prepared data, each trained and
    /// evaluated stage) against its recorded digests, and throws naming the first damaged
    /// one: a report never prints a figure from a file that is not what its stage wrote.
    public static func verifyInputs(_ plan: ExecutionPlan, store: RunStore) throws {
        var hashes: [String] = plan.stages.filter { $0.kind == .prepare }.map(\.hash)
        for v in plan.variants { for s in v.stages { hashes += [s.train, s.evaluate] } }
        var seen = Set<String>()
        for h in hashes where seen.insert(h).inserted && store.claimsDone(h) {
            if case .damaged(let problems) = store.verify(h) {
                let label = plan.stage(h)?.label ?? ""
                throw RuntimeError.damaged(stage: h, "\(label.isEmpty ? "" : "(\(label)) ")" + problems.map(\.description).joined(separator: "; "))
            }
        }
    }

    /// The whole report: Markdown, CSV, JSON, HTML and figures; returns the number of rows.
    @discardableResult
    public static func write(plan: ExecutionPlan, store: RunStore, to directory: String) throws -> Int {
        try verifyInputs(plan, store: store)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let rows = rows(plan, store: store)
        let data = ReportData(plan: plan, store: store)
        let md = markdown(data, title: plan.specName ?? "Report")
        try AtomicFile.write(Data(csv(rows).utf8), to: directory + "/report.csv")
        try AtomicFile.write(Data(json(rows).pretty.utf8), to: directory + "/report.json")
        try AtomicFile.write(Data(comparisonsJSON(data).pretty.utf8), to: directory + "/comparisons.json")
        let figures = try ReportFigures.write(plan: plan, store: store, data: data, markdown: md, to: directory)
        try AtomicFile.write(Data((md + figures).utf8), to: directory + "/report.md")
        return rows.count
    }

    /// The Markdown a person reads in a terminal: the table and the comparisons.
    public static func text(_ plan: ExecutionPlan, store: RunStore) -> String {
        markdown(ReportData(plan: plan, store: store), title: plan.specName ?? "Report")
    }
}
