import Foundation
import Interchange
import Testing

/// The event file format: TFRecord framing with masked CRC-32C, read back by our own
/// reader here and by TensorBoard's in the CLI tests.
@Suite struct TensorBoardEventsTests {
    @Test func crc32cIsCastagnolis() {
        // The standard check value of CRC-32C.
        #expect(TensorBoardEvents.crc32c(Data("123456789".utf8)) == 0xE306_9283)
    }

    @Test func aFileReadsBackAndGrowsByAppending() throws {
        let steps = (1...3).map { e in
            TensorBoardEvents.Step(step: e, wallTime: 1_700_000_000 + Double(e), scalars: [("train/loss", Float(1) / Float(e)), ("val/dice", 0.25 * Float(e))])
        }
        let two = try TensorBoardEvents.file(Array(steps.prefix(2)), startTime: 1_700_000_000)
        let three = try TensorBoardEvents.file(steps, startTime: 1_700_000_000)
        #expect(TensorBoardEvents.read(three) == steps)
        // A reader that followed the file after two epochs reads on after the third.
        #expect(three.prefix(two.count) == two)
        // A damaged byte is found.
        var damaged = three
        damaged[damaged.count - 6] ^= 0x40
        #expect(TensorBoardEvents.read(damaged) == nil)
        #expect(TensorBoardEvents.read(three.prefix(three.count - 3)) == nil)
    }
}
