import Figures
import Foundation
import Testing

/// Bars of differences grow from zero, whichever side they fall on.
@Suite struct ChartTests {
    /// The x, width pairs of the filled rectangles of `color` in an SVG.
    func rects(_ svg: String, color: Color) -> [(x: Double, width: Double)] {
        svg.components(separatedBy: "<rect ").dropFirst().compactMap { item -> (Double, Double)? in
            guard item.contains("fill=\"\(color.hex)\"") else { return nil }
            func value(_ key: String) -> Double? {
                guard let r = item.range(of: key + "=\"") else { return nil }
                return Double(item[r.upperBound...].prefix { $0 != "\"" })
            }
            guard let x = value("x"), let w = value("width") else { return nil }
            return (x, w)
        }
    }

    @Test func differenceBarsGrowFromZero() {
        let red = Color(200, 0, 0), blue = Color(0, 0, 200)
        let chart = Charts.bars(title: "t", subtitle: nil, axisLabel: "difference",
                                bars: [Charts.Bar(label: "up", value: 0.5, interval: nil, color: red, note: nil),
                                       Charts.Bar(label: "down", value: -0.5, interval: nil, color: blue, note: nil)],
                                range: -1...1)
        let svg = chart.svg()
        let up = rects(svg, color: red), down = rects(svg, color: blue)
        #expect(up.count == 1 && down.count == 1)
        // Both bars are as long as each other, and the positive one starts where the negative one ends: at zero.
        #expect(abs(up[0].width - down[0].width) < 1e-6)
        #expect(abs(down[0].x + down[0].width - up[0].x) < 1e-6)
        // On an axis that does not hold zero (Dice from 0.4), bars start at the axis.
        let dice = Charts.bars(title: "t", subtitle: nil, axisLabel: "Dice", bars: [Charts.Bar(label: "a", value: 0.7, interval: nil, color: red, note: nil)],
                               range: 0.4...1).svg()
        let bar = rects(dice, color: red)
        #expect(bar.count == 1 && bar[0].width > 0)
    }
}
