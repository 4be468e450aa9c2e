import Architecture
import NN
@testable import Tensor
import Testing

/// What keeps a step's memory down: taps that are not asked for are not kept, and the
/// buffer pool serves a request from the smallest free range it fits.
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

    @Test func thePoolServesARequestFromTheSmallestFreeRangeItFits() {
        let pool = StoragePool(reserving: 64 << 20)
        let a = pool.take(bytes: 300 << 10), b = pool.take(bytes: 1 << 20), c = pool.take(bytes: 300 << 10), d = pool.take(bytes: 128 << 10)
        #expect(b == a + (300 << 10) && c == b + (1 << 20) && d == c + (300 << 10))
        pool.give(b, bytes: 1 << 20)
        pool.give(d, bytes: 128 << 10)
        // Free: 1 MiB where b was, 128 KiB where d was (and the end of the region). 100 KiB
        // goes to d's range; 200 KiB fits only in b's range, at its front.
        #expect(pool.take(bytes: 100 << 10) == d)
        let e = pool.take(bytes: 200 << 10)
        #expect(e == b)
        // What is left of b's range serves the next request that fits.
        let f = pool.take(bytes: 800 << 10)
        #expect(f == b + (200 << 10))
        // Freed neighbours merge: a, e and f together hold 1.3 MiB again.
        pool.give(a, bytes: 300 << 10)
        pool.give(f, bytes: 800 << 10)
        pool.give(e, bytes: 200 << 10)
        #expect(pool.take(bytes: (300 << 10) + (1 << 20)) == a)
        // What is left of d's range stays idle.
        #expect(pool.idleBytes == 28 << 10)
    }

    /// Past the bound, freed pages are given back to the system: what the pool keeps idle
    /// stays under it, and the freed ranges still serve requests.
    @Test func thePoolGivesBackWhatIsOverItsBound() {
        let pool = StoragePool(reserving: 64 << 20)
        pool.limit = 1 << 20
        let buffers = (0..<8).map { _ in pool.take(bytes: 512 << 10) }
        for (i, p) in buffers.enumerated() {
            p.storeBytes(of: 7, as: Int.self)
            pool.give(p, bytes: 512 << 10)
            #expect(pool.idleBytes <= 1 << 20, "after \(i + 1)")
        }
        // The last two freed buffers are still resident; the first six were given back.
        #expect(pool.idleBytes == 1 << 20)
        let again = pool.take(bytes: 4 << 20)
        #expect(again == buffers[0] && pool.idleBytes == 0)
        // A range given back reads as fresh, zeroed memory; one kept reads as it was left.
        #expect(again.load(as: Int.self) == 0 && buffers[7].load(as: Int.self) == 7)
        pool.give(again, bytes: 4 << 20)
    }

    /// Requests past the reserved region, and small ones, come from malloc and go back to it.
    @Test func requestsTheRegionCannotHoldComeFromMalloc() {
        let pool = StoragePool(reserving: 1 << 20)
        let a = pool.take(bytes: 768 << 10), b = pool.take(bytes: 512 << 10), small = pool.take(bytes: 1000)
        #expect(b != a + (768 << 10))
        b.initializeMemory(as: UInt8.self, repeating: 1, count: 512 << 10)
        small.initializeMemory(as: UInt8.self, repeating: 1, count: 1000)
        pool.give(b, bytes: 512 << 10)
        pool.give(small, bytes: 1000)
        pool.give(a, bytes: 768 << 10)
        #expect(pool.idleBytes == 768 << 10)
    }
}
