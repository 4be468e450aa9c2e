import Architecture
import Foundation
import StageConfig

/// A 3D recipe computed from a dataset's fingerprint, by the rules nnU-Net v2's planner
/// uses for its `3d_fullres` configuration (ExperimentPlanner and get_pool_and_conv_props,
/// read in nnunetv2 2.8.1): the target spacing, the patch, each level's kernel and
/// pooling, the widths and the batch. Where nnU-Net measures a GPU's memory with a
/// feature-map count, the recipe asks the plan's memory model for a training step on
/// this runtime and fits it to a budget (`data.preprocess.memory`).
public struct VolumeRecipe: Hashable, Sendable {
    /// mm [depth, height, width].
    public var spacing: [Double]
    /// The median case at `spacing` (after cropping to the images' non-zero box), voxels.
    public var medianShape: [Double]
    public var patch: [Int]
    /// The reference network's levels: kernels per level and the bottleneck's, pooling after each level.
    public var levels: VolumeLevels
    /// Encoder widths (32 doubling, at most 320), then the bottleneck's.
    public var widths: [Int]
    public var bottleneck: Int
    public var batch: Int
    /// The reference network's training step at `batch`, and the budget it was fitted to.
    public var stepBytes: Int
    public var budgetBytes: Int
    /// Why the batch is what it is.
    public var batchReason: String

    /// nnU-Net's constants (ExperimentPlanner.__init__ and nnunetv2.configuration).
    public static let anisotropyThreshold = 3.0
    public static let smallestMapSide = 4
    public static let baseWidth = 32, widestWidth = 320
    public static let smallestBatch = 2
    /// A batch covers at most this share of the dataset's voxels.
    public static let datasetShare = 0.05
    /// nnU-Net's initial patch: the spacing's aspect at the volume of a 256^3 cube.
    public static let initialVoxels = 256.0 * 256.0 * 256.0

    /// The training step's bytes for a U-Net of these `levels`, `widths`, bottleneck and `batch`, on `patch`.
    public typealias StepBytes = (_ patch: [Int], _ levels: VolumeLevels, _ widths: [Int], _ bottleneck: Int, _ batch: Int) -> Int

    /// The target spacing: the median per axis; for anisotropic data (the coarsest axis over
    /// 3 times the others' spacing, with under a third of their voxels) that axis takes the
    /// 10th percentile of its spacings, never finer than the other axes.
    public static func targetSpacing(_ f: DatasetFingerprint) -> [Double] {
        var target = f.medianSpacing
        let size = f.medianCroppedShape
        guard let worst = target.indices.max(by: { target[$0] < target[$1] }) else { return target }
        let others = target.indices.filter { $0 != worst }
        let otherSpacing = others.map { target[$0] }.max() ?? 0
        let anisotropicSpacing = target[worst] > anisotropyThreshold * otherSpacing
        let anisotropicVoxels = size[worst] * anisotropyThreshold < (others.map { size[$0] }.min() ?? 0)
        if anisotropicSpacing && anisotropicVoxels {
            var axis = DatasetFingerprint.percentile(sorted: f.cases.map { $0.spacing[worst] }.sorted(), 10)
            if axis < otherSpacing { axis = otherSpacing + 1e-5 }
            target[worst] = axis
        }
        return target
    }

    /// A case's size at `target` (numpy's round: halves to even).
    public static func resampledShape(_ shape: [Int], spacing: [Double], target: [Double]) -> [Int] {
        (0..<3).map { Int((spacing[$0] / target[$0] * Double(shape[$0])).rounded(.toNearestOrEven)) }
    }

    /// The levels a patch of `size` at `spacing` allows: pool the axes within a factor 2 of the
    /// finest spacing while their maps stay at least twice `smallestMapSide` (a lone axis:
    /// three times); a kernel side becomes 3 once its axis is within a factor 2 of the finest.
    /// Returns the pools, the kernels (one more: the bottleneck's 3x3x3) and the patch padded
    /// up to a multiple of the down-sampling.
    static func topology(spacing: [Double], size: [Double]) -> (pools: [[Int]], kernels: [[Int]], patch: [Int], divisor: [Int]) {
        var current = spacing, extent = size
        var pools: [[Int]] = [], kernels: [[Int]] = [], kernel = [1, 1, 1], count = [0, 0, 0]
        let side = Double(smallestMapSide)
        while true {
            var axes = (0..<3).filter { extent[$0] >= 2 * side }
            guard let finestValid = axes.map({ current[$0] }).min() else { break }
            axes = axes.filter { current[$0] / finestValid < 2 }
            if axes.count == 1, extent[axes[0]] < 3 * side { break }
            if axes.isEmpty { break }
            let finest = current.min() ?? 1
            for d in 0..<3 where kernel[d] != 3 && current[d] / finest < 2 { kernel[d] = 3 }
            var pool = [1, 1, 1]
            for a in axes {
                pool[a] = 2
                count[a] += 1
                current[a] *= 2
                extent[a] = (extent[a] / 2).rounded(.up)
            }
            pools.append(pool)
            kernels.append(kernel)
        }
        kernels.append([3, 3, 3])
        let divisor = count.map { 1 << $0 }
        // nnU-Net's pad_shape: up to the next multiple (a multiple stays).
        let patch = (0..<3).map { a -> Int in
            let d = Double(divisor[a]), r = size[a].truncatingRemainder(dividingBy: d)
            return Int(r == 0 ? size[a] : size[a] + d - r)
        }
        return (pools, kernels, patch, divisor)
    }

