import Foundation
import Statistics
import Testing

/// Holm's correction, against hand-computed values (the run-level tests are in RunComparisonTests).
@Suite struct StatisticsTests {
    @Test func holmAdjustsStepDownAndStaysMonotone() {
        let adjusted = holmAdjusted([0.01, 0.04, 0.03, 0.2])
        let expected = [0.04, 0.09, 0.09, 0.2]  // 4 x 0.01; 3 x 0.03; max(2 x 0.04, 0.09); 0.2
        #expect(zip(adjusted, expected).allSatisfy { abs($0 - $1) < 1e-12 }, "\(adjusted)")
        #expect(holmAdjusted([0.5, 0.6]) == [1, 1])
        #expect(holmAdjusted([]) == [])
    }
}
