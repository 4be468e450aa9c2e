import Figures
import Foundation
import Storage
import Medical
import NN
import Plan
import StageConfig
import Tensor

/// The report's pictures, each drawn once and written as SVG and PNG: test Dice by
/// stage, the distillation effects with their intervals, training curves, predicted
/// masks on the same test slices, and the plan; and one HTML page that shows them.
enum ReportFigures {
    static let roleColors: [ReportData.Role: Color] = [.teacher: Color(84, 162, 75), .baseline: Color(186, 176, 172),
                                                        .distilled: Color(76, 120, 168), .trained: Color(76, 120, 168)]

    static func stageLabel(_ s: ReportData.StageSummary) -> String { s.group == "*" ? s.stage : "\(s.group) \(s.stage)" }

    /// For narrow columns: the group's axis values without their names (`T1 kd` for `temperature=T1 kd`).
    static func shortStageLabel(_ s: ReportData.StageSummary) -> String {
        s.group == "*" ? s.stage : s.group.split(separator: ",").map { $0.split(separator: "=").last.map(String.init) ?? String($0) }.joined(separator: ",") + " " + s.stage
    }

    static func diceChart(_ data: ReportData) -> Canvas {
        let bars = data.summaries.map { s -> Charts.Bar in
            let d = s.pooled["dice"] ?? (.nan, .nan)
            let n = s.runs.count
            let whisker: (Double, Double)? = n > 1 ? (d.mean - d.sd, d.mean + d.sd) : nil
            return Charts.Bar(label: stageLabel(s), value: d.mean, interval: whisker, color: roleColors[s.role] ?? .black,
                              note: n > 1 ? String(format: "+- %.3f (%d runs)", d.sd, n) : nil)
        }
        let lo = max(0, ((data.summaries.compactMap { $0.pooled["dice"]?.mean }.filter(\.isFinite).min() ?? 0) - 0.15) * 10).rounded(.down) / 10
        return Charts.bars(title: "Test Dice by stage", subtitle: "pooled over every test voxel, on the patients' grids" + (data.runs > 1 ? "; mean over runs, whiskers +- 1 sd" : ""),
                           axisLabel: "Dice (test, pooled over voxels)", bars: bars, range: min(lo, 0.9)...1,
                           legend: [("teacher", roleColors[.teacher] ?? .black), ("baseline student", roleColors[.baseline] ?? .black),
                                    ("distilled student", roleColors[.distilled] ?? .black)])
    }

    /// Every run of every stage, one dot each, so that the spread (and a run that collapsed) is seen.
    static func runsChart(_ data: ReportData) -> Canvas {
        let rows = data.summaries.map { s -> Charts.DotRow in
            let teacherRuns = Array(Set(s.runs.compactMap(\.teacher))).sorted { a, b in
                (s.runs.firstIndex { $0.teacher == a } ?? 0) < (s.runs.firstIndex { $0.teacher == b } ?? 0)
            }
            return Charts.DotRow(label: stageLabel(s), values: s.runs.map { r in
                let flagged = data.collapsed.contains { $0.train == r.train }
                let who = (r.seed.map { "seed \($0)" } ?? "run") + (teacherRuns.count > 1 ? (r.teacher.flatMap { teacherRuns.firstIndex(of: $0) }.map { "/t\($0 + 1)" } ?? "") : "")
                return (r.caseMeanDice, flagged, flagged ? who : nil)
            }, color: roleColors[s.role] ?? .black)
        }
        let values = data.summaries.flatMap { $0.runs.map(\.caseMeanDice) }.filter(\.isFinite)
        let lo = max(0, ((values.min() ?? 0) - 0.05) * 10).rounded(.down) / 10
        return Charts.dots(title: "Every training run", subtitle: "test Dice of each run (mean over test cases); tick: the stage's mean; red: a run the report's rule names as collapsed",
                           axisLabel: "Dice (test, mean over cases)", rows: rows, range: min(lo, 0.9)...1,
                           legend: [("teacher", roleColors[.teacher] ?? .black), ("baseline student", roleColors[.baseline] ?? .black),
                                    ("distilled student", roleColors[.distilled] ?? .black), ("collapsed run", Charts.markedColor)])
    }

