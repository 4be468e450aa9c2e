@testable import Runtime
import Architecture
import Medical
import Plan
import StageConfig
import Tensor
import Testing

/// Class maps and per-class counts: what every reported Dice is computed from.
@Suite struct MetricsTests {
    /// A 1-channel head is thresholded (class 1 or background); a wider head takes the
    /// arg-max over its channels, background included.
    @Test func classMapsThresholdSigmoidHeadsAndArgMaxSoftmaxHeads() {
        let sigmoid = Tensor(shape: [1, 1, 1, 4], values: [-2, 0.5, 3, -0.1])
        #expect(Metrics.classMap(sigmoid, image: 0, threshold: 0.5, onLogit: false) == [0, 1, 1, 0])
        #expect(Metrics.classMap(sigmoid, image: 0, threshold: 0.4, onLogit: true) == [0, 1, 1, 0])
        // Two images, 3 channels, 2 pixels each: channel values per pixel.
        let softmax = Tensor(shape: [2, 3, 1, 2], values: [
            5, 0, /* c1 */ 1, 2, /* c2 */ 0, 3,
            0, 1, /* c1 */ 2, 1, /* c2 */ 2, 0,
        ])
        #expect(Metrics.classMap(softmax, image: 0, threshold: 0.5, onLogit: false) == [0, 2])
        // A tie keeps the lower class (as argmax does).
        #expect(Metrics.classMap(softmax, image: 1, threshold: 0.5, onLogit: false) == [1, 0])
    }

    /// Per class, as one-vs-rest counts (what sklearn's confusion matrix gives per class).
    @Test func countsArePerClassOneVsRest() {
        let pred: [UInt8] = [0, 1, 1, 2, 2, 0, 3, 1]
        let truth: [UInt8] = [0, 1, 2, 2, 0, 1, 3, 3]
        let c = Metrics.counts(pred, truth, classes: 3)
        #expect(c.count == 3)
        // class 1: predicted at 1, 2, 7; true at 1, 5.
        #expect((c[0].tp, c[0].fp, c[0].fn) == (1, 2, 1))
        // class 2: predicted at 3, 4; true at 2, 3.
        #expect((c[1].tp, c[1].fp, c[1].fn) == (1, 1, 1))
        // class 3: predicted at 6; true at 6, 7.
        #expect((c[2].tp, c[2].fp, c[2].fn) == (1, 0, 1))
        #expect(abs((c[0].dice ?? .nan) - 0.4) < 1e-12 && abs((c[1].dice ?? .nan) - 0.5) < 1e-12 && abs((c[2].dice ?? .nan) - 2.0 / 3) < 1e-12)
        // Binary maps give the old foreground counts.
        let b = Metrics.counts([1, 1, 0, 0], [1, 0, 1, 0], classes: 1)
        #expect((b[0].tp, b[0].fp, b[0].fn) == (1, 1, 1))
    }

    /// nnU-Net's conventions: a ratio with an empty denominator is undefined, never 1.
    @Test func undefinedIsNotPerfect() {
        let nothingPredicted = Metrics.counts([0, 0, 0], [1, 1, 0], classes: 1)[0]
        #expect(nothingPredicted.precision == nil && nothingPredicted.recall == 0 && nothingPredicted.dice == 0)
        let bothEmpty = Metrics.counts([0, 0], [0, 0], classes: 1)[0]
        #expect(bothEmpty.dice == nil && bothEmpty.iou == nil && bothEmpty.precision == nil && bothEmpty.recall == nil)
        let noTruth = Metrics.counts([1, 0], [0, 0], classes: 1)[0]
        #expect(noTruth.dice == 0 && noTruth.recall == nil && noTruth.precision == 0)
    }
}

/// A test label with no foreground decides its case's Dice whatever the model does: metrics.json
/// names such cases, and the stage and the report say what that does to the scores.
@Suite struct EmptyTestLabelTests {
    static let settings = EvaluateConfiguration(metrics: [.dice], pooling: .global, threshold: 0.5, thresholdOn: .probability,
                                                nsdTolerance: .uniform(1), hd95: .monai)

    @Test func emptyLabelsAreNamedAndWarnedAbout() {
        let rows: [(id: String, perClass: [ClassComparison])] = [
            ("case_1", [ClassComparison(tp: 90, fp: 5, fn: 10), ClassComparison(tp: 4, fp: 0, fn: 1)]),
            // Only false positives: the label is empty in every class.
            ("case_2", [ClassComparison(tp: 0, fp: 30, fn: 0), ClassComparison(tp: 0, fp: 0, fn: 0)]),
            // Empty in one class only: not an empty label.
            ("case_3", [ClassComparison(tp: 0, fp: 3, fn: 0), ClassComparison(tp: 2, fp: 0, fn: 0)]),
        ]
        let metrics = Evaluation.report(rows, names: ["liver", "spleen"], tolerance: [1, 1], voxels: 100, slices: 3, parameters: 1, settings: Self.settings)
        #expect(metrics["empty_labels"] == .array([.string("case_2")]))
        let warning = Evaluation.emptyLabelWarning(metrics)
        #expect(warning?.hasPrefix("test case case_2 has no foreground in its label") == true)
        let clean = Evaluation.report(Array(rows.prefix(1)), names: ["liver", "spleen"], tolerance: [1, 1], voxels: 100, slices: 1, parameters: 1, settings: Self.settings)
        #expect(clean["empty_labels"] == .array([]) && Evaluation.emptyLabelWarning(clean) == nil)
    }
}

