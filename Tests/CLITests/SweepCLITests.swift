import Foundation
import Testing

/// Killing a sweep: the rerun completes with the same results and reuses finished stages.
@Suite(.serialized) struct SweepCLITests {
    let cli = CLITests()

    static let spec = """
        name: tiny kill test
        data:
          source: {phantom: {cases: 6, seed: 2, size: 32, slices: 8}}
          background: [0, 2, 3]
          preprocess: {size: 32}
          split: {test: 0.34, val: 0.17}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          t: {arch: unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1}
          s: {arch: unet, widths: [2, 4], bottleneck: 4, convs_per_block: 1}
        stages:
          teacher: {model: t, data: full, loss: [{kind: dice_bce}], optimizer: {kind: adamw, lr: 0.01}, epochs: 8, batch: 4}
          kd:
            model: s
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: adamw, lr: 0.01}
            epochs: 3
            batch: 4
            distill: {teacher: teacher, logits: {kind: binary_kl, temperature: 4}}

        """

    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func metrics(_ store: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for stage in try FileManager.default.contentsOfDirectory(atPath: store + "/stages") {
            if let text = try? String(contentsOfFile: "\(store)/stages/\(stage)/metrics.json", encoding: .utf8) { out[stage] = text }
        }
        return out
    }

    @Test func aKilledSweepResumesToIdenticalResults() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clean = try cli.run(["sweep", "spec.yaml", "--store", "clean", "--threads", "1"], in: dir)
        #expect(clean.status == 0, "\(clean.out.suffix(2000))")
        // Start again in another store and SIGKILL the process once the teacher has a checkpoint.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = ["sweep", "spec.yaml", "--store", "killed", "--threads", "1"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        var killedMidStage = false
        while Date() < deadline, p.isRunning {
            let stages = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/killed/stages")) ?? []
            if stages.contains(where: { s in
                let d = "\(dir)/killed/stages/\(s)"
                // metrics.jsonl is rewritten after each epoch's commit: two lines, two epochs committed.
                guard let metrics = try? String(contentsOfFile: d + "/metrics.jsonl", encoding: .utf8) else { return false }
                return !FileManager.default.fileExists(atPath: d + "/done") && metrics.split(separator: "\n").count >= 2
            }) {
                kill(p.processIdentifier, SIGKILL)
                killedMidStage = true
                break
            }
            usleep(20_000)
        }
        p.waitUntilExit()
        #expect(killedMidStage, "the run finished before it could be killed")
        let resumed = try cli.run(["sweep", "spec.yaml", "--store", "killed", "--threads", "1"], in: dir)
        #expect(resumed.status == 0, "\(resumed.out.suffix(2000))")
        #expect(resumed.out.contains("resuming after epoch"))
        #expect(resumed.out.contains(" reused,"))
        #expect(try metrics(dir + "/killed") == metrics(dir + "/clean"))
        // The prepare stage finished before the kill and ran once.
        for stage in try FileManager.default.contentsOfDirectory(atPath: dir + "/killed/stages") {
            let log = (try? String(contentsOfFile: "\(dir)/killed/stages/\(stage)/log.txt", encoding: .utf8)) ?? ""
            if log.contains("[prepare") { #expect(log.components(separatedBy: "start:").count == 2) }
        }
        // Everything is done now: a third run computes nothing.
        let again = try cli.run(["sweep", "spec.yaml", "--store", "killed", "--threads", "1"], in: dir)
        #expect(again.out.contains("\n0 done, "))
    }

