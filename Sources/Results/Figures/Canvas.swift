import Foundation

/// An RGB colour.
public struct Color: Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }

    public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }

    public static let black = Color(0, 0, 0), white = Color(255, 255, 255), grid = Color(225, 225, 225), axis = Color(68, 68, 68)
    public static let text = Color(30, 30, 30), muted = Color(110, 110, 110)
    /// Segmentation classes on a grey image, class k at `classes[(k - 1) % count]`:
    /// saturated, told apart on grey and from each other (red first, as one class was drawn).
    public static let classes = [Color(230, 60, 60), Color(60, 120, 230), Color(235, 200, 40), Color(200, 70, 200), Color(40, 200, 210), Color(240, 140, 40)]

    /// The colour of segmentation class k (1-based).
    public static func segmentationClass(_ k: Int) -> Color { classes[(max(1, k) - 1) % classes.count] }

    /// A qualitative palette (Tableau 10).
    public static let palette = [Color(76, 120, 168), Color(245, 133, 24), Color(228, 87, 86), Color(114, 183, 178),
                                 Color(84, 162, 75), Color(238, 202, 59), Color(178, 121, 162), Color(255, 157, 166),
                                 Color(157, 117, 93), Color(186, 176, 172)]
}

/// An RGB raster with 8 bits per channel, row-major, origin top left.
public struct RGBImage: Sendable {
    public let width: Int, height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: Color = .white) {
        self.width = max(1, width)
        self.height = max(1, height)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        for i in 0..<(self.width * self.height) { (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) = (fill.r, fill.g, fill.b) }
    }

    public subscript(x: Int, y: Int) -> Color {
        get { let o = 3 * (y * width + x); return Color(pixels[o], pixels[o + 1], pixels[o + 2]) }
        set { let o = 3 * (y * width + x); (pixels[o], pixels[o + 1], pixels[o + 2]) = (newValue.r, newValue.g, newValue.b) }
    }

    mutating func plot(_ x: Int, _ y: Int, _ c: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        self[x, y] = c
    }

    public func png(to path: String) throws { try PNG.write(width: width, height: height, rgb: pixels, to: path) }

    /// The PNG file's bytes, for embedding (a data: URI in an SVG or HTML page).
    public func pngData() throws -> Data {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try png(to: path)
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }
}

/// A figure described once and rendered twice: as SVG text (the viewer's fonts) and
/// as a raster for PNG (the bitmap font). Coordinates are pixels of the raster.
public struct Canvas: Sendable {
    public enum Anchor: Sendable { case start, middle, end }
    /// Text sizes: small (ticks, values), normal (labels), title.
    public enum TextSize: Sendable {
        case small, normal, title
        var scale: Int { self == .title ? 2 : 1 }
        var svgSize: Int { switch self { case .small: return 10; case .normal: return 11; case .title: return 15 } }
        /// Width of `n` characters in the raster (the SVG is close to it).
        func width(_ n: Int) -> Int { n * BitmapFont.cellWidth * scale }
        var height: Int { BitmapFont.cellHeight * scale }
    }

    enum Item: Sendable {
        case rect(x: Double, y: Double, w: Double, h: Double, fill: Color?, stroke: Color?)
        case line(x1: Double, y1: Double, x2: Double, y2: Double, color: Color, width: Double, dashed: Bool)
        case polyline([(Double, Double)], color: Color, width: Double)
        case circle(x: Double, y: Double, r: Double, fill: Color)
        /// `y` is the text's baseline; `vertical` reads bottom to top.
        case text(x: Double, y: Double, String, size: TextSize, color: Color, anchor: Anchor, vertical: Bool)
        case image(x: Double, y: Double, RGBImage)
    }

