@testable import Runtime
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
