import Plan
import Testing

/// The plan on several machines, one stage per machine at a time: bounded below by the
/// critical path and above by one machine, and the path a chain of dependent stages.
@Suite struct ClusterScheduleTests {
    @Test func wallTimeLiesBetweenTheCriticalPathAndOneMachine() throws {
        let plan = try PlanSupport.plan("specs/phantom-study.yaml")
        let one = ClusterSchedule(plan, nodes: 1), eight = ClusterSchedule(plan, nodes: 8), many = ClusterSchedule(plan, nodes: plan.stages.count)
        #expect(abs(one.makespan - one.serialSeconds) < 1e-6)
        #expect(eight.makespan < one.makespan && eight.makespan >= eight.criticalSeconds - 1e-6)
        #expect(abs(many.makespan - many.criticalSeconds) < 1e-6)
        // Each stage of the critical path needs the one before it.
        for (a, b) in zip(one.criticalPath, one.criticalPath.dropFirst()) { #expect(b.inputs.values.contains(a.hash)) }
        #expect(abs(one.criticalPath.reduce(0) { $0 + $1.cost.seconds } - one.criticalSeconds) < 1e-6)
        // The phantom study's longest stage is a teacher.
        #expect(one.dominant?.label.hasPrefix("train teacher") == true)
    }
}
