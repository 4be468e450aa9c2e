import Diagnostics
import Medical
import NN
import Foundation
import Plan
import Runtime
import Spec
import StageConfig
import Statistics
import Tensor
import Testing

/// Whole sweeps on a tiny phantom: stages run once, are reused, fail alone.
@Suite(.serialized) struct RuntimeTests {
    static let spec = """
        name: tiny
        data:
          source: {phantom: {cases: 6, seed: 1, size: 32, slices: 8}}
          background: [0, 2, 3]
          preprocess: {size: 32, keep_empty: 0.5}
          split: {test: 0.34, val: 0.17}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          t: {arch: multitask_unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1, heads: {segmentation: 1, reconstruction: 1}}
          s: {arch: unet, widths: [2, 4], bottleneck: 4, convs_per_block: 1}
        stages:
          teacher:
            model: t
            data: full
            loss: [{kind: dice_bce}, {kind: mse, head: reconstruction, weight: 0.2}]
            optimizer: {kind: adamw, lr: 0.01}
            epochs: 2
            batch: 4
          kd:
            model: s
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: rmsprop, lr: 0.01}
            epochs: 2
            batch: 4
            distill:
              teacher: teacher
              taps:
                ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}, loss: {kind: infonce, temperature: 0.4}, weight: 0.1}
              logits: {kind: binary_kl, temperature: 4, weight: 0.2}
        sweep:
          axes:
            t: {path: stages.kd.distill.taps.ee.loss.temperature, values: {cold: 0.1, warm: 0.4}}

        """

    static func plan(_ text: String = spec) throws -> ExecutionPlan {
        let checked = SpecChecker.check(source: SourceFile(displayPath: "tiny.yaml", text: text))
        #expect(!checked.diagnostics.hasErrors, "\(checked.diagnostics.map(\.message))")
        return Planner(specDirectory: FileManager.default.temporaryDirectory.path).plan(checked)
    }

