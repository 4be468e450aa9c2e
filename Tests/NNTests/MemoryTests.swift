import Architecture
import NN
@testable import Tensor
import Testing

/// What keeps a step's memory down: taps that are not asked for are not kept, and the
/// buffer pool serves a request from a somewhat larger idle buffer.
@Suite(.serialized) struct MemoryTests {
    @Test func aForwardKeepsOnlyTheTapsAskedFor() {
        let arch = ModelArchitecture.unet(UNetArchitecture(inChannels: 1, widths: [4, 8], bottleneck: 8, convsPerBlock: 1, norm: .batch, groups: 2,
                                                           upsampling: .transpose, heads: [Head(name: "segmentation", channels: 2)], sharedDecoder: true))
        let model = ModelBuilder.build(arch, height: 16, width: 16, seed: 1)
        var rng = RNG(seed: 2)
        let x = Variable(rng.uniformTensor([2, 1, 16, 16], 0, 1))
        let all = Tape.noGrad { model.forward(x, training: false) }
        let none = Tape.noGrad { model.forward(x, training: false, taps: []) }
        let some = Tape.noGrad { model.forward(x, training: false, taps: ["pool.1", "logits.segmentation"]) }
        #expect(all.taps.keys.contains("decoder.1") && none.taps.isEmpty && Set(some.taps.keys) == ["pool.1", "logits.segmentation"])
        #expect(none.logits["segmentation"]?.value.values == all.logits["segmentation"]?.value.values)
        #expect(some.taps["pool.1"]?.value.values == all.taps["pool.1"]?.value.values)
    }

    @Test func thePoolServesARequestFromALargerIdleBuffer() {
        let pool = StoragePool()
        let big = pool.take(bytes: 300 << 10)
        pool.give(big, bytes: 300 << 10)
        // A request up to half the size is served by the idle buffer, not by new memory.
        let smaller = pool.take(bytes: 200 << 10)
        #expect(smaller == big)
        pool.give(smaller, bytes: 200 << 10)
        // Given back, it keeps its capacity: a request of the original size gets it again.
        #expect(pool.take(bytes: 300 << 10) == big)
        // Less than half the size: a new buffer.
        pool.give(big, bytes: 300 << 10)
        let tiny = pool.take(bytes: 100 << 10)
        #expect(tiny != big)
        pool.give(tiny, bytes: 100 << 10)
    }
}
