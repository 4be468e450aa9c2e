import Foundation
import Medical
import StageConfig
import Tensor
import Testing

/// Augmentation: the same seed gives the same batch, the label moves with the image,
/// intensity transforms leave labels alone, and a flip is exact.
@Suite struct AugmentationTests {
    /// Two images (2 channels) whose first channel is their label: a bright off-centre block.
    static func batch(height h: Int = 24, width w: Int = 24) -> (Tensor, Tensor) {
        let images = Tensor(zeros: [2, 2, h, w]), labels = Tensor(zeros: [2, 1, h, w])
        for b in 0..<2 { for y in min(h, 4)..<min(h, 12 + 4 * b) { for x in min(w, 3)..<min(w, 10 + b) {
            labels.pointer[b * h * w + y * w + x] = 1
            images.pointer[(b * 2) * h * w + y * w + x] = 1
            images.pointer[(b * 2 + 1) * h * w + y * w + x] = Float(x + y) / 10
        } } }
        return (images, labels)
    }

    static let everything = AugmentationSettings(
        flip: .init(p: 0.5, horizontal: true, vertical: true), rotate90: 0.5, rotate: .init(p: 0.5, low: -30, high: 30),
        scale: .init(p: 0.5, low: 0.7, high: 1.4), elastic: .init(p: 0.5, alpha: 3, sigma: 8),
        brightness: .init(p: 0.5, low: 0.7, high: 1.3), contrast: .init(p: 0.5, low: 0.7, high: 1.3), gamma: .init(p: 0.5, low: 0.7, high: 1.5),
        noise: .init(p: 0.5, low: 0, high: 0.1), blur: .init(p: 0.5, low: 0.5, high: 1))

    @Test func theSameSeedGivesTheSameBatch() {
        let (images, labels) = Self.batch()
        let a = Augmenter(Self.everything).apply(images: images, labels: labels, seed: 11)
        let b = Augmenter(Self.everything).apply(images: images, labels: labels, seed: 11)
        let c = Augmenter(Self.everything).apply(images: images, labels: labels, seed: 12)
        #expect(a.images.values == b.images.values && a.labels.values == b.labels.values)
        #expect(a.images.values != c.images.values)
        // The input is not modified.
        #expect(images.values == Self.batch().0.values)
    }

