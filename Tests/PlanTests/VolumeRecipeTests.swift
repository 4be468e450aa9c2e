import Architecture
import Foundation
@testable import Plan
import Spec
import StageConfig
import Testing

/// nnU-Net's planning rules as `auto` computes them, on fingerprints made by hand. The
/// expected values are nnunetv2 2.8.1's for the same inputs (its get_pool_and_conv_props
/// and ExperimentPlanner); CLITests/NNUNetPlanTests runs nnU-Net itself on real folders.
@Suite struct VolumeRecipeTests {
    static func fingerprint(_ cases: [(spacing: [Double], shape: [Int])]) -> DatasetFingerprint {
        DatasetFingerprint(identity: "test", axis: .axial, modalities: ["CT"],
                           cases: cases.enumerated().map { DatasetFingerprint.Case(id: "c\($0.offset)", spacing: $0.element.spacing, shape: $0.element.shape, cropped: $0.element.shape) },
                           intensities: [], labelVoxels: [:])
    }

    @Test func topologyPoolsTheAxesWithinAFactorTwoOfTheFinestSpacing() {
        // Colin27 at 4 x 3 x 3 mm (nnU-Net: strides 1, 2,2,2 x3, 1,2,2; all kernels 3; patch 48 x 80 x 64).
        let iso = VolumeRecipe.topology(spacing: [4, 3, 3], size: [44, 72, 60])
        #expect(iso.pools == [[2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]])
        #expect(iso.kernels == Array(repeating: [3, 3, 3], count: 5))
        #expect(iso.patch == [48, 80, 64])
        // Thick slices, 2.5 x 0.75 x 0.75 mm: in-plane first, kernels flat until the depth catches up.
        let thick = VolumeRecipe.topology(spacing: [2.5, 0.75, 0.75], size: [40, 224, 224])
        #expect(thick.pools == [[1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]])
        #expect(thick.kernels == [[1, 3, 3]] + Array(repeating: [3, 3, 3], count: 5))
        #expect(thick.patch == [40, 224, 224])
        #expect(thick.divisor == [8, 32, 32])
    }

    @Test func anisotropicDataTakesTheTenthPercentileOfItsCoarseAxis() {
        let z = [4.0, 4.5, 5.0, 5.0, 5.0, 5.5, 6.0, 3.5]
        let thick = Self.fingerprint(z.map { ([$0, 0.8, 0.8], [Int((90 / $0).rounded()), 88, 96]) })
        // numpy: percentile([3.5, 4, 4.5, 5, 5, 5, 5.5, 6], 10) = 3.5 + 0.7 * 0.5.
        #expect(abs(VolumeRecipe.targetSpacing(thick)[0] - 3.85) < 1e-12)
        #expect(VolumeRecipe.targetSpacing(thick)[1...] == [0.8, 0.8])
        // Coarse spacing but as many voxels along it: the median stays.
        let deep = Self.fingerprint(z.map { ([$0, 0.8, 0.8], [96, 96, 96]) })
        #expect(VolumeRecipe.targetSpacing(deep) == [5.0, 0.8, 0.8])
        // Never finer than the other axes.
        let mild = Self.fingerprint([0.3, 0.3, 3, 3, 3].map { ([$0, 0.9, 0.9], [20, 100, 100]) })
        #expect(abs(VolumeRecipe.targetSpacing(mild)[0] - (0.9 + 1e-5)) < 1e-12)
    }

    @Test func aPatchTooLargeForTheBudgetShrinksAlongTheAxisLargestAgainstTheMedianCase() {
        let f = Self.fingerprint(Array(repeating: ([1.0, 1.0, 1.0], [160, 200, 160]), count: 10))
        // A step costs a byte per patch voxel per sample and one per weight.
        let bytes: VolumeRecipe.StepBytes = { patch, _, widths, _, batch in
            let voxels: Int = patch.reduce(1, *)
            let weights: Int = widths.reduce(0, +)
            return voxels * batch + weights
        }
        let roomy = VolumeRecipe.plan(f, budgetBytes: 1 << 40, stepBytes: bytes)
        #expect(roomy.patch == [160, 224, 160])  // the median case, padded to the 32-fold pooling on height
        let tight = VolumeRecipe.plan(f, budgetBytes: 2 * 128 * 128 * 128, stepBytes: bytes)
        #expect(tight.stepBytes <= tight.budgetBytes)
        let voxels: Int = tight.patch.reduce(1, *)
        #expect(voxels <= 128 * 128 * 128)
        // Each axis gave way in turn, so the patch keeps about the median case's aspect.
        let ratios = (0..<3).map { Double(tight.patch[$0]) / tight.medianShape[$0] }
        #expect((ratios.max() ?? 0) / (ratios.min() ?? 1) < 1.5, "\(tight.patch)")
        let divisor = tight.levels.divisor
        #expect((0..<3).allSatisfy { tight.patch[$0] % divisor[$0] == 0 })
    }

