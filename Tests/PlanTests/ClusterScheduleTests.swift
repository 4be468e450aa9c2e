import Plan
import Testing

/// The plan on several machines: bounded below by the critical path and above by one
/// machine, the path a chain of dependent stages, and training stages data-parallel
/// over as many nodes as pay for their allreduces, never more than their batch.
@Suite struct ClusterScheduleTests {
    @Test func wallTimeLiesBetweenTheCriticalPathAndOneMachine() throws {
        let plan = try PlanSupport.plan("specs/phantom-study.yaml")
        // A network too slow to be worth an allreduce: one stage per node, as before data parallelism.
        let slow = Interconnect(bytesPerSecond: 1, latency: 1, source: "test")
        let one = ClusterSchedule(plan, nodes: 1, interconnect: slow), eight = ClusterSchedule(plan, nodes: 8, interconnect: slow)
        let many = ClusterSchedule(plan, nodes: plan.stages.count, interconnect: slow)
        #expect(abs(one.makespan - one.serialSeconds) < 1e-6)
        #expect(eight.makespan < one.makespan && eight.makespan >= eight.criticalSeconds - 1e-6)
        #expect(abs(many.makespan - many.criticalSeconds) < 1e-6)
        // Each stage of the critical path needs the one before it.
        for (a, b) in zip(one.criticalPath, one.criticalPath.dropFirst()) { #expect(b.inputs.values.contains(a.hash)) }
        #expect(abs(one.criticalPath.reduce(0) { $0 + $1.cost.seconds } - one.criticalSeconds) < 1e-6)
        // The phantom study's longest stage is a teacher.
        #expect(one.dominant?.label.hasPrefix("train teacher") == true)
    }

    @Test func trainingStagesSplitOverNodesUpToTheirBatch() throws {
        let plan = try PlanSupport.plan("specs/thesis/study.yaml")
        let one = ClusterSchedule(plan, nodes: 1), eight = ClusterSchedule(plan, nodes: 8), many = ClusterSchedule(plan, nodes: 32)
        let teacher = try #require(one.dominant)
        guard case .train(let c) = teacher.config else { Issue.record("the dominant stage is not a training stage"); return }
        #expect(one.placements[teacher.hash]?.ranks == 1)
        let p8 = try #require(eight.placements[teacher.hash]), p32 = try #require(many.placements[teacher.hash])
        #expect(p8.ranks == 8 && p32.ranks == c.batch, "the batch of \(c.batch) bounds the ranks")
        // Compute splits; the allreduces of 4 x 43M bytes every step are paid on top.
        #expect(abs(p8.compute - teacher.cost.seconds / 8) < 1e-6 * teacher.cost.seconds)
        let perStep = Interconnect.fallback.allreduce(bytes: 4 * teacher.cost.parameters, ranks: 8)
        #expect(abs(p8.communication - Double(teacher.cost.steps) * perStep) < 1e-6 * p8.communication)
        #expect(eight.makespan < one.criticalSeconds && many.makespan <= eight.makespan && many.makespan >= many.criticalSeconds - 1e-6)
        // Twice the cores a node: half the compute.
        let wide = ClusterSchedule(plan, nodes: 1, coresPerNode: 4, calibratedCores: 2)
        #expect(abs(wide.serialSeconds - one.serialSeconds / 2) < 1e-6 * one.serialSeconds)
        #expect(many.text.contains("its batch of \(c.batch) allows no more ranks"), "\(many.text)")
    }
}
