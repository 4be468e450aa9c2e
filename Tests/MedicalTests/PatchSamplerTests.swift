import Medical
import Tensor
import Testing

/// The 3D training batch's patches, drawn as nnU-Net's data loader draws them.
@Suite struct PatchSamplerTests {
    @Test func theLastThirdOfABatchIsCentredOnForeground() {
        let s = PatchSampler(patch: [4, 4, 4])
        #expect((0..<2).map { s.forcesForeground(index: $0, batch: 2) } == [false, true])
        #expect((0..<3).map { s.forcesForeground(index: $0, batch: 3) } == [false, false, true])
        #expect((0..<12).filter { s.forcesForeground(index: $0, batch: 12) } == [8, 9, 10, 11])
    }

    /// Random patches stay within the padded volume; foreground patches contain the voxel
    /// they were centred on, for a volume larger than the patch on two axes and smaller on one.
    @Test func patchesLieInTheirBoundsAndForegroundPatchesHoldForeground() {
        let size = [3, 20, 17], s = PatchSampler(patch: [6, 8, 8])
        let (low, high) = s.bounds(size: size)
        // Depth 3 under a patch of 6: 3 voxels of padding, 1 before and 2 after, so the start is -1.
        #expect(low == [-1, 0, 0] && high == [-1, 12, 9])
        // A label: class 1 in one corner, class 2 a single voxel at the far end.
        let label = Tensor(zeros: size)
        for (z, y, x) in [(0, 1, 1), (1, 2, 1), (2, 1, 2)] { label.pointer[(z * 20 + y) * 17 + x] = 1 }
        label.pointer[(2 * 20 + 19) * 17 + 16] = 2
        let fg = PatchSampler.foreground(of: label.pointer, count: label.count, classes: 3)
        #expect(fg.map(\.count) == [3, 1])
        var rng = RNG(seed: 11)
        var hits = Set<Int>()
        for _ in 0..<200 {
            let o = s.origin(size: size, foreground: fg, force: false, rng: &rng)
            #expect((0..<3).allSatisfy { o[$0] >= low[$0] && o[$0] <= high[$0] }, "random patch at \(o)")
            let f = s.origin(size: size, foreground: fg, force: true, rng: &rng)
            #expect((0..<3).allSatisfy { f[$0] >= low[$0] }, "foreground patch at \(f)")
            let patch = s.crop(label.reshaped([1] + size), origin: f)
            let classes = Set(patch.values.filter { $0 > 0 })
            #expect(!classes.isEmpty, "a foreground patch at \(f) holds no foreground")
            hits.formUnion(classes.map { Int($0) })
        }
        #expect(hits == [1, 2], "both classes are drawn")
        // No foreground: a random patch.
        let o = s.origin(size: size, foreground: [[], []], force: true, rng: &rng)
        #expect((0..<3).allSatisfy { o[$0] >= low[$0] && o[$0] <= high[$0] })
    }

    @Test func aCropIsTheVolumeInsideAndZeroOutside() {
        let size = [3, 5, 4]
        var rng = RNG(seed: 3)
        let volume = rng.uniformTensor([2] + size, 1, 2)
        let s = PatchSampler(patch: [4, 3, 6])
        let origin = [-1, 3, -1]
        let patch = s.crop(volume, origin: origin)
        #expect(patch.shape == [2, 4, 3, 6])
        for c in 0..<2 { for a in 0..<4 { for b in 0..<3 { for x in 0..<6 {
            let (z, y, w) = (origin[0] + a, origin[1] + b, origin[2] + x)
            let inside = z >= 0 && z < 3 && y >= 0 && y < 5 && w >= 0 && w < 4
            let want: Float = inside ? volume.pointer[((c * 3 + z) * 5 + y) * 4 + w] : 0
            #expect(patch.pointer[((c * 4 + a) * 3 + b) * 6 + x] == want)
        } } } }
    }
}
