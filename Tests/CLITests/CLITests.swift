import Foundation
import Spec
import Testing

/// End-to-end: the built `distill` binary, its output and exit codes.
@Suite struct CLITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var binary: String {
        // The test bundle sits beside the products on Linux.
        let products = Bundle.main.bundleURL
        let candidate = products.appendingPathComponent("distill").path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        return (repository as NSString).appendingPathComponent(".build/debug/distill")
    }

    func run(_ arguments: [String], in directory: String = repository,
             environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        // Plans with the documented rate unless a test names a calibration: output that does not depend on the machine.
        p.environment = ProcessInfo.processInfo.environment.merging(["DISTILL_CALIBRATION": "off"].merging(environment) { _, new in new }) { _, new in new }
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func checkSpecsPasses() throws {
        let r = try run(["check", "specs"])
        #expect(r.status == 0, "\(r.out)")
        #expect(r.out.hasSuffix("0 errors, 5 warnings in 4 files\n") || r.out.contains("0 errors"))
    }

    /// The plan says what the report's comparisons can detect, from the spec's variance
    /// components, and which design would reach its min_effect and margin; a spec without
    /// components says how to get them; --from-store without finished comparisons says so and plans from the spec's.
    @Test func thePlanStatesThePowerOfItsComparisons() throws {
        let r = try run(["plan", "specs/phantom-study.yaml"])
        #expect(r.status == 0, "\(r.err)")
        let power = try #require(r.out.range(of: "\npower, before running: 4 comparisons").map { String(r.out[$0.lowerBound...]) }, "\(r.out.suffix(2000))")
        #expect(power.contains("each claim tested at 0.00625 (0.05 over 8 claims") && power.contains("from the spec's report.variance"))
        #expect(power.contains("kd_t1_s1 - baseline_s1            3 teacher runs x 5 seeds x 12 test cases"))
        #expect(power.contains("cheapest design that detects 0.03 and shows equivalence within +-0.03"), "\(power)")
        let quick = try run(["plan", "specs/quickstart.yaml"])
        #expect(quick.out.contains("power: set report.variance, or plan with --from-store"), "\(quick.out.suffix(600))")
        let empty = NSTemporaryDirectory() + "distill-power-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty + "/stages", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let none = try run(["plan", "specs/phantom-study.yaml", "--from-store", "--store", empty])
        #expect(none.status == 0 && none.out.contains("holds no finished comparison of this spec with two or more seeds per arm to take variance components from; from the spec's report.variance instead"), "\(none.out)")
        #expect(none.out.contains("power, before running: 4 comparisons"))
    }

    /// Every command that computes takes `--threads` from one option group: one bound, one message.
    @Test(arguments: [
        ["run", "specs/quickstart.yaml"], ["sweep", "specs/quickstart.yaml"], ["parity", "Tests"], ["bench"], ["calibrate", "--dry-run"],
        ["evaluate", "x.safetensors", "--spec", "specs/quickstart.yaml", "--stage", "teacher"],
        ["predict", "teacher", "in", "--spec", "specs/quickstart.yaml", "-o", "out"],
    ])
    func everyCommandBoundsThreadsAlike(_ command: [String]) throws {
        for (value, shown) in [("0", "0"), ("1025", "1025")] {
            let r = try run(command + ["--threads", value])
            #expect(r.status == 2 && r.err.contains("--threads must be between 1 and 1024, not \(shown)"), "\(command): \(r.status) \(r.err)")
        }
    }

    @Test func invalidSpecExitsOneWithLocatedErrors() throws {
        let fixtures = (Self.repository as NSString).appendingPathComponent("Tests/SpecTests/Fixtures")
        let r = try run(["check", "errors/E0203-unknown-tap.yaml"], in: fixtures)
        #expect(r.status == 1)
        #expect(r.out.hasPrefix("errors/E0203-unknown-tap.yaml:6:40: error[E0203]: unknown tap 'encoder.5' of student model 'small'\n"))
        #expect(r.out.contains("     | " + String(repeating: " ", count: 39) + "^~~~~~~~~\n"))
    }

    @Test func missingFileIsAnIOError() throws {
        let r = try run(["check", "no/such/spec.yaml"])
        #expect(r.status == 2)
        #expect(r.err.contains("no such file or directory: 'no/such/spec.yaml'"))
    }

    /// `plan --nodes`: the critical path and the wall time on a cluster (the teacher data-parallel), for the text format only.
    @Test func planOnNodesShowsTheCriticalPath() throws {
        let r = try run(["plan", "specs/thesis/study.yaml", "--nodes", "8"])
        #expect(r.status == 0 && r.out.contains("critical path (") && r.out.contains("on 8 nodes: ~"))
        #expect(r.out.contains("dominated by ") && r.out.contains("train teacher_t1") && r.out.contains("data-parallel on 8 nodes"), "\(r.out)")
        #expect(r.out.contains("interconnect: "))
        #expect(try run(["plan", "specs/thesis/study.yaml", "--cores-per-node", "8"]).status == 2)
        // The same schedule as data: the plan's JSON with a "cluster" object.
        let json = try run(["plan", "specs/thesis/study.yaml", "--nodes", "8", "--format", "json"])
        #expect(json.status == 0, "\(json.err)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        let cluster = try #require(object["cluster"] as? [String: Any])
        #expect(cluster["nodes"] as? Int == 8 && (cluster["wall_seconds"] as? Double ?? 0) > 0)
        let placements = try #require(cluster["placements"] as? [String: [String: Any]])
        #expect(placements.values.contains { $0["ranks"] as? Int == 8 }, "T1 on 8 nodes")
        let dot = try run(["plan", "specs/thesis/study.yaml", "--nodes", "8", "--format", "dot"])
        #expect(dot.status == 2 && dot.err.contains("--nodes goes with the text and json formats"))
        #expect(try run(["plan", "specs/thesis/study.yaml", "--nodes", "0"]).status == 2)
    }

    @Test func badFlagIsAUsageError() throws {
        let r = try run(["check", "--format", "xml", "specs"])
        #expect(r.status == 2)
        #expect(r.err.contains("xml"))
    }

    @Test func jsonOutputIsParseable() throws {
        let fixtures = (Self.repository as NSString).appendingPathComponent("Tests/SpecTests/Fixtures")
        let r = try run(["check", "--format", "json", "errors/E0301-unknown-model.yaml"], in: fixtures)
        #expect(r.status == 1)
        let doc = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let first = (doc?["diagnostics"] as? [[String: Any]])?.first
        #expect(first?["id"] as? String == "E0301")
        #expect(first?["path"] as? String == "stages.student.model")
        #expect(first?["line"] as? Int == 3)
    }

    @Test func schemaCommandPrintsTheCommittedSchema() throws {
        let r = try run(["schema"])
        #expect(r.status == 0)
        let committed = try String(contentsOfFile: (Self.repository as NSString).appendingPathComponent("grammar/distill.schema.json"), encoding: .utf8)
        #expect(r.out == committed)
    }
}