    static func store() -> RunStore {
        RunStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("distill-store-\(UUID().uuidString)").path)
    }

    @Test func aSweepRunsEveryStageOnceThenReusesThem() throws {
        Parallel.setThreads(2)
        let plan = try Self.plan(), store = Self.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        let first = executor.run()
        #expect(first.ok, "\(first.failed.map(\.error))")
        #expect(first.done.count == plan.stages.count)
        #expect(Set(first.done).count == first.done.count)  // no stage twice
        let second = executor.run()
        #expect(second.done.isEmpty && second.reused.count == plan.stages.count)
        let rows = Report.rows(plan, store: store)
        #expect(rows.count == 3)  // the teacher once (shared), kd once per variant
        #expect(rows.contains { $0.stage == "kd" && $0.variant == "t=cold" })
        for hash in first.done { #expect(FileManager.default.fileExists(atPath: store.directory(hash) + "/done")) }
    }

    @Test func stagesRunSideBySideGiveTheSameResults() throws {
        let plan = try Self.plan()
        func metrics(jobs: Int, threads: Int) throws -> [String: String] {
            let store = Self.store()
            defer { try? FileManager.default.removeItem(atPath: store.root) }
            Parallel.setThreads(threads)
            var executor = Executor(plan: plan, store: store, baseDirectory: "/")
            executor.echo = false
            executor.jobs = jobs
            let s = executor.run()
            #expect(s.ok && s.done.count == plan.stages.count)
            var out: [String: String] = [:]
            for st in plan.stages where st.kind == .evaluate {
                out[st.hash] = try String(contentsOfFile: store.file(st.hash, "metrics.json"), encoding: .utf8)
            }
            return out
        }
        // Two jobs on two threads give each stage one thread: the same arithmetic as one job on one thread.
        #expect(try metrics(jobs: 2, threads: 2) == metrics(jobs: 1, threads: 1))
        Parallel.setThreads(2)
    }

    @Test func aFailingStageFailsOnlyItsDescendants() throws {
        let broken = Self.spec.replacingOccurrences(of: "  kd:\n    model: s\n", with: "  kd:\n    model: s\n    init: {file: /nonexistent/weights.safetensors}\n")
        let plan = try Self.plan(broken), store = Self.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        let s = executor.run()
        #expect(s.failed.count == 2)  // each variant's kd
        #expect(s.failed.allSatisfy { $0.error.contains("/nonexistent/weights.safetensors") })
        #expect(s.skipped.count == 3)  // their evaluations and the report
        let teacher = try #require(plan.stages.first { $0.label.hasPrefix("train teacher") })
        #expect(store.isDone(teacher.hash))
    }

    @Test func aHeldLockIsRespectedAndALeftoverLockFileIsNot() throws {
        let plan = try Self.plan(), store = Self.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let prepare = try #require(plan.stages.first { $0.kind == .prepare })
        try FileManager.default.createDirectory(atPath: store.directory(prepare.hash), withIntermediateDirectories: true)
        let path = store.directory(prepare.hash) + "/lock"
        // A holder of the flock (our own second open file description): the stage must not run.
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        #expect(flock(fd, LOCK_EX) == 0)
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        executor.lockWait = 0.5
        let blocked = executor.run(only: [prepare.hash])
        #expect(blocked.failed.first?.error.contains("being run by another process") == true)
        #expect(store.status(prepare.hash).name == "running")
        flock(fd, LOCK_UN)
        close(fd)
        // The file of a holder that died (its pid inside, no flock held): not a lock.
        try "999999 \(ProcessInfo.processInfo.hostName)".write(toFile: path, atomically: true, encoding: .utf8)
        let ok = executor.run(only: [prepare.hash])
        #expect(ok.done == [prepare.hash])
        #expect(store.lockHolder(prepare.hash) == nil)
        #expect(store.status(prepare.hash).name == "done")
    }

    @Test func aKilledHolderReleasesItsLock() throws {
        let plan = try Self.plan(), store = Self.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        let prepare = try #require(plan.stages.first { $0.kind == .prepare })
        try FileManager.default.createDirectory(atPath: store.directory(prepare.hash), withIntermediateDirectories: true)
        // Another process (one, with no children to inherit the lock) holds it until it is killed.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)",
                            store.directory(prepare.hash) + "/lock"]
        try holder.run()
        let deadline = Date().addingTimeInterval(10)
        while store.lockHolder(prepare.hash) == nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(store.lockHolder(prepare.hash) != nil)
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(store.lockHolder(prepare.hash) == nil)
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        #expect(executor.run(only: [prepare.hash]).done == [prepare.hash])
    }

    @Test func aPlanFileRoundTripsForClusterJobs() throws {
        let plan = try Self.plan()
        let parsed = try ExecutionPlan(json: try #require(JSON.parse(Data(plan.json.pretty.utf8))))
        #expect(parsed.stages.map(\.hash) == plan.stages.map(\.hash))
        #expect(parsed.variants.map(\.name) == plan.variants.map(\.name))
        #expect(throws: PlanFormatError.self) { try ExecutionPlan(json: .object(["format": .string("other")])) }
    }
}

