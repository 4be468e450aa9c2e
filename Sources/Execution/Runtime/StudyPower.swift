import Foundation
import Medical
import Plan
import StageConfig
import Statistics

/// What a sweep's comparisons can show before it runs (`distill plan`): for every
/// distilled student against its baseline, the design the plan gives it (teacher runs x
/// student seeds x test cases), the smallest difference the report's test would detect,
/// and with a margin the chance to show equivalence; then the cheapest design, by the
/// plan's own cost model, that reaches the spec's `min_effect` (or margin).
///
/// Every claim is tested at alpha / m, m the report's claims (differences, and with a
/// margin equivalences): Holm's first step, so the figures hold for every claim however
/// the others turn out.
public struct StudyPower {
    public struct Row {
        public var group: String
        public var stage: String
        public var baseline: String
        public var design: Design
        public var detectable: Double?
        public var equivalence: Double?
    }

    public var rows: [Row] = []
    public var components: VarianceComponents
    public var source: String
    public var settings: ComparisonSettings
    /// The level each claim is tested at, and the claims.
    public var alpha: Double
    public var claims: Int
    /// The cheapest design reaching the target, its cost and this plan's by the same count.
    public var recommendation: (design: Design, seconds: Double)?
    public var currentSeconds = 0.0
    public var target: String?
    /// Test cases when the data can grow (the phantom makes as many patients as asked).
    public var casesCanGrow: Bool

    /// The plan's comparisons. nil when it has none (no distilled student with a baseline).
    public init?(plan: ExecutionPlan, components: VarianceComponents, source: String, datasetCases: Int?) {
        guard let prepare = plan.stages.first(where: { $0.kind == .prepare }), case .prepare(let data) = prepare.config,
              let report = plan.stages.first(where: { $0.kind == .report }), case .report(let r) = report.config else { return nil }
        settings = r.comparison
        self.components = components
        self.source = source
        if case .phantom = data.source { casesCanGrow = true } else { casesCanGrow = false }
        let cases = datasetCases.map { SplitManifest.testCount(cases: $0, data.split) } ?? 0
        // Costs per run of each spec stage (training and its evaluation), summed by role.
        var teacherRun = 0.0, baselineRun = 0.0, distilledRun = 0.0, evaluation = 0.0
        var seenTeachers = Set<String>(), seenBaselines = Set<String>(), seenDistilled = Set<String>()
        // Each distilled spec stage of each group, with the teacher runs and seeds it pairs.
        var found: [(group: String, stage: String, baseline: String, teachers: Set<String>, seeds: Set<Int>)] = []
        for v in plan.variants {
            let group = ReportData.group(of: v)
            for s in v.stages {
                guard let train = plan.stage(s.train), case .train(let config) = train.config,
                      let base = Report.baseline(of: train, in: v, plan) else { continue }
                let eval = plan.stage(s.evaluate)?.cost.seconds ?? 0
                if seenDistilled.insert(train.hash).inserted { distilledRun += train.cost.seconds + eval; evaluation += eval }
                if seenBaselines.insert(base.train).inserted {
                    let baseEval = plan.stage(base.evaluate)?.cost.seconds ?? 0
                    baselineRun += (plan.stage(base.train)?.cost.seconds ?? 0) + baseEval
                    evaluation += baseEval
                }
                if let t = train.inputs["teacher"], seenTeachers.insert(t).inserted {
                    let teacherEval = v.stages.first { $0.train == t }.flatMap { plan.stage($0.evaluate)?.cost.seconds } ?? 0
                    teacherRun += (plan.stage(t)?.cost.seconds ?? 0) + teacherEval
                    evaluation += teacherEval
                }
                let i = found.firstIndex { $0.group == group && $0.stage == s.name } ?? {
                    found.append((group, s.name, base.name, [], []))
                    return found.count - 1
                }()
                if let t = train.inputs["teacher"] { found[i].teachers.insert(t) }
                found[i].seeds.insert(config.seed)
            }
        }
        rows = found.map { f in
            Row(group: f.group, stage: f.stage, baseline: f.baseline, design: Design(teachers: max(1, f.teachers.count), seeds: f.seeds.count, cases: cases))
        }
        guard !rows.isEmpty else { return nil }
        claims = rows.count * (settings.margin == nil ? 1 : 2)
        alpha = settings.alpha / Double(claims)
        for i in rows.indices {
            rows[i].detectable = DesignPower.smallestDetectable(components, rows[i].design, alpha: alpha, power: settings.power)
            rows[i].equivalence = settings.margin.flatMap { DesignPower.equivalencePower(margin: $0, components, rows[i].design, alpha: alpha) }
        }
        // Cost of a design by the plan's count: every teacher run, baseline run and distilled
        // run costs what this plan's do on average, evaluations in proportion to the test cases.
        let now = rows[0].design
        let perTeacher = teacherRun / Double(max(1, seenTeachers.count))
        // Spec stages of each role (two teachers, two baselines, four distilled pairs in the study).
        let teacherStages = Double(seenTeachers.count) / Double(max(1, now.teachers))
        let baselineStages = Double(seenBaselines.count) / Double(max(1, now.seeds))
        let distilledStages = Double(seenDistilled.count) / Double(max(1, now.teachers * now.seeds))
        let perBaseline = baselineRun / Double(max(1, seenBaselines.count)), perDistilled = distilledRun / Double(max(1, seenDistilled.count))
        let evaluationShare = (teacherRun + baselineRun + distilledRun) > 0 ? evaluation / (teacherRun + baselineRun + distilledRun) : 0
        func cost(_ d: Design) -> Double {
            let runs = teacherStages * Double(d.teachers) * perTeacher + baselineStages * Double(d.seeds) * perBaseline
                + distilledStages * Double(d.teachers * d.seeds) * perDistilled
            let scale = now.cases > 0 ? Double(d.cases) / Double(now.cases) : 1
            return runs * (1 - evaluationShare) + runs * evaluationShare * scale
        }
        currentSeconds = cost(now)
        let effect = settings.minEffect ?? settings.margin
        target = [effect.map { String(format: "detects %g", $0) }, settings.margin.map { String(format: "shows equivalence within +-%g when there is no difference", $0) }]
            .compactMap { $0 }.joined(separator: " and ")
        if target?.isEmpty ?? true { target = nil }
        guard effect != nil, now.cases > 1 else { return }
        let caseChoices = casesCanGrow ? [1, 2, 3, 4, 6, 8].map { now.cases * $0 } : [now.cases]
        var candidates: [Design] = []
        for t in [1, 2, 3, 4, 5, 6, 8, 10] { for s in [2, 3, 4, 5, 6, 8, 10, 12, 15, 20] { for c in caseChoices { candidates.append(Design(teachers: t, seeds: s, cases: c)) } } }
        if let best = DesignPower.cheapest([components], candidates: candidates, alpha: alpha, power: settings.power,
                                           effect: effect, margin: settings.margin, cost: cost) {
            recommendation = (best, cost(best))
        }
    }