/// `distill predict` compares the intensities a model labels foreground with the training
/// foreground's: a CT model given an MR-like image is said to be outside what it saw.
@Suite struct IntensityComparisonTests {
    /// Training foreground of a CT organ: 0.5-99.5 percentiles [20, 180], mean 100.
    static let training = Prediction.TrainingData(declaredModalities: ["CT"], statistics: [IntensityStatistics(low: 20, high: 180, mean: 100, sd: 30)], spacing: nil)

    static func compare(_ image: [Float], _ labels: [Float], normalize: [StageConfig.Normalization] = [.window]) -> (compared: [IntensityComparison], uncompared: String?) {
        IntensityComparison.compare([Volume(dims: [image.count, 1, 1], spacing: [1, 1, 1], data: image, datatype: "FLOAT32")],
                                    labels: Volume(dims: [labels.count, 1, 1], spacing: [1, 1, 1], data: labels, datatype: "UINT8"),
                                    training: training, normalize: normalize, names: ["CT"])
    }

    @Test func aLikeImageIsQuietAndAnUnlikeOneIsSaid() throws {
        // Air around an organ of soft tissue; the organ labelled: every labelled voxel in range.
        let ct: [Float] = [-1000, -1000, 40, 90, 120, 150, -1000, 60]
        let labels: [Float] = [0, 0, 1, 1, 1, 1, 0, 1]
        let like = try #require(Self.compare(ct, labels).compared.first)
        #expect(like.voxels == 5 && like.outside == 0 && !like.unlike && like.median == 90)
        #expect(like.percentiles == [0.5, 99.5] && abs(like.expectedOutside - 0.01) < 1e-12)
        // An MR-like image (positive, in the thousands) labelled almost everywhere.
        let mr: [Float] = [300, 900, 1400, 1800, 2100, 60, 2500, 3000]
        let unlike = try #require(Self.compare(mr, [1, 1, 1, 1, 1, 1, 1, 0]).compared.first)
        #expect(unlike.unlike && abs((unlike.outside ?? 0) - 6.0 / 7.0) < 1e-12)
        #expect(unlike.description.contains("86% of the 7 voxels labelled foreground lie outside") && unlike.description.contains("not the training data's"))
        #expect(unlike.json["unlike_training"] == .bool(true))
        // Nothing labelled: nothing to compare, and said so.
        let none = try #require(Self.compare(mr, [Float](repeating: 0, count: 8)).compared.first)
        #expect(none.outside == nil && !none.unlike && none.description.contains("not compared"))
        // The percentiles of a percentile normalisation are the range's.
        #expect(Self.compare(ct, labels, normalize: [.percentile(low: 1, high: 99)]).compared.first?.percentiles == [1, 99])
    }

    @Test func dataPreparedWithoutStatisticsIsSaidToBeUncompared() {
        let old = Prediction.TrainingData(declaredModalities: ["CT"], statistics: [nil], spacing: nil)
        let result = IntensityComparison.compare([Volume(dims: [2, 1, 1], spacing: [1, 1, 1], data: [1, 2], datatype: "FLOAT32")],
                                                 labels: Volume(dims: [2, 1, 1], spacing: [1, 1, 1], data: [1, 1], datatype: "UINT8"),
                                                 training: old, normalize: [.window], names: ["CT"])
        #expect(result.compared.isEmpty && result.uncompared?.contains("no intensity statistics for CT") == true)
    }
}

/// The plan's measured work is timed through the code stages run: a forward pass, a training
/// step, and a distilled step with a live teacher, each a positive, finite time.
@Suite struct StepTimerTests {
    @Test func stepsAreTimedThroughTheStagesCode() throws {
        let net = ModelArchitecture.unet(UNetArchitecture(inChannels: 1, widths: [4, 8], bottleneck: 8, convsPerBlock: 1, norm: .batch, groups: 1,
                                                          upsampling: .transpose, heads: [Head(name: "segmentation", channels: 1)], sharedDecoder: false))
        let forward = MeasuredWork.forward("tiny", net, extent: [16, 16], classes: 1, batch: 2)
        let train = MeasuredWork(kind: .train, name: "tiny", model: net, extent: [16, 16], classes: 1, batch: 2,
                                 loss: [SupervisedTerm(head: "segmentation", weight: 1, loss: .dice(smooth: 1))],
                                 optimizer: OptimizerSettings(lr: 0.01, algorithm: .sgd(momentum: 0, dampening: 0, nesterov: false, weightDecay: 0)))
        var distilled = train
        distilled.distill = DistillationTerms(pairs: [], logits: LogitTerm(head: "segmentation", temperature: 4, weight: 0.5, loss: .binaryKL), supcon: nil)
        distilled.teacher = net
        distilled.teacherLive = true
        for work in [forward, train, distilled] {
            let seconds = try StepTimer.seconds(work)
            #expect(seconds > 0 && seconds.isFinite && seconds < 30, "\(work.description): \(seconds)")
        }
        #expect(Set([forward.key, train.key, distilled.key]).count == 3)
    }
}
