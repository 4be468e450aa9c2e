/// A 5x7 bitmap font for the printable ASCII characters, drawn for Distillery's
/// PNG figures (SVG figures use the viewer's fonts). Each glyph is seven rows of
/// five bits, packed into 56 bits with the top row in the high byte; bit 4 of a
/// row is the leftmost pixel. Cells are 6x8 pixels (a column and a row of space).
enum BitmapFont {
    static let cellWidth = 6, cellHeight = 8

    /// The glyph of `c`, or of `?` outside printable ASCII.
    static func rows(_ c: Character) -> [UInt8] {
        let code = c.asciiValue.map(Int.init) ?? 63
        let bits = glyphs[(32...126).contains(code) ? code - 32 : 31]
        return (0..<7).map { UInt8((bits >> (8 * (6 - $0))) & 0x1F) }
    }

    /// Text as drawn: a few symbols outside ASCII in their usual ASCII spelling.
    static func ascii(_ s: String) -> String {
        s.replacingOccurrences(of: "\u{00B1}", with: "+-").replacingOccurrences(of: "\u{2212}", with: "-")
            .replacingOccurrences(of: "\u{2013}", with: "-").replacingOccurrences(of: "\u{2014}", with: "-")
            .replacingOccurrences(of: "\u{0394}", with: "d").replacingOccurrences(of: "\u{2248}", with: "~")
    }

    static let glyphs: [UInt64] = [
        0x00000000000000, 0x04040404040004, 0x0a0a0a00000000, 0x0a0a1f0a1f0a0a, 0x040f140e051e04, 0x18190204081303,
        0x0c12140815120d, 0x04040400000000, 0x02040808080402, 0x08040202020408, 0x0004150e150400, 0x0004041f040400,
        0x000000000c0408, 0x0000001f000000, 0x00000000000c0c, 0x00010204081000, 0x0e11131519110e, 0x040c040404040e,
        0x0e11010204081f, 0x1f02040201110e, 0x02060a121f0202, 0x1f101e0101110e, 0x0608101e11110e, 0x1f010204080808,
        0x0e11110e11110e, 0x0e11110f01020c, 0x000c0c000c0c00, 0x000c0c000c0408, 0x02040810080402, 0x00001f001f0000,
        0x08040201020408, 0x0e110102040004, 0x0e11010d15150e, 0x0e11111f111111, 0x1e11111e11111e, 0x0e11101010110e,
        0x1c12111111121c, 0x1f10101e10101f, 0x1f10101e101010, 0x0e11101711110f, 0x1111111f111111, 0x0e04040404040e,
        0x0702020202120c, 0x11121418141211, 0x1010101010101f, 0x111b1515111111, 0x11111915131111, 0x0e11111111110e,
        0x1e11111e101010, 0x0e11111115120d, 0x1e11111e141211, 0x0f10100e01011e, 0x1f040404040404, 0x1111111111110e,
        0x11111111110a04, 0x1111111515150a, 0x11110a040a1111, 0x1111110a040404, 0x1f01020408101f, 0x0e08080808080e,
        0x00100804020100, 0x0e02020202020e, 0x040a1100000000, 0x0000000000001f, 0x08040200000000, 0x00000e010f110f,
        0x1010161911111e, 0x00000e1010110e, 0x01010d1311110f, 0x00000e111f100e, 0x0609081c080808, 0x00000f110f010e,
        0x10101619111111, 0x04000c0404040e, 0x0200060202120c, 0x10101214181412, 0x0c04040404040e, 0x00001a15151111,
        0x00001619111111, 0x00000e1111110e, 0x00001e111e1010, 0x00000d130f0101, 0x00001619101010, 0x00000e100e011e,
        0x08081c08080906, 0x0000111111130d, 0x00001111110a04, 0x0000111115150a, 0x0000110a040a11, 0x000011110f010e,
        0x00001f0204081f, 0x02040408040402, 0x04040404040404, 0x08040402040408, 0x00000815020000,
    ]
}