    static func effectChart(_ data: ReportData) -> Canvas? {
        guard !data.comparisons.isEmpty else { return nil }
        var bars: [Charts.Bar] = []
        for c in data.comparisons {
            let name = c.group == "*" ? c.stage : "\(c.group) \(c.stage)"
            if let g = c.gap, !bars.contains(where: { $0.label == "\(c.teacher ?? "teacher") - \(c.baseline)" }) {
                bars.append(Charts.Bar(label: "\(c.teacher ?? "teacher") - \(c.baseline)", value: g.estimate, interval: (g.lower, g.upper),
                                       color: roleColors[.teacher] ?? .black, note: String(format: "[%+.3f, %+.3f]", g.lower, g.upper)))
            }
            if let e = c.effect {
                let p = c.holm.map { String(format: ", p(Holm) %.2g", $0) } ?? (c.replicated ? "" : ", one run per arm")
                bars.append(Charts.Bar(label: "\(name) - \(c.baseline)", value: e.estimate, interval: (e.lower, e.upper),
                                       color: roleColors[.distilled] ?? .black, note: String(format: "[%+.3f, %+.3f]", e.lower, e.upper) + p))
            }
        }
        let extent = bars.flatMap { [abs($0.value), abs($0.interval?.0 ?? 0), abs($0.interval?.1 ?? 0)] }.filter(\.isFinite).max() ?? 0.1
        let r = max(0.02, (min(1, extent) * 1.15 * 50).rounded(.up) / 50)
        let replicated = data.comparisons.contains { $0.replicated }
        return Charts.bars(title: "What distillation changed",
                           subtitle: "difference in Dice (mean over test cases and runs); whiskers: 95% t interval over "
                               + (replicated ? "runs and test cases" : "test cases only (one run per arm)"),
                           axisLabel: "Dice difference", bars: bars, range: -r...r,
                           legend: [("teacher - baseline (the gap)", roleColors[.teacher] ?? .black), ("distilled - baseline", roleColors[.distilled] ?? .black)])
    }

    /// Training loss and validation Dice of one trained stage, on separate axes, with
    /// the kept epoch and its test Dice (pooled over the validation slices or patches, and over the test volumes' voxels).
    static func curves(_ store: RunStore, _ plan: ExecutionPlan, _ s: ReportData.StageSummary) -> Canvas? {
        guard let run = s.runs.first, let text = try? String(contentsOfFile: store.file(run.train, "metrics.jsonl"), encoding: .utf8) else { return nil }
        let records = text.split(separator: "\n").compactMap { JSON.parse(Data($0.utf8)) }
        guard !records.isEmpty else { return nil }
        func series(_ key: String) -> [(Double, Double)] {
            records.compactMap { r in r["epoch"]?.number.flatMap { e in r[key]?.number.map { (e, $0) } } }
        }
        let selected = ReportData.keptEpoch(store, run.train).map(Double.init)
        let test = Report.readMetrics(store, run.evaluate)?["pooled"]?["dice"]?.number
        let lossPanel = Charts.Panel(yLabel: "loss", series: [
            Charts.Series(name: "train loss", points: series("train_loss"), color: Color.palette[0]),
            Charts.Series(name: "val loss", points: series("val_loss"), color: Color.palette[1]),
        ].filter { !$0.points.isEmpty })
        var dicePanel = Charts.Panel(yLabel: "Dice (pooled)", series: [Charts.Series(name: "val Dice", points: series("val_dice"), color: Color.palette[4])],
                                     yRange: 0...1)
        if let test { dicePanel.references.append((test, "test Dice", Color.palette[2])) }
        let seedNote = s.runs.count > 1 ? " (first of \(s.runs.count) runs)" : ""
        let volumes = Report.readMetrics(store, run.evaluate)?["prediction"]?.string == Evaluation.slidingWindow
        return Charts.stacked(title: "Training of \(stageLabel(s))\(seedNote)",
                              subtitle: "val Dice: \(volumes ? "2 patches per val volume" : "the val slices"); test Dice: on the patients' grids; dashed: kept checkpoint",
                              xLabel: "epoch", panels: dicePanel.series[0].points.isEmpty ? [lossPanel] : [lossPanel, dicePanel],
                              marks: selected.map { [($0, "kept")] } ?? [])
    }

