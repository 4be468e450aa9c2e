import Foundation
import Medical
import StageConfig
import Tensor
import Testing

/// Resampling to a target spacing and the prepared volumes 3D networks train on.
@Suite struct VolumeResamplingTests {
    @Test func sizesFollowTheSpacingRatio() {
        #expect(VolumeResampling.size([48, 128, 128], spacing: [5, 0.78, 0.78], target: [2.5, 1.56, 1.56]) == [96, 64, 64])
        // Rounded, never below one voxel.
        #expect(VolumeResampling.size([3, 10, 1], spacing: [1, 1, 1], target: [2, 3, 5]) == [2, 3, 1])
    }

    @Test func cubicInterpolatesAndKeepsConstants() {
        let x: [Float] = (0..<7 * 5).map { Float(($0 * 37) % 11) }
        // The same size returns the samples: the spline passes through them.
        #expect(VolumeResampling.resample(x, size: [7, 5], to: [7, 5], order: .cubic) == x)
        // A line whose size is unchanged is passed through, however the other axis moves.
        let constant = [Float](repeating: 3.5, count: 6 * 4)
        for v in VolumeResampling.resample(constant, size: [6, 4], to: [11, 9], order: .cubic) { #expect(abs(v - 3.5) < 1e-5) }
    }

    /// The cubic B-spline with its prefilter reproduces polynomials up to degree 3 away
    /// from the edges (where the mirror boundary bends them): a planted error in the
    /// filter's pole, its gain or the spline's weights breaks it.
    @Test func cubicReproducesACubicInside() {
        let n = 40, m = 73
        func f(_ t: Double) -> Double { 0.002 * t * t * t - 0.05 * t * t + 0.3 * t + 1 }
        let x = (0..<n).map { Float(f(Double($0))) }
        let y = VolumeResampling.resample(x, size: [n], to: [m], order: .cubic)
        for o in 0..<m {
            let t = (Double(o) + 0.5) * Double(n) / Double(m) - 0.5
            guard t > 8, t < Double(n) - 9 else { continue }
            #expect(abs(Double(y[o]) - f(t)) < 1e-3, "at \(t)")
        }
        // Linear resampling: a ramp stays a ramp between the edge voxels.
        let ramp = (0..<n).map { Float($0) }
        let r = VolumeResampling.resample(ramp, size: [n], to: [m], order: .linear)
        for o in 0..<m {
            let t = (Double(o) + 0.5) * Double(n) / Double(m) - 0.5
            #expect(abs(Double(r[o]) - min(max(t, 0), Double(n - 1))) < 1e-4)
        }
    }

    @Test func labelsTakeTheLargestInterpolatedClass() {
        // A 2-voxel-thick slab of class 2 inside class 1, doubled in resolution along depth.
        var labels = [UInt8](repeating: 1, count: 8 * 2 * 2)
        for z in 3..<5 { for i in 0..<4 { labels[z * 4 + i] = 2 } }
        let up = VolumeResampling.resampleLabels(labels, size: [8, 2, 2], to: [16, 2, 2], classes: 3)
        let column = (0..<16).map { up[$0 * 4] }
        // Output voxel o lies at depth o / 2 - 0.25: the slab's one-hot exceeds one half from 2.75 to 4.25.
        #expect(column == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1].map(UInt8.init))
        #expect(Set(up) == [1, 2])
        // The same size returns the labels unchanged.
        #expect(VolumeResampling.resampleLabels(labels, size: [8, 2, 2], to: [8, 2, 2], classes: 3) == labels)
    }
}

@Suite(.serialized) struct VolumeSetTests {
    static let folder: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-volume-tests-\(ProcessInfo.processInfo.processIdentifier)").path
        if !FileManager.default.fileExists(atPath: dir + "/dataset.json") {
            try? Phantom.write(TestSettings.phantom(cases: 4, seed: 5, size: 24, slices: 8), to: dir)
        }
        return dir
    }()

    static func settings(spacing: TargetSpacing) -> Preprocessing {
        var p = TestSettings.preprocessing(height: 24, width: 24)
        p.volume = VolumeSampling(patch: [8, 16, 16], spacing: spacing)
        return p
    }

