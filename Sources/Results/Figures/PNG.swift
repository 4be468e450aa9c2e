import CZlib
import Foundation

/// Writes 8-bit RGB PNG files with zlib.
public enum PNG {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path): the PNG could not be written" }
    }

    public static func write(width: Int, height: Int, rgb: [UInt8], to path: String) throws {
        guard width > 0, height > 0, rgb.count == width * height * 3 else { throw WriteError(path: path) }
        var raw = [UInt8]()
        raw.reserveCapacity((width * 3 + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter: none
            raw += rgb[(y * width * 3)..<((y + 1) * width * 3)]
        }
        var size = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(size))
        guard compress2(&compressed, &size, raw, uLong(raw.count), 6) == Z_OK else { throw WriteError(path: path) }
        compressed.removeLast(compressed.count - Int(size))
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ body: [UInt8]) {
            let t = Array(type.utf8)
            out += be32(UInt32(body.count)) + t + body
            let crc = crc32(crc32(0, t, uInt(t.count)), body, uInt(body.count))
            out += be32(UInt32(crc))
        }
        chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0])
        chunk("IDAT", compressed)
        chunk("IEND", [])
        try Data(out).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}