    /// Variance components from the finished comparisons of `plan` in `store`: each
    /// replicated comparison's estimates, averaged. nil when none has finished.
    public static func components(plan: ExecutionPlan, store: RunStore) -> (VarianceComponents, String)? {
        let data = ReportData(plan: plan, store: store)
        var found: [VarianceComponents] = []
        for c in data.comparisons {
            if c.replicated, let v = c.components { found.append(v) }
        }
        guard let pooled = VarianceComponents.pooled(found) else { return nil }
        let note = pooled.teacherKnown ? "" : " (one teacher run each: teacher terms unknown, taken as zero)"
        return (pooled, "the store's \(found.count) finished comparison\(found.count == 1 ? "" : "s") of this plan, averaged\(note)")
    }

    public var text: String {
        var out = "\npower, before running: \(rows.count) comparison\(rows.count == 1 ? "" : "s"), each claim tested at "
        out += String(format: "%.3g", alpha) + " (\(String(format: "%g", settings.alpha)) over \(claims) claims, Holm's first step), power \(String(format: "%g", settings.power))\n"
        out += "  variance components (sd in Dice: " + zip(PlannedVariance.keys, components.variances).map { "\($0) \(String(format: "%.4f", $1.squareRoot()))" }.joined(separator: ", ") + ")\n"
        out += "  from \(source)\n"
        let equivalence = settings.margin.map { String(format: "  equivalence within +-%g", $0) } ?? ""
        out += "  " + "comparison".padding(toLength: 34, withPad: " ", startingAt: 0) + "design".padding(toLength: 44, withPad: " ", startingAt: 0) + "detects" + equivalence + "\n"
        for r in rows {
            let name = (r.group == "*" ? "" : r.group + " ") + "\(r.stage) - \(r.baseline)"
            let design = r.design.cases > 0 ? r.design.description : "\(r.design.teachers) x \(r.design.seeds) x ? (test cases unknown)"
            var line = "  " + name.padding(toLength: 34, withPad: " ", startingAt: 0) + design.padding(toLength: 44, withPad: " ", startingAt: 0)
            line += r.detectable.map { String(format: "%.3f", $0) } ?? "-"
            if settings.margin != nil { line += "    " + (r.equivalence.map { String(format: "%.0f%% chance", 100 * $0) } ?? "-") }
            out += line + "\n"
        }
        out += "  (detects: the smallest true difference in Dice found with power \(String(format: "%g", settings.power)); "
        out += settings.margin == nil ? "set report.margin to plan equivalence claims)\n" : "equivalence: the chance to show it when there is no difference)\n"
        guard let target else {
            out += "  set report.min_effect or report.margin for the cheapest design that reaches it\n"
            return out
        }
        if let (design, seconds) = recommendation {
            out += "  cheapest design that \(target), each with power \(String(format: "%g", settings.power)): \(design)"
            out += casesCanGrow && design.cases != rows[0].design.cases
                ? " (the phantom makes the patients: raise data.source.phantom.cases and the test share so that the training patients stay as they are)" : ""
            out += ": ~\(Format.duration(seconds)) of training and evaluation on one machine, against ~\(Format.duration(currentSeconds)) for this design by the same count\n"
        } else {
            out += "  no design up to 10 teacher runs x 20 seeds" + (casesCanGrow ? " x 8 times the test cases" : "") + " \(target) with power \(String(format: "%g", settings.power))\n"
        }
        return out
    }
}