    func volumes(_ spacing: TargetSpacing) throws -> VolumeSet {
        let dataset = try MSDDataset.load(Self.folder)
        let settings = Self.settings(spacing: spacing)
        return try VolumeSet.prepare(dataset, settings, classes: .merged([1]), background: [0, 2, 3],
                                     cache: Self.folder + "/cache-\(settings.json.sha256.prefix(16)).volumes")
    }

    @Test func medianSpacingKeepsThePhantomsGridAndItsVoxels() throws {
        let set = try volumes(.median)
        let g = Phantom.geometry(TestSettings.phantom(cases: 4, seed: 5, size: 24, slices: 8))
        // NIfTI stores spacings in float32.
        #expect(zip(set.spacing, [g.spacing[2], g.spacing[1], g.spacing[0]]).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(set.cases.allSatisfy { $0.dims == [8, 24, 24] && $0.native == [24, 24, 8] })
        #expect(set.records.count == 4 && set.records.allSatisfy { $0.slice == 0 })
        // At the source's own spacing, the volume is the slices' stack: the same windowed values.
        let dataset = try MSDDataset.load(Self.folder)
        let slices = try SliceSet.prepare(dataset, TestSettings.preprocessing(height: 24, width: 24), classes: .merged([1]), background: [0, 2, 3],
                                          cache: Self.folder + "/cache.slices")
        let (image, label) = set.volume(1)
        let mine = slices.records.indices.filter { slices.records[$0].patient == 1 }
        let (planes, truth) = slices.batch(mine)
        #expect(image.shape == [1, 8, 24, 24] && label.shape == [1, 8, 24, 24])
        for i in 0..<image.count { #expect(abs(image.pointer[i] - planes.pointer[i]) < 1e-6) }
        #expect(label.values == truth.values)
    }

    @Test func aCoarserSpacingHalvesTheGridAndKeepsTheOrgan() throws {
        let g = Phantom.geometry(TestSettings.phantom(cases: 4, seed: 5, size: 24, slices: 8))
        let set = try volumes(.millimetres([g.spacing[2] * 2, g.spacing[1] * 2, g.spacing[0] * 2]))
        #expect(set.cases.allSatisfy { $0.dims == [4, 12, 12] })
        // The largest spleen (26 voxels at full resolution) keeps voxels at half resolution along each axis.
        let largest = (0..<set.count).max { a, b in set.volume(a).label.values.filter { $0 > 0 }.count < set.volume(b).label.values.filter { $0 > 0 }.count } ?? 0
        #expect(set.volume(largest).label.values.contains(1))
        // Opening it again reads the same cache; other settings are refused by identity.
        #expect(try volumes(.millimetres([g.spacing[2] * 2, g.spacing[1] * 2, g.spacing[0] * 2])).identity == set.identity)
    }

    @Test func networkOrderRoundTrips() throws {
        let v = Volume(dims: [3, 4, 5], spacing: [1, 1, 1], data: (0..<60).map(Float.init), datatype: "FLOAT32")
        for axis in SliceAxis.allCases {
            let a = VolumeSet.networkAxes(axis)
            let values = try #require(VolumeSet.canonicalOrder(VolumeSet.networkOrder(v, axis: axis), dims: v.dims, axis: axis) as [Float]?)
            #expect(values == v.data, "\(axis) with axes \(a)")
        }
    }

    @Test func patchesAreSeededAndHalfCentredOnForeground() throws {
        let set = try volumes(.median)
        let sampler = PatchSampler(patch: [8, 16, 16])
        let a = set.patches([0, 1, 2], sampler: sampler, classes: 2, batch: 3, seed: 7)
        let b = set.patches([0, 1, 2], sampler: sampler, classes: 2, batch: 3, seed: 7)
        #expect(a.images.shape == [3, 1, 8, 16, 16] && a.labels.shape == [3, 1, 8, 16, 16])
        #expect(a.images.values == b.images.values && a.labels.values == b.labels.values)
        // A rank's share drawn alone is what the whole batch drew for it.
        let share = set.patches([2], sampler: sampler, classes: 2, batch: 3, first: 2, seed: 7)
        #expect(share.images.values == Array(a.images.values[(2 * 8 * 256)...]))
        // The last of three is centred on the spleen, which every phantom case has.
        #expect(Array(a.labels.values[(2 * 8 * 256)...]).contains(1))
    }
}