    @Test func statusAndReportReadTheStore() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pending = try cli.run(["status", "spec.yaml", "--store", "s"], in: dir)
        #expect(pending.out.contains("pending"))
        let none = try cli.run(["report", "spec.yaml", "--store", "s"], in: dir)
        #expect(none.status == 1)
        _ = try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        let status = try cli.run(["status", "spec.yaml", "--store", "s"], in: dir)
        #expect(!status.out.contains("pending") && status.out.hasSuffix(" done\n"))
        let report = try cli.run(["report", "spec.yaml", "--store", "s", "--output", "out"], in: dir)
        #expect(report.status == 0)
        #expect(report.out.contains("| group | stage | role | runs | IoU | Dice |"))
        #expect(FileManager.default.fileExists(atPath: dir + "/out/report.csv"))
        // The teacher's selected checkpoint, evaluated outside the plan, gives the stage's numbers.
        let stages = try FileManager.default.contentsOfDirectory(atPath: dir + "/s/stages")
        let teacher = try #require(stages.first { (try? String(contentsOfFile: "\(dir)/s/stages/\($0)/stage.json", encoding: .utf8))?.contains("train teacher") == true })
        let evaluated = try cli.run(["evaluate", "s/stages/\(teacher)/best.safetensors", "--spec", "spec.yaml", "--stage", "teacher", "--threads", "1"], in: dir)
        #expect(evaluated.status == 0, "\(evaluated.out)")
        #expect(evaluated.out.hasPrefix("test cases, on their own voxel grids: Dice "), "\(evaluated.out)")
        // `run` executes one variant (here the only one) and reuses what the sweep made.
        let single = try cli.run(["run", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(single.status == 0 && single.out.contains("0 done, 7 reused"))
        let unknown = try cli.run(["run", "spec.yaml", "--variant", "nope", "--store", "s"], in: dir)
        #expect(unknown.status == 2 && unknown.err.contains("no variant 'nope'"))
        let wrong = try cli.run(["evaluate", "s/stages/\(teacher)/best.safetensors", "--spec", "spec.yaml", "--stage", "kd"], in: dir)
        #expect(wrong.status == 1 && wrong.err.contains("does not fit the model"))
    }
}

@Suite(.serialized) struct ConcurrentSweepTests {
    let cli = CLITests()

    @Test func twoSweepsOfOverlappingSpecsRunEachStageOnce() throws {
        let dir = try SweepCLITests().folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The second spec shares the teacher and the data; its student differs.
        let other = SweepCLITests.spec.replacingOccurrences(of: "epochs: 3", with: "epochs: 2")
        try other.write(toFile: dir + "/other.yaml", atomically: true, encoding: .utf8)
        func start(_ spec: String) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = ["sweep", spec, "--store", "shared", "--threads", "1"]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            return p
        }
        let a = try start("spec.yaml"), b = try start("other.yaml")
        a.waitUntilExit()
        b.waitUntilExit()
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0)
        for stage in try FileManager.default.contentsOfDirectory(atPath: dir + "/shared/stages") {
            let log = (try? String(contentsOfFile: "\(dir)/shared/stages/\(stage)/log.txt", encoding: .utf8)) ?? ""
            #expect(log.components(separatedBy: "start:").count == 2, "stage \(stage) started \(log.components(separatedBy: "start:").count - 1) times")
        }
    }

    @Test func sigtermStopsCleanlyAndTheRerunFinishes() throws {
        let dir = try SweepCLITests().folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = ["sweep", "spec.yaml", "--store", "t", "--threads", "1"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        var sent = false
        while Date() < deadline, p.isRunning, !sent {
            let stages = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/t/stages")) ?? []
            if stages.contains(where: { FileManager.default.fileExists(atPath: "\(dir)/t/stages/\($0)/last.safetensors") }) {
                p.terminate()  // SIGTERM
                sent = true
            }
            usleep(20_000)
        }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(sent)
        #expect(p.terminationStatus == 1)
        #expect(out.contains("interrupted: rerun the same command to resume"))
        // Nothing half-done is marked done, and no lock is left held.
        for stage in try FileManager.default.contentsOfDirectory(atPath: dir + "/t/stages") {
            let fd = open("\(dir)/t/stages/\(stage)/lock", O_RDONLY)
            if fd >= 0 {
                #expect(flock(fd, LOCK_EX | LOCK_NB) == 0, "stage \(stage) is still locked")
                close(fd)
            }
        }
        let rerun = try cli.run(["sweep", "spec.yaml", "--store", "t", "--threads", "1"], in: dir)
        #expect(rerun.status == 0)
    }
}
