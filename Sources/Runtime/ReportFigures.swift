import Foundation
import Medical
import Plan
import StageConfig

/// The report's pictures: training curves and a Dice bar chart as SVG (and PNG),
/// the plan DAG as Graphviz DOT (SVG when `dot` is installed), and one HTML page
/// that shows them with the table.
enum ReportFigures {
    struct Series { var name: String; var values: [Double] }

    /// A line chart of series over epochs; y in [0, max].
    static func lineChart(title: String, series: [Series], width: Int = 420, height: Int = 240) -> String {
        let margin = 36.0, w = Double(width), h = Double(height)
        let n = max(2, series.map(\.values.count).max() ?? 2)
        let top = max(1e-9, series.flatMap(\.values).filter(\.isFinite).max() ?? 1)
        let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"10\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"\(margin)\" y=\"14\" font-size=\"12\">\(escape(title))</text>"
        svg += "<line x1=\"\(margin)\" y1=\"\(h - margin)\" x2=\"\(w - 8)\" y2=\"\(h - margin)\" stroke=\"#444\"/><line x1=\"\(margin)\" y1=\"20\" x2=\"\(margin)\" y2=\"\(h - margin)\" stroke=\"#444\"/>"
        svg += "<text x=\"4\" y=\"24\">\(String(format: "%.2f", top))</text><text x=\"4\" y=\"\(h - margin)\">0</text><text x=\"\(w - 40)\" y=\"\(h - 8)\">epoch \(n)</text>"
        for (k, s) in series.enumerated() {
            let points = s.values.enumerated().filter { $0.element.isFinite }.map { i, v in
                String(format: "%.1f,%.1f", margin + Double(i) / Double(n - 1) * (w - margin - 8), (h - margin) - v / top * (h - margin - 20))
            }
            svg += "<polyline fill=\"none\" stroke=\"\(colours[k % colours.count])\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>"
            svg += "<text x=\"\(w - 150)\" y=\"\(30 + 12 * k)\" fill=\"\(colours[k % colours.count])\">\(escape(s.name))</text>"
        }
        return svg + "</svg>\n"
    }

    /// Horizontal bars of Dice per row.
    static func barChart(title: String, bars: [(String, Double)], width: Int = 560) -> String {
        let rowH = 18, height = 30 + rowH * bars.count + 10, labelW = 260.0
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"10\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"4\" y=\"14\" font-size=\"12\">\(escape(title))</text>"
        for (i, (name, v)) in bars.enumerated() {
            let y = 26 + i * rowH, len = max(0, min(1, v)) * (Double(width) - labelW - 50)
            svg += "<text x=\"4\" y=\"\(y + 12)\">\(escape(name))</text>"
            svg += "<rect x=\"\(labelW)\" y=\"\(y + 2)\" width=\"\(String(format: "%.1f", len))\" height=\"\(rowH - 5)\" fill=\"#4c78a8\"/>"
            svg += "<text x=\"\(String(format: "%.1f", labelW + len + 4))\" y=\"\(y + 12)\">\(String(format: "%.3f", v))</text>"
        }
        return svg + "</svg>\n"
    }

    /// The bar chart as a PNG (bars only; the SVG and HTML carry the labels).
    static func barChartPNG(_ bars: [(String, Double)], to path: String) throws {
        let w = 400, rowH = 16, h = max(rowH, rowH * bars.count)
        var rgb = [UInt8](repeating: 255, count: w * h * 3)
        for (i, (_, v)) in bars.enumerated() {
            let len = Int(max(0, min(1, v)) * Double(w - 4))
            for y in (i * rowH + 2)..<(i * rowH + rowH - 2) {
                for x in 0..<len { let o = (y * w + x) * 3; (rgb[o], rgb[o + 1], rgb[o + 2]) = (76, 120, 168) }
            }
        }
        try PNG.write(width: w, height: h, rgb: rgb, to: path)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Per-epoch training loss and validation Dice of a trained stage, from its metrics.jsonl.
    static func curves(_ store: RunStore, _ hash: String) -> [Series] {
        guard let text = try? String(contentsOfFile: store.file(hash, "metrics.jsonl"), encoding: .utf8) else { return [] }
        let records = text.split(separator: "\n").compactMap { JSON.parse(Data($0.utf8)) }
        return [Series(name: "train loss", values: records.map { $0["train_loss"]?.number ?? .nan }),
                Series(name: "val Dice", values: records.map { $0["val_dice"]?.number ?? .nan })]
    }

    /// Writes every picture and report.html into `directory`.
    static func write(plan: ExecutionPlan, store: RunStore, rows: [Report.Row], markdown: String, to directory: String) throws {
        let bars = rows.map { ("\($0.variant == "*" ? "" : $0.variant + " ")\($0.stage)", $0.metrics["pooled"]?["dice"]?.number ?? 0) }
        let dice = barChart(title: "Test Dice (pooled)", bars: bars)
        try RunStore.writeAtomically(Data(dice.utf8), to: directory + "/dice.svg")
        try barChartPNG(bars, to: directory + "/dice.png")
        let dot = plan.dot()
        try RunStore.writeAtomically(Data(dot.utf8), to: directory + "/plan.dot")
        var planSVG: String?
        if let dotPath = ["/usr/bin/dot", "/usr/local/bin/dot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: dotPath)
            p.arguments = ["-Tsvg", directory + "/plan.dot", "-o", directory + "/plan.svg"]
            try? p.run()
            p.waitUntilExit()
            planSVG = try? String(contentsOfFile: directory + "/plan.svg", encoding: .utf8)
        }
        var html = "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(escape(plan.specName ?? "report"))</title>"
        html += "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}</style></head><body>"
        html += "<h1>\(escape(plan.specName ?? "Report"))</h1>" + table(rows) + dice
        html += "<h2>Training curves</h2>"
        var seen = Set<String>()
        for v in plan.variants {
            for s in v.stages where seen.insert(s.train).inserted {
                let series = curves(store, s.train)
                guard !series.isEmpty else { continue }
                let svg = lineChart(title: "\(v.name): \(s.name)", series: series)
                try RunStore.writeAtomically(Data(svg.utf8), to: directory + "/curves-\(s.train.prefix(12)).svg")
                html += svg
            }
        }
        html += "<h2>Plan</h2>" + (planSVG ?? "<p>plan.dot (install Graphviz to render it)</p>") + "</body></html>\n"
        try RunStore.writeAtomically(Data(html.utf8), to: directory + "/report.html")
        _ = markdown
    }

    static func table(_ rows: [Report.Row]) -> String {
        var t = "<table><tr><th>variant</th><th>stage</th><th>IoU</th><th>Dice</th><th>recall</th><th>precision</th><th>params (M)</th><th>vs baseline</th></tr>"
        for r in rows {
            let p = r.metrics["pooled"]
            let cells = ["iou", "dice", "recall", "precision"].map { p?[$0]?.number.map { String(format: "%.3f", $0) } ?? "-" }
            let delta = r.baselineDice.flatMap { b in p?["dice"]?.number.map { String(format: "%+.1f%%", ($0 - b) / b * 100) } } ?? ""
            t += "<tr><td>\(escape(r.variant))</td><td>\(escape(r.stage))</td>" + cells.map { "<td>\($0)</td>" }.joined()
            t += "<td>\(String(format: "%.3f", Double(r.metrics["parameters"]?.int ?? 0) / 1e6))</td><td>\(delta)</td></tr>"
        }
        return t + "</table>"
    }
}