    /// Widths of `levels` levels and the bottleneck: 32, 64, ... up to 320.
    static func widths(levels: Int) -> (widths: [Int], bottleneck: Int) {
        let all = (0...levels).map { min(widestWidth, baseWidth << $0) }
        return (Array(all.dropLast()), all[levels])
    }

    /// The recipe for `f` at `spacing` (nil: `targetSpacing`), fitted to `budgetBytes`.
    public static func plan(_ f: DatasetFingerprint, spacing given: [Double]? = nil, budgetBytes: Int, stepBytes: StepBytes) -> VolumeRecipe {
        let spacing = given ?? targetSpacing(f)
        let shapes = f.cases.map { resampledShape($0.cropped, spacing: $0.spacing, target: spacing) }
        let median = (0..<3).map { a in DatasetFingerprint.median(shapes.map { Double($0[a]) }) }
        let aspect = spacing.map { 1 / $0 }
        let scale = pow(initialVoxels / aspect.reduce(1, *), 1.0 / 3)
        let initial = (0..<3).map { min((aspect[$0] * scale).rounded(.toNearestOrEven), median[$0]) }
        var t = topology(spacing: spacing, size: initial)
        func bytes(_ batch: Int) -> Int {
            let w = widths(levels: t.pools.count)
            return stepBytes(t.patch, VolumeLevels(kernels: t.kernels, pools: t.pools), w.widths, w.bottleneck, batch)
        }
        // Too large at the smallest batch: shrink the axis largest against the median case by
        // one down-sampling step (the step of the patch one smaller, so no valid size is skipped).
        while bytes(smallestBatch) > budgetBytes {
            let ratios = (0..<3).map { Double(t.patch[$0]) / median[$0] }
            guard let axis = (0..<3).last(where: { ratios[$0] == ratios.max() }) else { break }
            var smaller = t.patch.map(Double.init)
            smaller[axis] -= Double(t.divisor[axis])
            let step = topology(spacing: spacing, size: smaller).divisor[axis]
            var next = t.patch.map(Double.init)
            next[axis] -= Double(step)
            if next[axis] < Double(smallestMapSide) { break }
            t = topology(spacing: spacing, size: next)
        }
        // The batch: as many as the budget holds, at most 5% of the dataset's voxels, at least 2.
        let voxels = median.reduce(1, *) * Double(f.cases.count)
        let share = Int((voxels * datasetShare / Double(t.patch.reduce(1, *))).rounded(.toNearestOrEven))
        var fits = smallestBatch - 1
        while fits <= max(share, smallestBatch), bytes(fits + 1) <= budgetBytes { fits += 1 }
        let batch = max(min(fits, share), smallestBatch)
        let reason = min(fits, share) < smallestBatch ? "the smallest batch"
            : fits <= share ? "what the memory budget holds" : "5% of the dataset's voxels"
        let w = widths(levels: t.pools.count)
        return VolumeRecipe(spacing: spacing, medianShape: median, patch: t.patch, levels: VolumeLevels(kernels: t.kernels, pools: t.pools),
                            widths: w.widths, bottleneck: w.bottleneck, batch: batch, stepBytes: bytes(batch), budgetBytes: budgetBytes,
                            batchReason: reason)
    }
}

extension VolumeRecipe {
    /// nnU-Net's network: two convolutions per block with instance norm, transposed convolutions
    /// up, one segmentation head of `classes` channels (background included).
    public static func nnUNetTemplate(inChannels: Int, classes: Int) -> UNetArchitecture {
        UNetArchitecture(inChannels: inChannels, widths: [baseWidth], bottleneck: baseWidth, convsPerBlock: 2, norm: .instance, groups: 8,
                         upsampling: .transpose, heads: [Head(name: Head.segmentation, channels: classes)], sharedDecoder: true)
    }

    /// nnU-Net trains with SGD and Nesterov momentum: one state slot per weight.
    public static let nnUNetOptimizerSlots = 1

    /// Training-step bytes of U-Nets built like `template` (its input channels, blocks, norm,
    /// up-sampling and heads) with a recipe's levels and widths, by the plan's memory model.
    public static func stepBytes(like template: UNetArchitecture, optimizerSlots: Int) -> StepBytes {
        { patch, levels, widths, bottleneck, batch in
            var u = template
            (u.widths, u.bottleneck, u.volume) = (widths, bottleneck, levels)
            return CostModel.trainingPeakBytes(.unet(u), volume: patch, batch: batch, optimizerSlots: optimizerSlots) ?? Int.max
        }
    }

    /// The recipe as lines: what a reader needs to see what will run.
    public var lines: [String] {
        func list(_ v: [Int]) -> String { "[" + v.map(String.init).joined(separator: ", ") + "]" }
        let mm = "[" + spacing.map { String(format: "%.4g", $0) }.joined(separator: ", ") + "]"
        let median = "[" + medianShape.map { String(format: "%g", $0) }.joined(separator: ", ") + "]"
        return [
            "spacing \(mm) mm; median case \(median) voxels at that spacing",
            "patch \(list(patch)), \(levels.pools.count) poolings: \(levels.pools.map(list).joined(separator: " "))",
            "kernels \(levels.kernels.map(list).joined(separator: " "))",
            "widths \(list(widths)), bottleneck \(bottleneck)",
            "batch \(batch) (\(batchReason)): a training step of \(Format.bytes(stepBytes)) against a budget of \(Format.bytes(budgetBytes))",
        ]
    }
}
