import Foundation

/// TensorBoard's event files: a TFRecord stream of `Event` messages, the first
/// naming the format version, each later one a `Summary` of tagged scalars at a
/// step. `tensorboard --logdir` reads every file whose name contains "tfevents".
///
/// A record is: length (UInt64, little-endian), the masked CRC-32C of those 8
/// bytes, the payload, the masked CRC-32C of the payload.
public enum TensorBoardEvents {
    /// One step's scalars (an epoch of a training stage), at the wall time it was recorded.
    public struct Step: Equatable, Sendable {
        public var step: Int
        public var wallTime: Double
        public var scalars: [(tag: String, value: Float)]

        public init(step: Int, wallTime: Double, scalars: [(tag: String, value: Float)]) {
            (self.step, self.wallTime, self.scalars) = (step, wallTime, scalars)
        }

        public static func == (a: Step, b: Step) -> Bool {
            a.step == b.step && a.wallTime == b.wallTime && a.scalars.map(\.tag) == b.scalars.map(\.tag) && a.scalars.map(\.value) == b.scalars.map(\.value)
        }
    }

    /// The whole file for `steps`. It is a function of them: a file rewritten after
    /// another epoch starts with the bytes it had, so a reader that follows it reads on.
    public static func file(_ steps: [Step], startTime: Double) throws -> Data {
        var out = Data()
        var version = Tensorboard_Event()
        version.wallTime = startTime
        version.fileVersion = "brain.Event:2"
        out.append(record(try version.serializedData()))
        for s in steps {
            var summary = Tensorboard_Summary()
            summary.value = s.scalars.map { tag, value in
                var v = Tensorboard_Summary.Value()
                v.tag = tag
                v.simpleValue = value
                return v
            }
            var e = Tensorboard_Event()
            e.wallTime = s.wallTime
            e.step = Int64(s.step)
            e.summary = summary
            out.append(record(try e.serializedData()))
        }
        return out
    }

    /// The scalars of an event file, in order (what a reader of `file` gets back); nil when a record is damaged.
    public static func read(_ data: Data) -> [Step]? {
        var steps: [Step] = []
        var offset = data.startIndex
        func uint<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(data[at + i]) << (8 * i) }
            return v
        }
        while offset < data.endIndex {
            guard data.endIndex - offset >= 12 else { return nil }
            let length = Int(uint(offset, UInt64.self))
            guard uint(offset + 8, UInt32.self) == maskedCRC32C(data[offset..<(offset + 8)]),
                  data.endIndex - offset - 16 >= length else { return nil }
            let payload = data[(offset + 12)..<(offset + 12 + length)]
            guard uint(offset + 12 + length, UInt32.self) == maskedCRC32C(payload),
                  let event = try? Tensorboard_Event(serializedBytes: Data(payload)) else { return nil }
            if case .summary(let s)? = event.what {
                steps.append(Step(step: Int(event.step), wallTime: event.wallTime, scalars: s.value.map { ($0.tag, $0.simpleValue) }))
            }
            offset += 16 + length
        }
        return steps
    }

    static func record(_ payload: Data) -> Data {
        var out = Data()
        var length = UInt64(payload.count).littleEndian
        let header = Data(bytes: &length, count: 8)
        out.append(header)
        append(maskedCRC32C(header), to: &out)
        out.append(payload)
        append(maskedCRC32C(payload), to: &out)
        return out
    }

    static func append(_ v: UInt32, to out: inout Data) {
        var le = v.littleEndian
        out.append(Data(bytes: &le, count: 4))
    }

    /// CRC-32C (Castagnoli), rotated right by 15 bits plus a constant, as TFRecord stores it.
    static func maskedCRC32C(_ bytes: Data) -> UInt32 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    public static func crc32c(_ bytes: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }
}