@Suite(.serialized) struct TrainingFailureTests {
    @Test func aNonFiniteLossStopsTheStageAndNamesTheTerm() throws {
        // A learning rate of 1e30 blows the weights up within a step or two.
        let spec = RuntimeTests.spec.replacingOccurrences(of: "optimizer: {kind: adamw, lr: 0.01}", with: "optimizer: {kind: sgd, lr: 1.0e30}")
            .replacingOccurrences(of: "epochs: 2\n    batch: 4\n  kd:", with: "epochs: 3\n    batch: 4\n  kd:")
        let plan = try RuntimeTests.plan(spec), store = RuntimeTests.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        let s = executor.run()
        let teacher = try #require(plan.stages.first { $0.label.hasPrefix("train teacher") })
        let failure = try #require(s.failed.first { $0.hash == teacher.hash })
        #expect(failure.error.contains("became NaN or infinite"))
        #expect(failure.error.contains("loss term 'dice_bce.segmentation.0'") || failure.error.contains("loss term 'mse.reconstruction.1'"))
        #expect(!store.isDone(teacher.hash))
        // No checkpoint with non-finite weights was written.
        if let file = try? NN.SafetensorsFile(path: store.file(teacher.hash, "best.safetensors")) {
            for name in file.names { #expect(try file.tensor(name).isFinite, "\(name) is not finite") }
        }
    }

    @Test func predictionsAreWrittenInTheSourceGeometry() throws {
        let plan = try RuntimeTests.plan(), store = RuntimeTests.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        #expect(executor.run().ok)
        let evaluate = try #require(plan.stages.first { $0.kind == .evaluate })
        let files = try FileManager.default.contentsOfDirectory(atPath: store.directory(evaluate.hash) + "/predictions")
        #expect(!files.isEmpty)
        let prediction = try Medical.NIfTI.read(store.directory(evaluate.hash) + "/predictions/" + files[0])
        let prepare = try #require(plan.stages.first { $0.kind == .prepare })
        let source = try Medical.NIfTI.read(store.directory(prepare.hash) + "/dataset/imagesTr/" + files[0])
        #expect(prediction.dims == source.dims)
        #expect(prediction.orientation.code == source.orientation.code)
        #expect(prediction.data.allSatisfy { $0 == 0 || $0 == 1 })
    }
}

@Suite(.serialized) struct RunIndexTests {
    @Test func theIndexFollowsTheStoreAndIsRebuiltWhenLost() throws {
        let plan = try RuntimeTests.plan(), store = RuntimeTests.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        executor.index = try RunIndex(store: store)
        executor.index?.record(plan: plan, spec: "tiny")
        #expect(executor.run().ok)
        let index = try #require(executor.index)
        #expect(try index.count("stages", where: "status = 'done'") == plan.stages.count)
        #expect(try index.count("metrics", where: "name = 'dice'") == plan.stages.filter { $0.kind == .evaluate }.count)
        #expect(try index.count("variants") == 4)
        executor.index = nil
        try FileManager.default.removeItem(atPath: store.root + "/index.sqlite")
        let rebuilt = try RunIndex(store: store)
        #expect(try rebuilt.count("stages", where: "status = 'done'") == plan.stages.count)
        #expect(try rebuilt.count("metrics", where: "name = 'dice'") == plan.stages.filter { $0.kind == .evaluate }.count)
    }
}

@Suite(.serialized) struct ReportTests {
    @Test func runsAreComparedOverSeedsAndTheReportHasItsPictures() throws {
        let spec = RuntimeTests.spec.replacingOccurrences(of: "sweep:\n  axes:\n    t: {path: stages.kd.distill.taps.ee.loss.temperature, values: {cold: 0.1, warm: 0.4}}\n", with: """
            sweep:
              seeds: {students: [1, 2], teachers: [5, 6]}

            """).replacingOccurrences(of: "  kd:\n", with: """
              base:
                model: s
                data: half
                loss: [{kind: dice}]
                optimizer: {kind: rmsprop, lr: 0.01}
                epochs: 2
                batch: 4
              kd:

            """)
        let plan = try RuntimeTests.plan(spec), store = RuntimeTests.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        #expect(executor.run().ok)
        // Two teacher runs, each with two student seeds; the baseline reads no teacher, so it is two runs, not four.
        #expect(plan.variants.map(\.name) == ["teacher_seed=5,seed=1", "teacher_seed=5,seed=2", "teacher_seed=6,seed=1", "teacher_seed=6,seed=2"])
        #expect(plan.stages.filter { $0.kind == .train || $0.kind == .distill }.count == 2 + 2 + 4)
        let data = ReportData(plan: plan, store: store)
        let kd = try #require(data.summaries.first { $0.stage == "kd" })
        #expect(kd.runs.count == 4 && kd.teacherRuns == 2 && kd.baseline == "base" && kd.role == .distilled)
        #expect(Set(kd.runs.compactMap(\.seed)) == [1, 2])
        let teacher = try #require(data.summaries.first { $0.role == .teacher })
        #expect(teacher.runs.count == 2 && Set(teacher.runs.compactMap(\.seed)) == [5, 6])
        #expect(try #require(data.summaries.first { $0.stage == "base" }).runs.count == 2)
        // The design: 2 teacher runs x 2 seeds x the test cases, paired with the baseline's seed.
        let comparison = try #require(data.comparisons.first)
        #expect(comparison.cases == data.testCases && comparison.teacherRuns == 2 && comparison.seeds == 2)
        #expect(comparison.runs == (4, 2) && comparison.replicated && comparison.leftOut.isEmpty)
        #expect(comparison.runDifferences.count == 4 && comparison.effect != nil && comparison.holm != nil && comparison.gap != nil)
        let d = comparison.runDifferences.map(\.difference).reduce(0, +) / 4
        #expect(abs(try #require(comparison.effect).estimate - d) < 1e-12)  // balanced: the mean of the run means
        let text = Report.text(plan, store: store)
        #expect(text.contains("teacher run x seed x test case array") && text.contains("Satterthwaite") && text.contains("Holm"))
        #expect(text.contains("| * | kd | base | 4 (2 x 2) / 2 | "))
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("| * | kd | base |") })
        #expect(line.split(separator: "|").count == 13, "\(line)")  // runs, gap, mean, CI, df, p, p (Holm), reading, without collapsed runs, seeds needed
        #expect(line.contains("| none flagged |") && line.contains("inconclusive") || line.contains("distillation"), "\(line)")
        #expect(text.contains("- kd: teacher run 1: 1: ") && text.contains("; teacher run 2: 1: "))
        // The finished study's variance components, for planning the next (`distill plan --from-store`).
        let (components, source) = try #require(StudyPower.components(plan: plan, store: store))
        #expect(components.teacherKnown && source.contains("1 finished comparison of this plan"), "\(source)")
        #expect(components == comparison.components, "one comparison: its own estimates")
        let report = try #require(plan.stages.first { $0.kind == .report })
        for file in ["report.md", "report.csv", "report.json", "report.html", "dice.svg", "dice.png", "runs.svg", "runs.png", "effects.svg", "effects.png",
                     "overlays.svg", "overlays.png", "plan.svg", "plan.png", "plan.dot", "curves-kd.svg", "curves-kd.png"] {
            #expect(FileManager.default.fileExists(atPath: store.file(report.hash, file)), "\(file)")
        }
        let html = try String(contentsOfFile: store.file(report.hash, "report.html"), encoding: .utf8)
        #expect(html.contains("<img src=\"effects.svg\"") && html.contains("Training curves") && html.contains("<table>"))
        // Figures carry their words: a title, axis labels and values.
        let dice = try String(contentsOfFile: store.file(report.hash, "dice.svg"), encoding: .utf8)
        #expect(dice.contains(">Test Dice by stage<") && dice.contains(">Dice (test, pooled over voxels)<") && dice.contains(">1<"))
        // Two epochs of tiny models segment nothing: the report says so, for each such run.
        #expect(data.warnings.allSatisfy { $0.hasPrefix("predicts no foreground voxel in any test case") }, "\(data.warnings)")

