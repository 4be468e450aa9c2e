import Architecture
import Foundation
import Tensor

/// Sliding-window inference over a whole volume, as nnU-Net predicts with a 3D
/// network trained on patches:
///
/// - windows of the patch size, placed per axis by `WindowPlacement.positions` (the plan
///   counts them with the same function): n = ceil((size - patch) / (patch * step)) + 1
///   windows spread evenly from the first voxel to the last (step 0.5: overlapping by at
///   least half a patch);
/// - a volume smaller than the patch along an axis is padded with zeros (half
///   before, half after) and the prediction cropped back;
/// - each window's logits are weighted by a Gaussian importance map (sigma 1/8 of
///   the patch per axis, truncated at 4 sigma, 1 at the centre voxel `patch / 2`,
///   zeros raised to the smallest non-zero weight) and the sum divided by the sum
///   of the weights, voxel by voxel;
/// - with `mirrorAxes`, every window is also predicted on its flips along every
///   subset of those axes (2^k passes), each flipped back, and averaged.
///
/// The result is logits on the input's own grid: [classes, D, H, W] for an image
/// [C, D, H, W].
public struct SlidingWindow: Sendable {
    public var patch: [Int]
    public var step: Double
    /// Spatial axes (0: depth, 1: height, 2: width) mirrored at test time.
    public var mirrorAxes: [Int]

    public init(patch: [Int], step: Double = WindowPlacement.step, mirrorAxes: [Int] = []) {
        precondition(patch.count == 3 && patch.allSatisfy { $0 > 0 } && step > 0 && step <= 1, "SlidingWindow: a [d, h, w] patch and a step in (0, 1]")
        precondition(mirrorAxes.allSatisfy { (0..<3).contains($0) }, "SlidingWindow: mirror axes are 0, 1, 2")
        (self.patch, self.step, self.mirrorAxes) = (patch, step, mirrorAxes)
    }

    /// The importance of each voxel of a window's prediction, [pd, ph, pw].
    public func importance() -> Tensor {
        let axes = patch.map { p -> [Double] in
            let sigma = Double(p) / 8, centre = p / 2, radius = Int(4 * sigma + 0.5)
            return (0..<p).map { i in abs(i - centre) <= radius ? exp(-Double((i - centre) * (i - centre)) / (2 * sigma * sigma)) : 0 }
        }
        var values = [Float](repeating: 0, count: patch.reduce(1, *))
        var i = 0
        for a in axes[0] { for b in axes[1] { for c in axes[2] { values[i] = Float(a * b * c); i += 1 } } }
        let smallest = values.filter { $0 > 0 }.min() ?? 1
        return Tensor(shape: patch, values: values.map { $0 > 0 ? $0 : smallest })
    }

    /// Logits [classes, D, H, W] for `image` [C, D, H, W]; `model` maps a batch of
    /// windows [B, C, pd, ph, pw] to their logits [B, classes, pd, ph, pw].
    public func predict(_ image: Tensor, classes: Int, _ model: (Tensor) -> Tensor) -> Tensor {
        precondition(image.rank == 4, "SlidingWindow.predict: an image [C, D, H, W], got \(image.shape)")
        let channels = image.shape[0], size = Array(image.shape[1...])
        let padded = zip(size, patch).map { max($0, $1) }
        let before = zip(padded, size).map { ($0 - $1) / 2 }
        let source = padded == size ? image : VolumeRegion.crop(image, origin: before.map { -$0 }, size: padded)
        let starts = (0..<3).map { WindowPlacement.positions(size: padded[$0], patch: patch[$0], step: step) }
        let weight = importance()
        let voxels = padded.reduce(1, *), windowVoxels = patch.reduce(1, *)
        let sum = Tensor(zeros: [classes] + padded), weights = Tensor(zeros: padded)
        for z in starts[0] { for y in starts[1] { for x in starts[2] {
            let origin = [z, y, x]
            let window = VolumeRegion.crop(source, origin: origin, size: patch).reshaped([1, channels] + patch)
            let logits = mirrored(window, model)
            precondition(logits.shape == [1, classes] + patch, "SlidingWindow: the model returned \(logits.shape) for a window \(window.shape)")
            VolumeRegion.forEachRow(of: patch, in: padded, at: origin) { windowRow, volumeRow, length in
                for k in 0..<classes {
                    let src = logits.pointer + k * windowVoxels + windowRow, dst = sum.pointer + k * voxels + volumeRow
                    for i in 0..<length { dst[i] += src[i] * weight.pointer[windowRow + i] }
                }
                let dst = weights.pointer + volumeRow
                for i in 0..<length { dst[i] += weight.pointer[windowRow + i] }
            }
        } } }
        for k in 0..<classes {
            let row = sum.pointer + k * voxels
            for i in 0..<voxels { row[i] /= weights.pointer[i] }
        }
        return padded == size ? sum : VolumeRegion.crop(sum, origin: before, size: size)
    }

    /// The mean of the model's logits over every flip of `mirrorAxes` (each flipped back).
    private func mirrored(_ window: Tensor, _ model: (Tensor) -> Tensor) -> Tensor {
        let axes = Array(Set(mirrorAxes)).sorted()
        guard !axes.isEmpty else { return model(window) }
        var total: Tensor?
        for subset in 0..<(1 << axes.count) {
            let flips = axes.enumerated().filter { subset & (1 << $0.offset) != 0 }.map(\.element)
            let out = Volumes.flip(model(Volumes.flip(window, axes: flips)), axes: flips)
            if let t = total { for i in 0..<t.count { t.pointer[i] += out.pointer[i] } } else { total = out.copy() }
        }
        let t = total!, scale = 1 / Float(1 << axes.count)
        for i in 0..<t.count { t.pointer[i] *= scale }
        return t
    }
}

/// Mirroring of windows (the rest of the region arithmetic is Tensor's `VolumeRegion`).
enum Volumes {
    /// x reversed along the given spatial axes (0: depth, 1: height, 2: width).
    static func flip(_ x: Tensor, axes: [Int]) -> Tensor {
        guard !axes.isEmpty else { return x }
        let s = Array(x.shape.suffix(3)), planes = x.count / max(1, s.reduce(1, *))
        let (fd, fh, fw) = (axes.contains(0), axes.contains(1), axes.contains(2))
        let y = Tensor(uninitialized: x.shape)
        for p in 0..<planes {
            let base = p * s[0] * s[1] * s[2]
            for a in 0..<s[0] { for b in 0..<s[1] {
                let sa = fd ? s[0] - 1 - a : a, sb = fh ? s[1] - 1 - b : b
                let src = x.pointer + base + (sa * s[1] + sb) * s[2], dst = y.pointer + base + (a * s[1] + b) * s[2]
                if fw { for c in 0..<s[2] { dst[c] = src[s[2] - 1 - c] } } else { dst.update(from: src, count: s[2]) }
            } }
        }
        return y
    }
}