    /// With every spatial transform certain, the label follows the image: where the label
    /// is 1 the (bilinear) image is at least 1/4, where it is 0 at most 3/4.
    @Test func theLabelMovesWithTheImage() {
        let spatial = AugmentationSettings(flip: .init(p: 1, horizontal: true, vertical: true), rotate90: 1, rotate: .init(p: 1, low: -40, high: 40),
                                           scale: .init(p: 1, low: 0.8, high: 1.3), elastic: .init(p: 1, alpha: 2, sigma: 6))
        let (images, labels) = Self.batch()
        for seed in UInt64(0)..<20 {
            let out = Augmenter(spatial).apply(images: images, labels: labels, seed: seed)
            let plane = 24 * 24
            var moved = false
            for b in 0..<2 {
                for i in 0..<plane {
                    let l = out.labels.pointer[b * plane + i], v = out.images.pointer[b * 2 * plane + i]
                    #expect(l == 0 || l == 1)
                    if l == 1 { #expect(v >= 0.25 - 1e-5, "seed \(seed) image \(b) pixel \(i)") } else { #expect(v <= 0.75 + 1e-5) }
                    if l != labels.pointer[b * plane + i] { moved = true }
                }
            }
            #expect(moved, "seed \(seed): nothing moved")
        }
    }

    @Test func aHorizontalFlipMirrorsExactly() {
        let flip = AugmentationSettings(flip: .init(p: 1, horizontal: true, vertical: false))
        let (images, labels) = Self.batch(height: 6, width: 9)
        let out = Augmenter(flip).apply(images: images, labels: labels, seed: 3)
        for b in 0..<2 { for ch in 0..<2 { for y in 0..<6 { for x in 0..<9 {
            #expect(out.images.pointer[((b * 2 + ch) * 6 + y) * 9 + x] == images.pointer[((b * 2 + ch) * 6 + y) * 9 + (8 - x)])
        } } } }
        for b in 0..<2 { for y in 0..<6 { for x in 0..<9 { #expect(out.labels.pointer[(b * 6 + y) * 9 + x] == labels.pointer[(b * 6 + y) * 9 + 8 - x]) } } }
    }

    @Test func intensityTransformsLeaveLabelsAndGeometryAlone() {
        let intensity = AugmentationSettings(brightness: .init(p: 1, low: 0.5, high: 0.6), contrast: .init(p: 1, low: 1.2, high: 1.3),
                                             gamma: .init(p: 1, low: 1.5, high: 1.6), noise: .init(p: 1, low: 0.01, high: 0.02), blur: .init(p: 1, low: 0.8, high: 1))
        let (images, labels) = Self.batch()
        let out = Augmenter(intensity).apply(images: images, labels: labels, seed: 5)
        #expect(out.labels.values == labels.values)
        #expect(out.images.values != images.values)
        // Quarter turns need square slices: on a non-square batch they are skipped.
        let (wide, wideLabels) = Self.batch(height: 8, width: 12)
        let turned = Augmenter(AugmentationSettings(rotate90: 1)).apply(images: wide, labels: wideLabels, seed: 1)
        #expect(turned.images.values == wide.values && turned.labels.values == wideLabels.values)
    }

    @Test func settingsRoundTripThroughTheirEncoding() throws {
        #expect(try AugmentationSettings(json: Self.everything.json) == Self.everything)
        #expect(try AugmentationSettings(json: AugmentationSettings().json) == AugmentationSettings())
        #expect(Self.everything.isSpatial && !AugmentationSettings(noise: .init(p: 1, low: 0, high: 1)).isSpatial)
    }

    /// Settings at the edge of what a plan file could hold: nothing traps, the output is finite.
    @Test func extremeSettingsDoNotTrap() {
        let (images, labels) = Self.batch()
        let extreme = AugmentationSettings(rotate: .init(p: 1, low: -180, high: 180), scale: .init(p: 1, low: 1e-30, high: 1e-30),
                                           elastic: .init(p: 1, alpha: 1e30, sigma: 1), blur: .init(p: 1, low: 1e9, high: 1e9))
        let out = Augmenter(extreme).apply(images: images, labels: labels, seed: 7)
        #expect(out.images.values.allSatisfy(\.isFinite) && out.labels.values.allSatisfy { $0 == 0 || $0 == 1 })
    }

    /// Noise has the drawn standard deviation and no bias.
    @Test func noiseHasTheDrawnSpread() {
        let images = Tensor(zeros: [4, 1, 64, 64]), labels = Tensor(zeros: [4, 1, 64, 64])
        let out = Augmenter(AugmentationSettings(noise: .init(p: 1, low: 0.05, high: 0.05))).apply(images: images, labels: labels, seed: 9)
        let v = out.images.values.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        let sd = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        #expect(abs(mean) < 0.002 && abs(sd - 0.05) < 0.0025, "mean \(mean), sd \(sd)")
        #expect(v.allSatisfy { abs($0) <= 0.05 * 3.47 })
    }
}

/// 3D patches: a flip along depth is exact, the label follows the image under every
/// spatial transform, and blur reaches across slices.
@Suite struct VolumeAugmentationTests {
    /// Two volumes [2, 1, D, H, W] whose image is their label (a block, off-centre along every axis) plus a ramp along depth.
    static func batch(depth d: Int = 8, size n: Int = 16) -> (Tensor, Tensor) {
        let images = Tensor(zeros: [2, 1, d, n, n]), labels = Tensor(zeros: [2, 1, d, n, n])
        for b in 0..<2 { for z in 1..<(d / 2 + b) { for y in 3..<(9 + b) { for x in 2..<8 {
            let i = ((b * d + z) * n + y) * n + x
            labels.pointer[i] = 1
            images.pointer[i] = 1 + Float(z) / 100
        } } } }
        return (images, labels)
    }

    @Test func aDepthFlipMirrorsExactly() {
        let flip = AugmentationSettings(flip: .init(p: 1, horizontal: false, vertical: false, depth: true))
        let (images, labels) = Self.batch(depth: 5, size: 6)
        let out = Augmenter(flip).apply(images: images, labels: labels, seed: 3)
        for b in 0..<2 { for z in 0..<5 { for i in 0..<36 {
            #expect(out.images.pointer[(b * 5 + z) * 36 + i] == images.pointer[(b * 5 + 4 - z) * 36 + i])
            #expect(out.labels.pointer[(b * 5 + z) * 36 + i] == labels.pointer[(b * 5 + 4 - z) * 36 + i])
        } } }
    }

    /// Where the (nearest) label is 1 the (trilinear) image is at least 1/8, where it is 0 at most 7/8 of the block's value.
    @Test func theLabelMovesWithTheImage() {
        let spatial = AugmentationSettings(flip: .init(p: 1, horizontal: true, vertical: true, depth: true), rotate90: 1,
                                           rotate: .init(p: 1, low: -40, high: 40), scale: .init(p: 1, low: 0.8, high: 1.3),
                                           elastic: .init(p: 1, alpha: 1.5, sigma: 4))
        let (images, labels) = Self.batch()
        let voxels = 8 * 16 * 16
        for seed in UInt64(0)..<10 {
            let out = Augmenter(spatial).apply(images: images, labels: labels, seed: seed)
            var moved = false
            for i in 0..<(2 * voxels) {
                let l = out.labels.pointer[i], v = out.images.pointer[i]
                #expect(l == 0 || l == 1)
                if l == 1 { #expect(v >= 0.125 - 1e-5, "seed \(seed) voxel \(i)") } else { #expect(v <= 0.875 * 1.08 + 1e-5, "seed \(seed) voxel \(i)") }
                if l != labels.pointer[i] { moved = true }
            }
            #expect(moved, "seed \(seed): nothing moved")
        }
    }

    /// Slices of distinct constant values: a thin patch turns in the plane alone (the middle of each output
    /// slice keeps its value), a thick one also about its other axes (slices mix).
    @Test func thinPatchesTurnInThePlaneAloneThickOnesAboutEveryAxis() {
        let rotate = AugmentationSettings(rotate: .init(p: 1, low: -30, high: 30))
        func mixes(depth d: Int) -> Bool {
            let images = Tensor(zeros: [1, 1, d, 16, 16]), labels = Tensor(zeros: [1, 1, d, 16, 16])
            for z in 0..<d { for i in 0..<256 { images.pointer[z * 256 + i] = Float(z + 1) } }
            var mixed = false
            for seed in UInt64(0)..<4 {
                let out = Augmenter(rotate).apply(images: images, labels: labels, seed: seed)
                // The middle of each slice, which an in-plane turn of 30 degrees or less keeps inside the plane.
                for z in 0..<d { for y in 6...9 { for x in 6...9 {
                    if abs(out.images.pointer[z * 256 + y * 16 + x] - Float(z + 1)) > 1e-3 { mixed = true }
                } } }
            }
            return mixed
        }
        #expect(!mixes(depth: 4))   // 3 x 4 < 16: in the plane
        #expect(mixes(depth: 8))    // 3 x 8 >= 16: about every axis
    }

    @Test func blurReachesAcrossSlices() {
        let blur = AugmentationSettings(blur: .init(p: 1, low: 1, high: 1))
        let images = Tensor(zeros: [1, 1, 5, 4, 4]), labels = Tensor(zeros: [1, 1, 5, 4, 4])
        for i in 0..<16 { images.pointer[2 * 16 + i] = 1 }  // slice 2 bright, the others dark
        let out = Augmenter(blur).apply(images: images, labels: labels, seed: 1)
        // A uniform slice stays uniform in the plane; along depth it spreads as a Gaussian of sigma 1.
        func gauss(_ d: Int) -> Float { exp(-Float(d * d) / 2) }
        let total = (-3...3).map(gauss).reduce(0, +)
        let expected = (0..<5).map { z in gauss(z - 2) / total }
        for z in 0..<5 { for i in 0..<16 { #expect(abs(out.images.pointer[z * 16 + i] - expected[z]) < 1e-5, "slice \(z)") } }
    }
}