    @Test func theBatchIsWhatTheBudgetHoldsCappedAtFivePercentOfTheDataAndAtLeastTwo() {
        let bytes: VolumeRecipe.StepBytes = { patch, _, _, _, batch in
            let voxels: Int = patch.reduce(1, *)
            return voxels * batch
        }
        let many = Self.fingerprint(Array(repeating: ([1.0, 1.0, 1.0], [64, 64, 64]), count: 1000))
        let held = VolumeRecipe.plan(many, budgetBytes: 64 * 64 * 64 * 7, stepBytes: bytes)
        #expect(held.batch == 7 && held.batchReason == "what the memory budget holds")
        let capped = VolumeRecipe.plan(Self.fingerprint(Array(repeating: ([1.0, 1.0, 1.0], [64, 64, 64]), count: 100)),
                                       budgetBytes: 64 * 64 * 64 * 50, stepBytes: bytes)
        #expect(capped.batch == 5 && capped.batchReason == "5% of the dataset's voxels")
        let few = VolumeRecipe.plan(Self.fingerprint(Array(repeating: ([1.0, 1.0, 1.0], [64, 64, 64]), count: 4)),
                                    budgetBytes: 64 * 64 * 64 * 50, stepBytes: bytes)
        #expect(few.batch == 2 && few.batchReason == "the smallest batch")
    }

    @Test func widthsDoubleFromThirtyTwoUpToThreeHundredTwenty() {
        let w = VolumeRecipe.widths(levels: 6)
        #expect(w.widths == [32, 64, 128, 256, 320, 320] && w.bottleneck == 320)
    }

    @Test func aFingerprintRoundTripsThroughItsStoredForm() throws {
        var f = Self.fingerprint([([2.5, 0.7, 0.7], [90, 512, 512])])
        f.intensities = [DatasetFingerprint.Intensities(modality: "CT", voxels: 10, mean: 1, sd: 2, min: -3, max: 4, p00_5: -2, median: 1, p99_5: 3)]
        f.labelVoxels = ["0": 100, "1": 5]
        #expect(try DatasetFingerprint.decode(f.encoded()) == f)
    }
}

/// `auto` in a spec: computed from the phantom's fingerprint, and again for a sweep
/// variant that changes a student's depth.
@Suite struct AutoRecipeSpecTests {
    static let spec = """
        data:
          source: {phantom: {cases: 4, size: 32, slices: 8}}
          background: [0, 2, 3]
          preprocess: {patch: auto, spacing: auto}
        models:
          teacher_net: {arch: unet, dims: 3, widths: [8, 16, 32], bottleneck: 64, pools: auto, kernels: auto}
          student_net: {arch: unet, dims: 3, widths: [4, 8], bottleneck: 16, pools: auto, kernels: auto}
        stages:
          teacher: {model: teacher_net, data: full, loss: [{kind: dice_bce}], optimizer: {kind: adam, lr: 0.001}, epochs: 1, batch: auto}
          student:
            model: student_net
            data: full
            loss: [{kind: dice_bce}]
            optimizer: {kind: adam, lr: 0.001}
            epochs: 1
            batch: 2
            distill:
              teacher: teacher
              taps: {ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}, loss: {kind: mse}}}
        sweep:
          axes:
            depth:
              path: models.student_net.widths
              values: {two: [4, 8], three: [4, 8, 16]}

        """

    @Test func autoValuesAreComputedForTheBaseAndForAVariantOfAnotherDepth() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-auto-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let checked = try #require(SpecChecker.checkWithData(path: dir + "/spec.yaml"))
        #expect(!checked.diagnostics.hasErrors, "\(checked.diagnostics.map(\.message))")
        #expect(checked.recipe.contains("  data.preprocess.patch = [8,32,32]"), "\(checked.recipe)")
        // The phantom's 30 mm slices against 12.5 mm pixels: the first pooling and kernel stay in the plane.
        let pools: [[Int]] = [[1, 2, 2], [2, 2, 2], [1, 2, 2]]
        for v in checked.variants {
            let spec = try #require(v.spec, "variant \(v.name)")
            guard case .unet(let teacher) = spec.model("teacher_net")?.architecture, case .unet(let student) = spec.model("student_net")?.architecture else {
                Issue.record("not U-Nets"); continue
            }
            #expect(teacher.volume?.pools == pools && teacher.volume?.kernels.first == [1, 3, 3])
            #expect(student.volume?.pools == Array(pools.prefix(student.depth)), "variant \(v.name): \(String(describing: student.volume))")
            #expect(student.volume?.kernels.count == student.depth + 1)
            #expect(spec.stage("teacher")?.batch == 2 && spec.data.preprocess.volume?.patch == [8, 32, 32])
        }
        #expect(Set(checked.variants.compactMap { v in v.spec?.model("student_net").map { m -> Int in if case .unet(let u) = m.architecture { u.depth } else { 0 } } }) == [2, 3])
    }
}
