import Tensor

/// Where the patches of a 3D training batch come from, as nnU-Net's 3d_fullres data
/// loader draws them:
///
/// - a volume smaller than the patch along an axis is padded (the image with 0,
///   the label with background), half before and half after;
/// - a random patch lies anywhere in the padded volume: its start is uniform in
///   [-pad/2, size + pad/2 + pad%2 - patch] per axis;
/// - the last third of each batch (`foregroundShare` 1/3, rounded, as nnU-Net's
///   `oversample_foreground_percent` 0.33) is centred on a foreground voxel: a class
///   drawn uniformly among those the volume contains, then one of its voxels; the
///   start is raised to the lower bound where centring would go below it (and, as in
///   nnU-Net, not lowered at the upper end: the patch may reach into padding there).
///   A volume without foreground gives a random patch.
///
/// Every draw comes from the RNG the caller passes, so a batch is a function of the
/// stage's seed and the step.
public struct PatchSampler: Sendable {
    public var patch: [Int]
    public var foregroundShare: Double

    public init(patch: [Int], foregroundShare: Double = 1.0 / 3.0) {
        precondition(patch.count == 3 && patch.allSatisfy { $0 > 0 }, "PatchSampler: a [d, h, w] patch")
        (self.patch, self.foregroundShare) = (patch, foregroundShare)
    }

    /// Whether sample `index` of a batch of `batch` is centred on foreground (the last ones).
    public func forcesForeground(index: Int, batch: Int) -> Bool {
        index >= Int((Double(batch) * (1 - foregroundShare)).rounded(.toNearestOrEven))
    }

    /// The lowest and highest patch start per axis for a volume of `size`.
    public func bounds(size: [Int]) -> (low: [Int], high: [Int]) {
        let pad = zip(size, patch).map { max(0, $1 - $0) }
        return ((0..<3).map { -pad[$0] / 2 }, (0..<3).map { size[$0] + pad[$0] / 2 + pad[$0] % 2 - patch[$0] })
    }

    /// The patch start (may be negative: padding) for a volume of `size`; `foreground`
    /// lists, per class present, the flat indices of its voxels ([D, H, W] order).
    public func origin(size: [Int], foreground: [[Int]], force: Bool, rng: inout RNG) -> [Int] {
        let (low, high) = bounds(size: size)
        let classes = foreground.filter { !$0.isEmpty }
        guard force, !classes.isEmpty else {
            return (0..<3).map { low[$0] + rng.below(high[$0] - low[$0] + 1) }
        }
        let voxels = classes[rng.below(classes.count)]
        let v = voxels[rng.below(voxels.count)]
        let at = [v / (size[1] * size[2]), v / size[2] % size[1], v % size[2]]
        return (0..<3).map { max(low[$0], at[$0] - patch[$0] / 2) }
    }

    /// The voxels of each foreground class 1..<classes of a label volume [D, H, W] (flat indices).
    public static func foreground(of label: UnsafePointer<Float>, count: Int, classes: Int) -> [[Int]] {
        foreground(count: count, classes: classes) { Int(label[$0]) }
    }

    /// The same, for labels read by `classAt(flat index)` (a cache's bytes).
    public static func foreground(count: Int, classes: Int, classAt: (Int) -> Int) -> [[Int]] {
        var out = [[Int]](repeating: [], count: max(0, classes - 1))
        for i in 0..<count {
            let k = classAt(i)
            if k >= 1 && k < classes { out[k - 1].append(i) }
        }
        return out
    }

    /// The patch of `volume` [C, D, H, W] starting at `origin`, zero outside: [C, pd, ph, pw].
    public func crop(_ volume: Tensor, origin: [Int]) -> Tensor {
        precondition(volume.rank == 4, "PatchSampler.crop: a volume [C, D, H, W], got \(volume.shape)")
        return VolumeRegion.crop(volume, origin: origin, size: patch)
    }
}
