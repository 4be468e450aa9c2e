import Architecture
import Foundation
@testable import NN
import Tensor
import Testing

/// Sliding-window inference against predictions stitched directly, voxel by voxel.
@Suite struct SlidingWindowTests {
    /// nnU-Net's window starts: n = ceil((size - patch) / (patch * step)) + 1, spread evenly, rounded half to even.
    @Test func windowsAreSpreadAsNNUNetSpreadsThem() {
        #expect(WindowPlacement.positions(size: 64, patch: 64, step: 0.5) == [0])
        #expect(WindowPlacement.positions(size: 100, patch: 64, step: 0.5) == [0, 18, 36])
        #expect(WindowPlacement.positions(size: 128, patch: 64, step: 0.5) == [0, 32, 64])
        // 10 voxels, patch 4, step 2: ceil(6 / 2) + 1 = 4 windows, 2 apart.
        #expect(WindowPlacement.positions(size: 10, patch: 4, step: 0.5) == [0, 2, 4, 6])
        // 11 voxels: ceil(7 / 2) + 1 = 5 windows, 1.75 apart: 0, 1.75, 3.5, 5.25, 7 -> 0, 2, 4, 5, 7.
        #expect(WindowPlacement.positions(size: 11, patch: 4, step: 0.5) == [0, 2, 4, 5, 7])
        // Step 1 (no overlap asked): ceil(5 / 4) + 1 = 3 windows, 2.5 apart, 2.5 rounded half to even.
        #expect(WindowPlacement.positions(size: 9, patch: 4, step: 1) == [0, 2, 5])
    }

    @Test func importanceIsAGaussianPeakingAtTheCentre() {
        let g = SlidingWindow(patch: [4, 8, 6]).importance()
        #expect(g.shape == [4, 8, 6])
        let centre = (2 * 8 + 4) * 6 + 3
        #expect(g.pointer[centre] == 1)
        #expect(g.values.allSatisfy { $0 > 0 && $0 <= 1 })
        // Symmetric about the centre voxel along h: offsets -1 and +1 weigh the same; further is lighter.
        #expect(abs(g.pointer[centre - 6] - g.pointer[centre + 6]) < 1e-7)
        #expect(g.pointer[centre - 12] < g.pointer[centre - 6])
        // sigma = 8 / 8 = 1 along h: one voxel off is exp(-1/2).
        #expect(abs(g.pointer[centre - 6] - Float(exp(-0.5))) < 1e-6)
    }

    /// A pointwise network (1x1x1 convolution) sees each voxel alone, so its sliding-window
    /// prediction is its prediction on the whole volume: any mistake in placing, weighting,
    /// padding or cropping windows shows. Sizes below, at and above the patch, with mirroring.
    @Test(arguments: [([5, 9, 13], [4, 8, 6], [Int]()), ([3, 8, 20], [4, 8, 6], [0, 2]), ([7, 6, 6], [4, 8, 6], [1])])
    func aPointwiseNetworkGivesItsWholeVolumePrediction(_ size: [Int], _ patch: [Int], _ mirror: [Int]) {
        var rng = RNG(seed: 9)
        let image = rng.uniformTensor([2] + size, -1, 1)
        let weight = Variable(rng.uniformTensor([3, 2, 1, 1, 1], -1, 1)), bias = Variable(rng.uniformTensor([3], -1, 1))
        let model: (Tensor) -> Tensor = { x in Tape.noGrad { F.conv3d(Variable(x), weight, bias).value } }
        let window = SlidingWindow(patch: patch, mirrorAxes: mirror)
        let got = window.predict(image, classes: 3, model)
        let whole = model(image.reshaped([1, 2] + size))
        #expect(got.shape == [3] + size, "the prediction is on the input's grid")
        var worst: Float = 0
        for i in 0..<got.count { worst = max(worst, abs(got.pointer[i] - whole.pointer[i])) }
        #expect(worst < 1e-5, "sliding window differs from the whole-volume prediction by \(worst)")
    }

    /// A 3D U-Net's windows see different context, so the result is checked against the
    /// definition: for each voxel, the Gaussian-weighted mean over the windows covering it
    /// of that window's logits, every window predicted here on its own crop.
    @Test func aUNetsPredictionIsTheWeightedMeanOfItsWindows() {
        let arch = ModelArchitecture.unet(UNetArchitecture(
            inChannels: 1, widths: [4, 8], bottleneck: 8, convsPerBlock: 1, norm: .instance, groups: 1, upsampling: .transpose,
            heads: [Head(name: "segmentation", channels: 2)], sharedDecoder: true,
            volume: VolumeLevels(kernels: [[1, 3, 3], [3, 3, 3], [3, 3, 3]], pools: [[1, 2, 2], [2, 2, 2]])))
        let net = ModelBuilder.build(arch, height: 8, width: 8, seed: 3)
        let model: (Tensor) -> Tensor = { x in Tape.noGrad { net.forward(Variable(x), training: false, taps: []).logits["segmentation"]!.value } }
        var rng = RNG(seed: 4)
        let (size, patch) = ([6, 13, 11], [4, 8, 8])
        let image = rng.uniformTensor([1] + size, -1, 1)
        let got = SlidingWindow(patch: patch).predict(image, classes: 2, model)
        #expect(got.shape == [2] + size)

        let g = SlidingWindow(patch: patch).importance()
        let starts = (0..<3).map { WindowPlacement.positions(size: size[$0], patch: patch[$0], step: 0.5) }
        var sum = [Double](repeating: 0, count: 2 * size.reduce(1, *)), weights = [Double](repeating: 0, count: size.reduce(1, *))
        for z in starts[0] { for y in starts[1] { for x in starts[2] {
            var crop = [Float]()
            for a in 0..<patch[0] { for b in 0..<patch[1] { for c in 0..<patch[2] {
                crop.append(image.pointer[((z + a) * size[1] + y + b) * size[2] + x + c])
            } } }
            let out = model(Tensor(shape: [1, 1] + patch, values: crop))
            for a in 0..<patch[0] { for b in 0..<patch[1] { for c in 0..<patch[2] {
                let w = (a * patch[1] + b) * patch[2] + c, v = ((z + a) * size[1] + y + b) * size[2] + x + c
                weights[v] += Double(g.pointer[w])
                for k in 0..<2 { sum[k * weights.count + v] += Double(g.pointer[w]) * Double(out.pointer[k * g.count + w]) }
            } } }
        } } }
        var worst = 0.0
        for i in 0..<sum.count { worst = max(worst, abs(sum[i] / weights[i % weights.count] - Double(got.pointer[i]))) }
        #expect(worst < 1e-5, "sliding window differs from the stitched windows by \(worst)")
    }
}