        // A teacher whose pool.1 no longer sees the image (its encoder.1 convolutions zeroed):
        // the report says that the ee term read a constant.
        let teacherHash = try #require(plan.stages.first { $0.label.contains("train teacher") }?.hash)
        let checkpoint = try SafetensorsFile(path: store.file(teacherHash, "best.safetensors"))
        var tensors: [String: Tensor] = [:]
        for name in checkpoint.names {
            var t = try checkpoint.tensor(name)
            if name.hasPrefix("encoder.1."), name.hasSuffix(".weight"), t.shape.count == 4 { t = Tensor(zeros: t.shape) }
            tensors[name] = t
        }
        try SafetensorsFile.write(tensors, metadata: checkpoint.metadata, to: store.file(teacherHash, "best.safetensors"))
        let blind = ReportData(plan: plan, store: store)
        let tap = blind.warnings.filter { $0.hasPrefix("tap pool.1") }
        #expect(tap.count == 1, "\(blind.warnings)")
        #expect(tap.first?.hasPrefix("tap pool.1 of the teacher teacher is the same for every image") == true)
        #expect(tap.first?.contains("(ee)") == true && tap.first?.hasSuffix("(stage kd)") == true, "\(tap)")
        #expect(Report.text(plan, store: store).contains("## Warnings\n\n- tap pool.1 of the teacher teacher is the same"))
    }
}

/// Whether a teacher's map changes with the image.
@Suite struct TapSpreadTests {
    static let terms = DistillationTerms(
        pairs: [TapPair(name: "bb", teacherTap: "bottleneck", studentTap: "bottleneck", adapter: nil, resample: .none,
                        loss: .infoNCE(temperature: 0.4), weight: 0.2)],
        logits: nil, supcon: nil)

