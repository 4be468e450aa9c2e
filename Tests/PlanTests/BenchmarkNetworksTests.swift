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
}