    /// The same test slices (the largest foreground section of up to four test cases) with the
    /// ground truth and each stage's prediction (first seed), at the models' resolution; for 3D
    /// networks, on the patients' own grids (`volumeOverlays`).
    static func overlays(_ store: RunStore, _ plan: ExecutionPlan, _ data: ReportData) throws -> Canvas? {
        if data.prediction == Evaluation.slidingWindow { return try volumeOverlays(store, plan, data) }
        guard let (set, test, classes) = Report.testSlices(plan, store) else { return nil }
        var best: [Int: (slice: Int, area: Int)] = [:]
        for s in test {
            let (_, label) = set.batch([s])
            let area = label.values.filter { $0 > 0.5 }.count
            let p = set.records[s].patient
            if area > (best[p]?.area ?? 0) { best[p] = (s, area) }
        }
        let chosen = best.sorted { set.patients[$0.key] < set.patients[$1.key] }.prefix(4).map { ($0.key, $0.value.slice) }
        guard !chosen.isEmpty else { return nil }
        let (images, labels) = set.batch(chosen.map(\.1))
        let columns = data.summaries.filter { Report.readMetrics(store, $0.runs.first?.evaluate ?? "") != nil }
        var masks: [[[UInt8]]] = []  // class maps per column, per row
        let plane = set.height * set.width
        for s in columns {
            guard let run = s.runs.first, let stage = plan.stage(run.train), case .train(let c) = stage.config,
                  let evaluate = plan.stage(run.evaluate), case .evaluate(let e) = evaluate.config else { masks.append([]); continue }
            let model = try ModelInput.build(c.model, for: set, classes: classes, seed: 0)
            try Checkpoint.loadModel(model, from: store.file(run.train, "best.safetensors"))
            let out = Tape.noGrad { model.forward(Variable(images), training: false, taps: []) }
            guard let logits = out.logits[Metrics.evaluatedHead]?.value else { masks.append([]); continue }
            masks.append((0..<chosen.count).map { b in
                Metrics.classMap(logits, image: b, threshold: Float(e.threshold), onLogit: e.thresholdOn == .logit)
            })
        }
        let rows = chosen.enumerated().map { b, pick in
            OverlayRow(label: "\(set.patients[pick.0]) z\(set.records[pick.1].slice)",
                       image: Array(UnsafeBufferPointer(start: images.pointer + b * set.channels * plane, count: plane)),
                       truth: Metrics.truthMap(labels, image: b), predictions: masks.map { $0.count > b ? $0[b] : nil })
        }
        return overlayGrid(rows, height: set.height, width: set.width, columns: columns.map(shortStageLabel), classes: classes,
                           title: "Predictions on the same test slices",
                           subtitle: "the largest foreground section of \(chosen.count) test cases; models of the first seed, at \(set.height)x\(set.width)")
    }

    /// For 3D networks: the section along the slice axis with the most foreground of up to four
    /// test cases, on each patient's own grid, with the label and each stage's written prediction
    /// (first seed), as evaluation measured them.
    static func volumeOverlays(_ store: RunStore, _ plan: ExecutionPlan, _ data: ReportData) throws -> Canvas? {
        guard let prepare = plan.stages.first(where: { $0.kind == .prepare }), case .prepare(let config) = prepare.config,
              store.isDone(prepare.hash) else { return nil }
        let root = try PreparedData.datasetRoot(prepare.hash, store: store)
        var orientation: AxisOrientation?
        if case .msd(_, let o) = config.source { orientation = o }
        let dataset = try MSDDataset.load(root, analyzeOrientation: orientation)
        let columns = data.summaries.filter { Report.readMetrics(store, $0.runs.first?.evaluate ?? "") != nil }
        guard let first = columns.first?.runs.first else { return nil }
        let ids = (Report.readMetrics(store, first.evaluate)?["cases"]?.array ?? []).compactMap { $0["case"]?.string }.sorted().prefix(4)
        let classOf = config.classes.indexOfValue, axis = config.preprocess.sliceAxis
        var rows: [OverlayRow] = [], plane = (0, 0)
        for id in ids {
            guard let c = dataset.cases.first(where: { $0.id == id }) else { continue }
            let (modalities, label) = try SliceSet.read(dataset, c, config.preprocess)
            let order = VolumeSet.networkAxes(axis)
            let (depth, h, w) = (label.dims[order[0]], label.dims[order[1]], label.dims[order[2]])
            let n = h * w
            func classes(_ v: Volume) -> [UInt8] { VolumeSet.networkOrder(v, axis: axis).map { UInt8(classOf[Int($0)] ?? 0) } }
            let truth = classes(label)
            var k = 0, most = -1
            for z in 0..<depth {
                let area = truth[(z * n)..<((z + 1) * n)].reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
                if area > most { (k, most) = (z, area) }
            }
            var predictions: [[UInt8]?] = []
            for s in columns {
                let file = s.runs.first.map { store.directory($0.evaluate) + "/predictions/\(id).nii.gz" }
                guard let file, FileManager.default.fileExists(atPath: file) else { predictions.append(nil); continue }
                predictions.append(Array(classes(try NIfTI.read(file))[(k * n)..<((k + 1) * n)]))
            }
            let image = Array(VolumeSet.networkOrder(modalities[0], axis: axis)[(k * n)..<((k + 1) * n)])
            plane = (h, w)
            rows.append(OverlayRow(label: "\(id) z\(k)", image: image, truth: Array(truth[(k * n)..<((k + 1) * n)]), predictions: predictions))
        }
        // Cases of one dataset may differ in size; the grid shows those of the first one's.
        rows = rows.filter { $0.truth.count == plane.0 * plane.1 }
        guard !rows.isEmpty else { return nil }
        return overlayGrid(rows, height: plane.0, width: plane.1, columns: columns.map(shortStageLabel), classes: config.classes,
                           title: "Predictions on the patients' grids",
                           subtitle: "the \(axis.rawValue) section with the most foreground of \(rows.count) test cases; sliding-window predictions of the first seed")
    }