    @Test func aMapThatIsTheSameForEveryImageIsNamedWithTheTermsThatReadIt() {
        let row: [Float] = [0.5, -1, 2, 0, 3, 1]
        let same = Tensor(shape: [4, 1, 2, 3], values: Array(Array(repeating: row, count: 4).joined()))
        #expect(TapSpread.relative(same) == 0)
        let warnings = TapSpread.constantTaps(["bottleneck": same], terms: Self.terms, teacher: "t2")
        #expect(warnings.count == 1 && warnings[0].hasPrefix("tap bottleneck of the teacher t2 is the same for every image") && warnings[0].contains("(bb)"))
        #expect(TapSpread.constantTaps(["bottleneck": Tensor(zeros: [3, 2, 2])], terms: Self.terms, teacher: "t2").count == 1)
    }

    @Test func aMapThatChangesWithTheImageIsNot() {
        // Two images differing in one position of six by 1% of the map's scale.
        let a: [Float] = [1, 1, 1, 1, 1, 1], b: [Float] = [1, 1, 1, 1, 1, 1.06]
        let maps = Tensor(shape: [2, 6], values: a + b)
        #expect(TapSpread.relative(maps) > TapSpread.threshold)
        #expect(TapSpread.constantTaps(["bottleneck": maps], terms: Self.terms, teacher: "t2").isEmpty)
        // A tap no term reads is not checked.
        #expect(TapSpread.constantTaps(["encoder.0": Tensor(zeros: [2, 3])], terms: Self.terms, teacher: "t2").isEmpty)
    }
}

/// `distill submit --dry-run`: the sbatch scripts and dependency graph, golden.
@Suite struct SlurmScriptTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

    func check(_ name: String, _ options: SlurmSettings) throws {
        let plan = try RuntimeTests.plan()
        let submitter = SlurmSubmitter(plan: plan, store: RunStore(root: "/shared/runs"), planPath: "/shared/runs/plans/PLAN.json",
                                       distill: "/opt/distill/bin/distill", options: options)
        let text = submitter.dryRun()
        let path = "\(Self.golden)/\(name).txt"
        if ProcessInfo.processInfo.environment["DISTILL_RECORD"] == "1" {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            Issue.record("recorded \(path)")
            return
        }
        #expect(text == (try String(contentsOfFile: path, encoding: .utf8)), "\(path) differs; rerun with DISTILL_RECORD=1 if intended")
    }

    @Test func defaultsComeFromTheCostModel() throws { try check("slurm-dry-run", try SpecSchema.defaultSlurmSettings()) }

    @Test func optionsFromTheSpecAndCommandLine() throws {
        var o = try SpecSchema.defaultSlurmSettings()
        o.partition = "cpu"
        o.account = "kd-study"
        o.cpusPerTask = 8
        o.mem = "32G"
        o.time = "12:00:00"
        o.qos = "normal"
        o.extra = ["--exclusive"]
        try check("slurm-dry-run-options", o)
    }
}

/// Names from a spec never reach a file path: the store is addressed by hashes only,
/// and names that could climb out of a folder are refused by the checker.
@Suite struct StorePathSafetyTests {
    @Test func variantNamesThatCouldEscapeAreRejected() {
        for evil in ["../../etc", "a/b", "/abs", ".hidden"] {
            let spec = RuntimeTests.spec.replacingOccurrences(of: "values: {cold: 0.1, warm: 0.4}", with: "values: {\"\(evil)\": 0.1, warm: 0.4}")
            let checked = SpecChecker.check(source: SourceFile(displayPath: "evil.yaml", text: spec))
            #expect(checked.diagnostics.contains { $0.id.code == "E0207" }, "\(evil) was accepted")
        }
    }

    @Test func storeFoldersComeFromHashesOnly() throws {
        let plan = try RuntimeTests.plan()
        let store = RunStore(root: "/shared/runs")
        for s in plan.stages {
            let dir = store.directory(s.hash)
            #expect(dir == "/shared/runs/stages/\(s.hash)")
            #expect(!dir.contains(".."))
        }
    }
}