    public let width: Int, height: Int
    var items: [Item] = []

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: Color?, stroke: Color? = nil) {
        items.append(.rect(x: x, y: y, w: w, h: h, fill: fill, stroke: stroke))
    }

    public mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: Color = .axis, width: Double = 1, dashed: Bool = false) {
        items.append(.line(x1: x1, y1: y1, x2: x2, y2: y2, color: color, width: width, dashed: dashed))
    }

    public mutating func polyline(_ points: [(Double, Double)], color: Color, width: Double = 1.5) {
        items.append(.polyline(points, color: color, width: width))
    }

    public mutating func circle(_ x: Double, _ y: Double, r: Double, fill: Color) { items.append(.circle(x: x, y: y, r: r, fill: fill)) }

    public mutating func text(_ s: String, _ x: Double, _ y: Double, size: TextSize = .normal, color: Color = .text,
                              anchor: Anchor = .start, vertical: Bool = false) {
        items.append(.text(x: x, y: y, s, size: size, color: color, anchor: anchor, vertical: vertical))
    }

    public mutating func image(_ img: RGBImage, _ x: Double, _ y: Double) { items.append(.image(x: x, y: y, img)) }

    // MARK: SVG

    public func svg() -> String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" "
        out += "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        for item in items {
            switch item {
            case .rect(let x, let y, let w, let h, let fill, let stroke):
                out += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(w))\" height=\"\(f(h))\" fill=\"\(fill?.hex ?? "none")\""
                out += stroke.map { " stroke=\"\($0.hex)\"" } ?? ""
                out += "/>"
            case .line(let x1, let y1, let x2, let y2, let c, let w, let dashed):
                out += "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(c.hex)\" stroke-width=\"\(f(w))\""
                out += dashed ? " stroke-dasharray=\"4 3\"/>" : "/>"
            case .polyline(let points, let c, let w):
                out += "<polyline fill=\"none\" stroke=\"\(c.hex)\" stroke-width=\"\(f(w))\" points=\"\(points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"/>"
            case .circle(let x, let y, let r, let c):
                out += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(f(r))\" fill=\"\(c.hex)\"/>"
            case .text(let x, let y, let s, let size, let c, let anchor, let vertical):
                let a = anchor == .start ? "start" : (anchor == .middle ? "middle" : "end")
                out += "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size.svgSize)\" fill=\"\(c.hex)\" text-anchor=\"\(a)\""
                out += size == .title ? " font-weight=\"bold\"" : ""
                out += vertical ? " transform=\"rotate(-90 \(f(x)) \(f(y)))\"" : ""
                out += ">\(Self.escape(s))</text>"
            case .image(let x, let y, let img):
                let data = (try? img.pngData())?.base64EncodedString() ?? ""
                out += "<image x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(img.width)\" height=\"\(img.height)\" href=\"data:image/png;base64,\(data)\"/>"
            }
        }
        return out + "</svg>\n"
    }

    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    // MARK: raster

    public func raster() -> RGBImage {
        var img = RGBImage(width: width, height: height)
        for item in items {
            switch item {
            case .rect(let x, let y, let w, let h, let fill, let stroke):
                let (x0, y0, x1, y1) = (Int(x.rounded()), Int(y.rounded()), Int((x + w).rounded()), Int((y + h).rounded()))
                if let fill { for yy in y0..<max(y0, y1) { for xx in x0..<max(x0, x1) { img.plot(xx, yy, fill) } } }
                if let stroke {
                    Self.segment(&img, Double(x0), Double(y0), Double(x1 - 1), Double(y0), stroke, 1, false)
                    Self.segment(&img, Double(x0), Double(y1 - 1), Double(x1 - 1), Double(y1 - 1), stroke, 1, false)
                    Self.segment(&img, Double(x0), Double(y0), Double(x0), Double(y1 - 1), stroke, 1, false)
                    Self.segment(&img, Double(x1 - 1), Double(y0), Double(x1 - 1), Double(y1 - 1), stroke, 1, false)
                }
            case .line(let x1, let y1, let x2, let y2, let c, let w, let dashed):
                Self.segment(&img, x1, y1, x2, y2, c, w, dashed)
            case .polyline(let points, let c, let w):
                for (a, b) in zip(points, points.dropFirst()) { Self.segment(&img, a.0, a.1, b.0, b.1, c, w, false) }
            case .circle(let x, let y, let r, let c):
                let ri = Int(r.rounded(.up))
                for dy in -ri...ri { for dx in -ri...ri where Double(dx * dx + dy * dy) <= r * r { img.plot(Int(x.rounded()) + dx, Int(y.rounded()) + dy, c) } }
            case .text(let x, let y, let s, let size, let c, let anchor, let vertical):
                Self.draw(&img, BitmapFont.ascii(s), x, y, size, c, anchor, vertical)
            case .image(let x, let y, let src):
                for yy in 0..<src.height { for xx in 0..<src.width { img.plot(Int(x) + xx, Int(y) + yy, src[xx, yy]) } }
            }
        }
        return img
    }

    public func png(to path: String) throws { try raster().png(to: path) }

    /// A line of `width` pixels (a square brush), optionally dashed 4 on, 3 off.
    static func segment(_ img: inout RGBImage, _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ c: Color, _ width: Double, _ dashed: Bool) {
        let steps = max(1, Int(max(abs(x2 - x1), abs(y2 - y1)).rounded(.up)))
        let half = max(0, Int((width - 1) / 2))
        let extra = width >= 2 && Int(width) % 2 == 0 ? 1 : 0
        for i in 0...steps {
            if dashed, i % 7 >= 4 { continue }
            let t = Double(i) / Double(steps)
            let x = Int((x1 + (x2 - x1) * t).rounded()), y = Int((y1 + (y2 - y1) * t).rounded())
            for dy in -half...(half + extra) { for dx in -half...(half + extra) { img.plot(x + dx, y + dy, c) } }
        }
    }

    static func draw(_ img: inout RGBImage, _ s: String, _ x: Double, _ y: Double, _ size: TextSize, _ c: Color, _ anchor: Anchor, _ vertical: Bool) {
        let scale = size.scale, length = size.width(s.count)
        let shift = anchor == .start ? 0 : (anchor == .middle ? length / 2 : length)
        // The baseline sits at the bottom of the 7-row glyph.
        for (k, ch) in s.enumerated() {
            let rows = BitmapFont.rows(ch)
            for (r, bits) in rows.enumerated() {
                for col in 0..<5 where bits & (0x10 >> UInt8(col)) != 0 {
                    for sy in 0..<scale { for sx in 0..<scale {
                        let u = k * BitmapFont.cellWidth * scale - shift + col * scale + sx   // along the text
                        let v = (r - 7) * scale + sy                                          // above the baseline
                        if vertical { img.plot(Int(x) + v, Int(y) - u, c) } else { img.plot(Int(x) + u, Int(y) + v + 1, c) }
                    } }
                }
            }
        }
    }
}