    /// One row of an overlay grid: a plane of the image's first channel, its classes, and each column's predicted classes.
    struct OverlayRow {
        var label: String
        var image: [Float]
        var truth: [UInt8]
        var predictions: [[UInt8]?]
    }

    /// The image, the ground truth, and each prediction over the image with the truth outlined.
    static func overlayGrid(_ rows: [OverlayRow], height: Int, width: Int, columns: [String], classes: LabelClasses,
                            title: String, subtitle: String) -> Canvas {
        // One class: red prediction, green truth (as before); several: a colour per class for both.
        let truthColor = Color(60, 200, 90)
        func classColor(_ k: UInt8, truth: Bool) -> Color {
            classes.count == 1 && truth ? truthColor : Color.segmentationClass(Int(k))
        }
        func blend(_ g: UInt8, _ c: Color, _ w: Int) -> Color {
            Color(UInt8((Int(g) + w * Int(c.r)) / (w + 1)), UInt8((Int(g) + w * Int(c.g)) / (w + 1)), UInt8((Int(g) + w * Int(c.b)) / (w + 1)))
        }
        func panel(_ row: OverlayRow, prediction: [UInt8]?, truthFill: Bool) -> RGBImage {
            // The first channel shown from its own minimum to maximum: inputs are z-scores as often as [0, 1] windows.
            let (lo, top) = (row.image.min() ?? 0, row.image.max() ?? 1)
            let hi = top > lo ? top : lo + 1
            let scale = max(1, 128 / max(height, width))
            var img = RGBImage(width: width * scale, height: height * scale)
            let truth = row.truth.map { $0 > 0 }
            for y in 0..<height {
                for x in 0..<width {
                    let i = y * width + x
                    let g = UInt8(max(0, min(255, (row.image[i] - lo) / (hi - lo) * 255)))
                    var color = Color(g, g, g)
                    if truthFill, truth[i] { color = blend(g, classColor(row.truth[i], truth: true), 1) }
                    if let p = prediction, p[i] > 0 { color = blend(g, classColor(p[i], truth: false), 2) }
                    // The ground truth's outline on every prediction.
                    if prediction != nil, truth[i], [(1, 0), (-1, 0), (0, 1), (0, -1)].contains(where: { dx, dy in
                        let (xx, yy) = (x + dx, y + dy)
                        return xx < 0 || yy < 0 || xx >= width || yy >= height || !truth[yy * width + xx]
                    }) { color = truthColor }
                    for sy in 0..<scale { for sx in 0..<scale { img[x * scale + sx, y * scale + sy] = color } }
                }
            }
            return img
        }
        let grid = rows.map { row in
            (row.label, [panel(row, prediction: nil, truthFill: false), panel(row, prediction: nil, truthFill: true)]
                + row.predictions.map { panel(row, prediction: $0, truthFill: false) })
        }
        return Charts.imageGrid(title: title, subtitle: subtitle, columns: ["image", "ground truth"] + columns, rows: grid,
                                legend: classes.count == 1
                                    ? [("ground truth (outline on predictions)", truthColor), ("prediction", Color.segmentationClass(1))]
                                    : [("ground truth outline", truthColor)] + classes.classes.enumerated().map { ($1.name, Color.segmentationClass($0 + 1)) })
    }