/// A whole 3D sweep on a tiny phantom: volumes resampled to a coarser spacing, patches,
/// 3D augmentation, a live 3D teacher, sliding-window evaluation on the patients' grids.
@Suite(.serialized) struct VolumeRuntimeTests {
    static let spec = """
        name: tiny 3D
        data:
          source: {phantom: {cases: 6, seed: 1, size: 32, slices: 8}}
          background: [0, 2, 3]
          preprocess: {patch: [8, 16, 16], spacing: [30, 16, 16]}
          split: {test: 0.34, val: 0.17}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
          augment: {flip: {axes: [horizontal, vertical, depth]}, rotate: {p: 0.5}, elastic: {p: 0.5, alpha: 1, sigma: 4}, gamma: {}}
        models:
          t: {arch: multitask_unet, dims: 3, widths: [4, 8], bottleneck: 8, convs_per_block: 1, norm: instance,
              pools: [[1, 2, 2], [2, 2, 2]], heads: {segmentation: 1, reconstruction: 1}}
          s: {arch: unet, dims: 3, widths: [2, 4], bottleneck: 4, convs_per_block: 1, norm: instance, pools: [[2, 2, 2], [1, 2, 2]]}
        stages:
          teacher:
            model: t
            data: full
            loss: [{kind: dice_bce}, {kind: mse, head: reconstruction, weight: 0.2}]
            optimizer: {kind: adamw, lr: 0.01}
            epochs: 2
            batch: 2
          kd:
            model: s
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: adamw, lr: 0.01}
            epochs: 2
            batch: 2
            distill:
              teacher: teacher
              taps:
                ee: {teacher: pool.0, student: pool.0, adapter: {side: teacher}, resample: avgpool, loss: {kind: mse}, weight: 0.1}
                bb: {teacher: bottleneck, student: bottleneck, adapter: {side: student}, loss: {kind: infonce, temperature: 0.4}, weight: 0.1}
              logits: {kind: binary_kl, temperature: 4, weight: 0.2}
        evaluate: {mirror: [depth, width]}

        """

    @Test func aThreeDimensionalSweepTrainsAndMeasuresOnThePatientsGrids() throws {
        let plan = try RuntimeTests.plan(Self.spec), store = RuntimeTests.store()
        defer { try? FileManager.default.removeItem(atPath: store.root) }
        // Patches are drawn at random: the teacher runs live, and the plan says why.
        #expect(!plan.stages.contains { $0.kind == .teacherOutputs })
        let distill = try #require(plan.stages.first { $0.kind == .distill })
        #expect(distill.note?.contains("live teacher") == true)
        var executor = Executor(plan: plan, store: store, baseDirectory: "/")
        executor.echo = false
        #expect(executor.run().ok)
        let prepare = try #require(plan.stages.first { $0.kind == .prepare })
        let volumes = try VolumeSet(path: store.file(prepare.hash, "volumes.bin"))
        // 32 x 32 x 8 voxels of 12.48 x 12.48 x 30 mm at 16 x 16 x 30 mm: 8 x 25 x 25, which no patch tiles.
        #expect(volumes.cases.allSatisfy { $0.dims == [8, 25, 25] })
        for evaluate in plan.stages where evaluate.kind == .evaluate {
            let metrics = try #require(JSON.parse(try Data(contentsOf: URL(fileURLWithPath: store.file(evaluate.hash, "metrics.json")))))
            #expect(metrics["prediction"] == .string("sliding_window"))
            #expect(metrics["window"]?["mirror"] == .array([.string("depth"), .string("width")]))
            let cases = metrics["cases"]?.array?.count ?? 0
            #expect(cases == 2 && metrics["voxels"] == .int(cases * 32 * 32 * 8))
            // Each prediction lies on its source's grid: dims, orientation and voxel sizes.
            let folder = store.directory(evaluate.hash) + "/predictions"
            for file in try FileManager.default.contentsOfDirectory(atPath: folder) {
                let prediction = try Medical.NIfTI.read(folder + "/" + file)
                let source = try Medical.NIfTI.read(store.directory(prepare.hash) + "/dataset/labelsTr/" + file)
                #expect(prediction.dims == source.dims && prediction.spacing == source.spacing)
                #expect(prediction.orientation.code == source.orientation.code && prediction.orientation.affine == source.orientation.affine)
                #expect(prediction.data.allSatisfy { $0 == 0 || $0 == 1 })
            }
        }
        // The report draws the test sections on the patients' grids, from the written predictions.
        let report = try #require(plan.stages.first { $0.kind == .report })
        let svg = try String(contentsOfFile: store.file(report.hash, "overlays.svg"), encoding: .utf8)
        #expect(svg.contains("Predictions on the patients") && svg.contains("teacher") && svg.contains("kd"))
    }
}
