import Benchmark
import Plan
import StageConfig
import Testing

/// `distill bench` times the study's networks and its T1 -> S1 objective; they are
/// written in the benchmark as values, so this test holds them to specs/thesis/study.yaml.
@Suite struct BenchmarkNetworksTests {
    func training(_ plan: ExecutionPlan, _ name: String) throws -> TrainingConfiguration {
        let stage = try #require(plan.stages.first { ($0.kind == .train || $0.kind == .distill) && plan.specName(of: $0.hash) == name }, "no stage \(name)")
        guard case .train(let c) = stage.config else { throw Unexpected.config(name) }
        return c
    }

    enum Unexpected: Error { case config(String) }

    @Test func theBenchmarkTimesTheStudysNetworksAndObjective() throws {
        let plan = try PlanSupport.plan("specs/thesis/study.yaml")
        #expect(try training(plan, "teacher_t1").model == RuntimeBenchmark.t1)
        #expect(try training(plan, "baseline_s1").model == RuntimeBenchmark.s1)
        #expect(try training(plan, "baseline_s2").model == RuntimeBenchmark.s2)
        let kd = try training(plan, "kd_t1_s1")
        #expect(kd.model == RuntimeBenchmark.s1)
        #expect(kd.loss == RuntimeBenchmark.kdTerms.supervised)
        #expect(kd.distill == RuntimeBenchmark.kdTerms.distillation)
    }

    /// `distill bench --conv` lists every convolution of a network, over planes or volumes, with how
    /// often the forward pass runs it: S3D at 16^3 has four 3x3x3 layers and its 1x1x1 head, each once.
    @Test func theConvolutionBenchmarkListsAVolumeNetworksLayers() {
        let layers = ConvolutionBenchmark.geometries(RuntimeBenchmark.s3d, batch: 1, size: 16)
        let shapes = layers.map { $0.0.description }
        #expect(shapes == ["1 1>16 16x16x16 3x3x3", "1 16>32 8x8x8 3x3x3", "1 32>64 4x4x4 3x3x3", "1 64>32 8x8x8 3x3x3",
                           "1 32>16 16x16x16 3x3x3", "1 16>1 16x16x16 1x1x1"])
        #expect(layers.allSatisfy { $0.1 == 1 })
        let s2 = ConvolutionBenchmark.geometries(RuntimeBenchmark.s2, batch: 1, size: 32).map { $0.0.description }
        #expect(s2.first == "1 3>32 32x32 3x3" && s2.allSatisfy { !$0.contains("x3x3 ") })
    }
}