    /// Writes every figure (SVG and PNG) and report.html; returns the Markdown that shows them.
    static func write(plan: ExecutionPlan, store: RunStore, data: ReportData, markdown: String, to directory: String) throws -> String {
        var figures: [(name: String, canvas: Canvas)] = [("dice", diceChart(data)), ("runs", runsChart(data))]
        if let e = effectChart(data) { figures.append(("effects", e)) }
        var notes: [String] = []
        do {
            if let o = try overlays(store, plan, data) { figures.append(("overlays", o)) }
        } catch {
            notes.append("Predictions could not be drawn: \(error)")
        }
        var curves: [(String, Canvas)] = []
        for s in data.summaries {
            guard let c = Self.curves(store, plan, s) else { continue }
            let group = s.group == "*" ? "" : "-" + s.group.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" ? $0 : "-" }.map(String.init).joined()
            curves.append(("curves-\(s.stage)\(group)", c))
        }
        let dag = plan.drawing(title: "The plan: \(plan.specName ?? "sweep")")
        try AtomicFile.write(Data(plan.dot().utf8), to: directory + "/plan.dot")
        for (name, canvas) in figures + curves + [("plan", dag)] {
            try AtomicFile.write(Data(canvas.svg().utf8), to: "\(directory)/\(name).svg")
            try canvas.png(to: "\(directory)/\(name).png")
        }
        var md = "\n## Figures\n\n" + figures.map { "![\($0.name)](\($0.name).png)\n" }.joined(separator: "\n")
        md += notes.map { "\n" + $0 + "\n" }.joined()
        md += "\nTraining curves: " + curves.map { "[\($0.0.dropFirst(7))](\($0.0).png)" }.joined(separator: ", ") + ". The plan: [plan.svg](plan.svg) (and plan.dot).\n"
        var html = "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(Canvas.escape(plan.specName ?? "report"))</title>"
        html += "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}"
        html += "td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px}th{background:#f4f4f4}img{max-width:100%;display:block;margin:1em 0}"
        html += ".curves img{display:inline-block;max-width:49%}</style></head><body>"
        html += markdownTables(markdown)
        for f in figures { html += "<img src=\"\(f.name).svg\" alt=\"\(f.name)\">" }
        html += notes.map { "<p>\(Canvas.escape($0))</p>" }.joined()
        html += "<h2>Training curves</h2><div class=\"curves\">" + curves.map { "<img src=\"\($0.0).svg\" alt=\"\($0.0)\">" }.joined() + "</div>"
        html += "<h2>Plan</h2><img src=\"plan.svg\" alt=\"plan\"></body></html>\n"
        try AtomicFile.write(Data(html.utf8), to: directory + "/report.html")
        return md
    }

    /// The report's Markdown (headings, paragraphs and pipe tables) as HTML.
    static func markdownTables(_ markdown: String) -> String {
        var html = "", table: [[String]] = []
        func flush() {
            guard !table.isEmpty else { return }
            html += "<table>" + table.enumerated().map { i, row in
                "<tr>" + row.map { i == 0 ? "<th>\(Canvas.escape($0))</th>" : "<td>\(Canvas.escape($0))</td>" }.joined() + "</tr>"
            }.joined() + "</table>"
            table = []
        }
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("|") {
                let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                if !cells.allSatisfy({ $0.allSatisfy { $0 == "-" } }) { table.append(cells) }
                continue
            }
            flush()
            if line.hasPrefix("## ") { html += "<h2>\(Canvas.escape(String(line.dropFirst(3))))</h2>" }
            else if line.hasPrefix("# ") { html += "<h1>\(Canvas.escape(String(line.dropFirst(2))))</h1>" }
            else if line.hasPrefix("- ") { html += "<ul><li>\(Canvas.escape(String(line.dropFirst(2))))</li></ul>" }
            else if !line.isEmpty { html += "<p>\(Canvas.escape(String(line)))</p>" }
        }
        flush()
        return html
    }
}

extension ExecutionPlan {
    /// The DAG drawn by Distillery itself (no Graphviz): a column per dependency depth,
    /// a box per stage with its kind, short hash and label, an edge per input.
    public func drawing(title: String) -> Canvas {
        func color(_ kind: StageKind) -> Color { let (r, g, b) = kind.rgb; return Color(r, g, b) }
        var depth: [String: Int] = [:]
        for s in stages {  // stages are listed after their inputs
            depth[s.hash] = (s.inputs.values.compactMap { depth[$0] }.max() ?? -1) + 1
        }
        let nodes = stages.map { s in
            Charts.Node(id: s.hash, lines: ["\(s.kind.rawValue) \(s.shortHash)", s.label], color: color(s.kind), column: depth[s.hash] ?? 0)
        }
        let edges = stages.flatMap { s in s.inputs.values.sorted().map { (from: $0, to: s.hash) } }
        return Charts.graph(title: title, subtitle: "\(stages.count) stages; an arrow runs from a stage to one that reads its output",
                            nodes: nodes, edges: edges, legend: StageKind.allCases.map { ($0.rawValue, color($0)) })
    }
}