@Suite struct PlanCLITests {
    let cli = CLITests()

    @Test func planPrintsTheDAGAndItsBill() throws {
        let r = try cli.run(["plan", "specs/quickstart.yaml"], environment: ["DISTILL_CALIBRATION": "off"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix("plan for specs/quickstart.yaml: 2 variants, 18 stage instances, 11 unique stages\n"))
        #expect(r.out.contains("throughput: default 25 GFLOP/s"))
        #expect(r.out.contains("\ntotal: "))
    }

    /// Without a kept calibration, the plan measures this machine, says so, and keeps the rate.
    @Test func planMeasuresTheMachineWhenNoCalibrationIsKept() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("distill-cal-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let first = try cli.run(["plan", "specs/quickstart.yaml"], environment: ["DISTILL_CALIBRATION": file])
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out.contains("throughput: measured now (no calibration was kept; kept in \(file)"), "\(first.out)")
        #expect(FileManager.default.fileExists(atPath: file))
        let second = try cli.run(["plan", "specs/quickstart.yaml"], environment: ["DISTILL_CALIBRATION": file])
        #expect(second.out.contains("throughput: calibrated "), "\(second.out)")
    }

    /// A calibration kept for another CPU model or BLAS kernel is not this machine's: the plan
    /// measures anew, names the machines the file keeps, and keeps both entries.
    @Test func aCalibrationOfAnotherMachineIsNotUsed() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("distill-cal-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let threads = ProcessInfo.processInfo.activeProcessorCount
        let other = "GenuineIntel family 6 model 207 Intel(R) Xeon(R) | SSE4.2 AVX FMA F16C AVX2 AVX512F | OpenBLAS 0.3.21 Prescott"
        let kept = """
            {"machines": {"\(other)": {"sgemm_gflops": 89, "threads": \(threads), "measured": "2026-12-01T00:00:00Z"}}}
            """
        try kept.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try cli.run(["plan", "specs/quickstart.yaml"], environment: ["DISTILL_CALIBRATION": file])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("throughput: measured now (no calibration was kept for this machine at \(threads) threads; kept for: \(other);"),
                "\(r.out)")
        #expect(!r.out.contains("sgemm 89 GFLOP/s"))
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        let machines = try #require(doc?["machines"] as? [String: Any])
        #expect(machines.count == 2 && machines[other] != nil)
        let machine = try #require(machines.keys.first { $0 != other })
        #expect(machine.contains(" | ") && machine.contains("OpenBLAS"), "\(machine)")
    }

    /// A core type set in the environment is respected and named.
    @Test func aBLASCoreSetInTheEnvironmentIsRespected() throws {
        let r = try cli.run(["bench", "--machine"], environment: ["OPENBLAS_CORETYPE": "Sandybridge"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("BLAS: OpenBLAS ") && r.out.contains("core Sandybridge (set by OPENBLAS_CORETYPE)"), "\(r.out)")
    }

    @Test func planRefusesASpecWithErrors() throws {
        let fixtures = (CLITests.repository as NSString).appendingPathComponent("Tests/SpecTests/Fixtures")
        let r = try cli.run(["plan", "errors/E0301-unknown-model.yaml"], in: fixtures)
        #expect(r.status == 1)
        #expect(r.out.contains("error[E0301]"))
        #expect(!r.out.contains("plan for"))
    }

    @Test func unknownVariantIsAUsageErrorWithASuggestion() throws {
        let r = try cli.run(["plan", "specs/quickstart.yaml", "--variant", "scales=logit"])
        #expect(r.status == 2)
        #expect(r.err.contains("no variant 'scales=logit'"))
        #expect(r.err.contains("did you mean 'scales=logits'?"))
    }

    @Test func jsonAndDotFormats() throws {
        let json = try cli.run(["plan", "specs/quickstart.yaml", "--format", "json"])
        #expect(json.status == 0)
        let doc = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect(doc?["format"] as? String == "distillery-plan")
        #expect((doc?["stages"] as? [Any])?.count == 11)
        let dot = try cli.run(["plan", "specs/quickstart.yaml", "--format", "dot", "--variant", "scales=logits"])
        #expect(dot.status == 0)
        #expect(dot.out.hasPrefix("digraph plan {"))
        #expect(dot.out.contains("fillcolor=\"#a1d99b\""))
    }

    @Test func lockWritesOneResolvedSpecPerVariantThatChecksClean() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try cli.run(["plan", "specs/quickstart.yaml", "--lock", dir])
        #expect(r.status == 0, "\(r.err)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == ["scales=logits.yaml", "scales=multiscale.yaml"])
        let locked = try String(contentsOfFile: dir + "/scales=logits.yaml", encoding: .utf8)
        #expect(locked.contains("\"in_channels\":1"))
        let check = try cli.run(["check", dir])
        #expect(check.status == 0, "\(check.out)")
    }

    @Test func calibrateMeasuresAndStores() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("distill-cal-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try cli.run(["calibrate"], environment: ["DISTILL_CALIBRATION": file])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("sgemm (median of shapes): "))
        #expect(r.out.hasPrefix("CPU: ") && r.out.contains("\nISA: ") && r.out.contains("\nBLAS: "), "\(r.out)")
        let plan = try cli.run(["plan", "specs/quickstart.yaml"], environment: ["DISTILL_CALIBRATION": file])
        #expect(plan.out.contains("throughput: calibrated "))
        let bad = try cli.run(["calibrate", "--threads", "0"])
        #expect(bad.status != 0)
    }
}
