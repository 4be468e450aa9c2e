import Foundation

/// Charts a report is read through: every one has a title, labelled axes with ticks,
/// and its values written on it.
public enum Charts {
    /// About `count` round tick values covering lo...hi.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(max(1, count))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var out: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e6 { return String(Int(v)) }
        let s = String(format: "%.3g", v)
        return s
    }

    // MARK: bars

    public struct Bar: Sendable {
        public var label: String
        public var value: Double
        /// A confidence interval drawn as a whisker.
        public var interval: (Double, Double)?
        public var color: Color
        /// Text written after the value (e.g. "+0.012 [−0.004, 0.027]").
        public var note: String?

        public init(label: String, value: Double, interval: (Double, Double)? = nil, color: Color, note: String? = nil) {
            (self.label, self.value, self.interval, self.color, self.note) = (label, value, interval, color, note)
        }
    }

    /// Horizontal bars with their values, optional whiskers and a legend of colours.
    public static func bars(title: String, subtitle: String?, axisLabel: String, bars: [Bar], range: ClosedRange<Double>,
                            legend: [(String, Color)] = [], width: Int = 760) -> Canvas {
        let labelWidth = Double(min(260, max(80, (bars.map(\.label.count).max() ?? 10) * 6 + 16)))
        let noteWidth = Double(min(230, (bars.map { ($0.note?.count ?? 0) + 7 }.max() ?? 8) * 6 + 10))
        let rowH = 20.0
        var (c, frame) = rowFrame(title: title, subtitle: subtitle, axisLabel: axisLabel, rows: bars.count, rowHeight: rowH, range: range,
                                  labelWidth: labelWidth, noteWidth: noteWidth, legend: !legend.isEmpty, width: width)
        let (top, bottom, x) = (frame.top, frame.bottom, frame.x)
        // Bars grow from zero when the axis holds it (differences, some negative), else from the axis' start.
        let origin = range.contains(0) ? 0.0 : range.lowerBound
        if origin == 0, range.lowerBound < 0 { c.line(x(0), top - 4, x(0), bottom, color: .axis) }
        for (i, b) in bars.enumerated() {
            let y = top + rowH * Double(i)
            c.text(b.label, labelWidth - 8, y + 14, size: .normal, anchor: .end)
            c.rect(min(x(origin), x(b.value)), y + 3, abs(x(b.value) - x(origin)), rowH - 6, fill: b.color)
            var end = max(x(b.value), x(origin))
            if let (lo, hi) = b.interval {
                c.line(x(lo), y + rowH / 2, x(hi), y + rowH / 2, color: .black, width: 1)
                c.line(x(lo), y + 6, x(lo), y + rowH - 6, color: .black)
                c.line(x(hi), y + 6, x(hi), y + rowH - 6, color: .black)
                end = max(end, x(hi))
            }
            c.text(String(format: "%.3f", b.value) + (b.note.map { "  " + $0 } ?? ""), end + 6, y + 14, size: .small)
        }
        drawLegend(legend, on: &c, x: labelWidth, baseline: Double(c.height) - 7)
        return c
    }

    /// Where a row chart draws: its rows' top and bottom, and the value-to-x map.
    struct RowFrame {
        var top: Double
        var bottom: Double
        var x: (Double) -> Double
    }

    /// The frame shared by row charts: title, subtitle, a horizontal value axis with
    /// ticks, grid lines and its label, for `rows` rows of `rowHeight`.
    static func rowFrame(title: String, subtitle: String?, axisLabel: String, rows: Int, rowHeight: Double, range: ClosedRange<Double>,
                         labelWidth: Double, noteWidth: Double, legend: Bool, width: Int) -> (Canvas, RowFrame) {
        let top = subtitle == nil ? 40.0 : 56.0
        let plotW = Double(width) - labelWidth - noteWidth - 20
        let height = Int(top + rowHeight * Double(rows) + 52 + (legend ? 18 : 0))
        var c = Canvas(width: width, height: height)
        c.text(title, 10, 22, size: .title)
        if let subtitle { c.text(subtitle, 10, 40, size: .small, color: .muted) }
        let x = { (v: Double) -> Double in
            labelWidth + (min(max(v, range.lowerBound), range.upperBound) - range.lowerBound) / (range.upperBound - range.lowerBound) * plotW
        }
        let bottom = top + rowHeight * Double(rows)
        for t in ticks(range.lowerBound, range.upperBound) {
            c.line(x(t), top - 4, x(t), bottom, color: .grid)
            c.line(x(t), bottom, x(t), bottom + 4)
            c.text(label(t), x(t), bottom + 16, size: .small, anchor: .middle)
        }
        c.line(labelWidth, bottom, labelWidth + plotW, bottom)
        c.line(labelWidth, top - 4, labelWidth, bottom)
        c.text(axisLabel, labelWidth + plotW / 2, bottom + 32, size: .normal, anchor: .middle)
        return (c, RowFrame(top: top, bottom: bottom, x: x))
    }

    // MARK: dots

    /// One row of a strip chart: every value a dot, a marked one drawn larger in red with its label.
    public struct DotRow: Sendable {
        public var label: String
        public var values: [(value: Double, marked: Bool, note: String?)]
        public var color: Color

        public init(label: String, values: [(value: Double, marked: Bool, note: String?)], color: Color) {
            (self.label, self.values, self.color) = (label, values, color)
        }
    }

    public static let markedColor = Color(214, 39, 40)

    /// Every value of every row on one horizontal axis (one dot per training run), with
    /// each row's mean as a tick, so that the spread and the outliers are seen.
    public static func dots(title: String, subtitle: String?, axisLabel: String, rows: [DotRow], range: ClosedRange<Double>,
                            legend: [(String, Color)] = [], width: Int = 760) -> Canvas {
        let labelWidth = Double(min(260, max(80, (rows.map(\.label.count).max() ?? 10) * 6 + 16)))
        let rowH = 22.0
        var (c, frame) = rowFrame(title: title, subtitle: subtitle, axisLabel: axisLabel, rows: rows.count, rowHeight: rowH, range: range,
                                  labelWidth: labelWidth, noteWidth: 150, legend: !legend.isEmpty, width: width)
        let (top, x) = (frame.top, frame.x)
        let plotEnd = x(range.upperBound)
        for (i, row) in rows.enumerated() {
            let y = top + rowH * Double(i) + rowH / 2
            c.text(row.label, labelWidth - 8, y + 4, size: .normal, anchor: .end)
            let finite = row.values.map(\.value).filter(\.isFinite)
            guard !finite.isEmpty else { continue }
            let mean = finite.reduce(0, +) / Double(finite.count)
            c.line(x(mean), y - 8, x(mean), y + 8, color: .black, width: 2)
            // Equal values side by side would hide each other: nudge them up and down.
            var seen: [Int: Int] = [:]
            for v in row.values where v.value.isFinite {
                let key = Int((x(v.value) / 3).rounded())
                let k = seen[key, default: 0]
                seen[key] = k + 1
                let dy = Double(k % 3 == 0 ? 0 : (k % 3 == 1 ? -5 : 5))
                c.circle(x(v.value), y + dy, r: v.marked ? 4.5 : 3, fill: v.marked ? markedColor : row.color)
            }
            let marks = row.values.filter(\.marked).compactMap(\.note)
            let text = String(format: "%.3f (%d run%@)", mean, finite.count, finite.count == 1 ? "" : "s") + (marks.isEmpty ? "" : "; " + marks.joined(separator: ", "))
            c.text(text, plotEnd + 8, y + 4, size: .small, color: marks.isEmpty ? .text : markedColor)
        }
        drawLegend(legend, on: &c, x: labelWidth, baseline: Double(c.height) - 7)
        return c
    }

    // MARK: lines

    public struct Series: Sendable {
        public var name: String
        /// y by x (nil: no value there).
        public var points: [(Double, Double)]
        public var color: Color
        public init(name: String, points: [(Double, Double)], color: Color) { (self.name, self.points, self.color) = (name, points, color) }
    }

    public struct Panel: Sendable {
        public var yLabel: String
        public var series: [Series]
        /// Horizontal reference lines (value, label, colour).
        public var references: [(Double, String, Color)] = []
        public var yRange: ClosedRange<Double>?
        public init(yLabel: String, series: [Series], references: [(Double, String, Color)] = [], yRange: ClosedRange<Double>? = nil) {
            (self.yLabel, self.series, self.references, self.yRange) = (yLabel, series, references, yRange)
        }
    }

    /// Panels stacked over one shared x axis, each with its own labelled y axis; `marks`
    /// are vertical lines (an x value and its label) drawn across every panel.
    public static func stacked(title: String, subtitle: String?, xLabel: String, panels: [Panel], marks: [(Double, String)] = [],
                               width: Int = 640, panelHeight: Int = 170) -> Canvas {
        let left = 64.0, right = 170.0, top = subtitle == nil ? 36.0 : 52.0, gap = 26.0
        let height = Int(top + Double(panels.count) * (Double(panelHeight) + gap) + 34)
        var c = Canvas(width: width, height: height)
        c.text(title, 10, 22, size: .title)
        if let subtitle { c.text(subtitle, 10, 38, size: .small, color: .muted) }
        let xs = panels.flatMap { $0.series.flatMap { $0.points.map(\.0) } }
        let (x0, x1) = (xs.min() ?? 0, max((xs.max() ?? 1), (xs.min() ?? 0) + 1))
        let plotW = Double(width) - left - right
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * plotW }
        for (k, panel) in panels.enumerated() {
            let y0 = top + Double(k) * (Double(panelHeight) + gap), y1 = y0 + Double(panelHeight)
            let values = panel.series.flatMap { $0.points.map(\.1) }.filter(\.isFinite) + panel.references.map(\.0)
            var range = panel.yRange ?? ((values.min() ?? 0)...(values.max() ?? 1))
            if range.upperBound - range.lowerBound < 1e-9 { range = (range.lowerBound - 0.5)...(range.upperBound + 0.5) }
            func py(_ v: Double) -> Double { y1 - (v - range.lowerBound) / (range.upperBound - range.lowerBound) * (y1 - y0) }
            for t in ticks(range.lowerBound, range.upperBound, count: 4) {
                c.line(left, py(t), left + plotW, py(t), color: .grid)
                c.text(label(t), left - 6, py(t) + 4, size: .small, anchor: .end)
            }
            c.line(left, y0, left, y1)
            c.line(left, y1, left + plotW, y1)
            c.text(panel.yLabel, 14, (y0 + y1) / 2, size: .normal, anchor: .middle, vertical: true)
            for (v, name) in marks {
                c.line(px(v), y0, px(v), y1, color: .muted, dashed: true)
                if k == 0 { c.text(name, px(v) + 3, y0 + 10, size: .small, color: .muted) }
            }
            for (value, name, color) in panel.references {
                c.line(left, py(value), left + plotW, py(value), color: color, dashed: true)
                c.text(name + " " + String(format: "%.3f", value), left + plotW + 6, py(value) + 4, size: .small, color: color)
            }
            for (i, s) in panel.series.enumerated() {
                let pts = s.points.filter { $0.1.isFinite }.map { (px($0.0), py($0.1)) }
                c.polyline(pts, color: s.color, width: 2)
                for p in pts where pts.count <= 40 { c.circle(p.0, p.1, r: 1.5, fill: s.color) }
                if let last = s.points.last(where: { $0.1.isFinite }) {
                    c.text(s.name + " " + String(format: "%.3f", last.1), left + plotW + 6, y0 + 12 + 12 * Double(i), size: .small, color: s.color)
                }
            }
        }
        let bottom = top + Double(panels.count) * (Double(panelHeight) + gap) - gap
        for t in ticks(x0, x1, count: 6) {
            c.line(px(t), bottom, px(t), bottom + 4)
            c.text(label(t), px(t), bottom + 16, size: .small, anchor: .middle)
        }
        c.text(xLabel, left + plotW / 2, bottom + 30, size: .normal, anchor: .middle)
        return c
    }

    // MARK: images

    /// A grid of equally sized images with column headings and row labels.
    public static func imageGrid(title: String, subtitle: String?, columns: [String], rows: [(String, [RGBImage])], legend: [(String, Color)] = []) -> Canvas {
        let cell = rows.first?.1.first.map { ($0.width, $0.height) } ?? (64, 64)
        let labelW = 110.0, top = (subtitle == nil ? 36.0 : 52.0) + 16, pad = 6.0
        let width = Int(labelW + Double(columns.count) * (Double(cell.0) + pad) + 10)
        let height = Int(top + Double(rows.count) * (Double(cell.1) + pad) + (legend.isEmpty ? 10 : 28))
        var c = Canvas(width: max(width, title.count * 12 + 20), height: height)
        c.text(title, 10, 22, size: .title)
        if let subtitle { c.text(subtitle, 10, 38, size: .small, color: .muted) }
        for (j, name) in columns.enumerated() {
            c.text(name, labelW + Double(j) * (Double(cell.0) + pad) + Double(cell.0) / 2, top - 6, size: .small, anchor: .middle)
        }
        for (i, row) in rows.enumerated() {
            let y = top + Double(i) * (Double(cell.1) + pad)
            c.text(row.0, labelW - 8, y + Double(cell.1) / 2 + 4, size: .small, anchor: .end)
            for (j, img) in row.1.enumerated() { c.image(img, labelW + Double(j) * (Double(cell.0) + pad), y) }
        }
        drawLegend(legend, on: &c, x: labelW, baseline: Double(height) - 9)
        return c
    }

    // MARK: graphs

    public struct Node: Sendable {
        public var id: String
        public var lines: [String]
        public var color: Color
        /// The column (0 = leftmost) it is drawn in.
        public var column: Int
        public init(id: String, lines: [String], color: Color, column: Int) { (self.id, self.lines, self.color, self.column) = (id, lines, color, column) }
    }

    /// A left-to-right layered drawing of a DAG: nodes in their columns, edges from
    /// each input to the node that reads it.
    public static func graph(title: String, subtitle: String?, nodes: [Node], edges: [(from: String, to: String)], legend: [(String, Color)]) -> Canvas {
        let boxW = 190.0, boxH = 34.0, colGap = 46.0, rowGap = 10.0
        let top = (subtitle == nil ? 40.0 : 56.0), left = 10.0
        let columns = (nodes.map(\.column).max() ?? 0) + 1
        var perColumn = [Int](repeating: 0, count: columns)
        var position: [String: (Double, Double)] = [:]
        for n in nodes {
            let row = perColumn[n.column]
            perColumn[n.column] += 1
            position[n.id] = (left + Double(n.column) * (boxW + colGap), top + Double(row) * (boxH + rowGap))
        }
        let tallest = perColumn.max() ?? 1
        let width = Int(left + Double(columns) * (boxW + colGap))
        let height = Int(top + Double(tallest) * (boxH + rowGap) + 30)
        var c = Canvas(width: width, height: height)
        c.text(title, 10, 22, size: .title)
        if let subtitle { c.text(subtitle, 10, 40, size: .small, color: .muted) }
        for e in edges {
            guard let a = position[e.from], let b = position[e.to] else { continue }
            let (x1, y1, x2, y2) = (a.0 + boxW, a.1 + boxH / 2, b.0, b.1 + boxH / 2)
            let mid = (x1 + x2) / 2
            c.polyline([(x1, y1), (mid, y1), (mid, y2), (x2, y2)], color: Color(160, 160, 160), width: 1)
            c.polyline([(x2 - 5, y2 - 3), (x2, y2), (x2 - 5, y2 + 3)], color: Color(120, 120, 120), width: 1)
        }
        for n in nodes {
            guard let p = position[n.id] else { continue }
            c.rect(p.0, p.1, boxW, boxH, fill: n.color, stroke: Color(120, 120, 120))
            for (i, line) in n.lines.prefix(2).enumerated() {
                let maxChars = Int(boxW / 6) - 1
                let text = line.count > maxChars ? String(line.prefix(maxChars - 2)) + ".." : line
                c.text(text, p.0 + 5, p.1 + 14 + 13 * Double(i), size: .small)
            }
        }
        drawLegend(legend, on: &c, x: left, baseline: Double(height) - 9, stroke: Color(120, 120, 120))
        return c
    }

    /// One row of colour swatches and names, left to right from `x`, text on `baseline`.
    static func drawLegend(_ legend: [(String, Color)], on c: inout Canvas, x: Double, baseline: Double, stroke: Color? = nil) {
        var lx = x
        for (name, color) in legend {
            c.rect(lx, baseline - 9, 10, 10, fill: color, stroke: stroke)
            c.text(name, lx + 14, baseline, size: .small)
            lx += Double(name.count * 6 + 34)
        }
    }
}
