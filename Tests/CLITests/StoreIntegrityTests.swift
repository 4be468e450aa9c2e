import Foundation
import NN
import Testing

/// A store that never lies (SQLite's crash tests, Nix's `store verify`, Bazel's digest
/// checks): damaged outputs are found and never reused; a kill at any write resumes to
/// the uninterrupted result bit for bit, on one process and on two MPI ranks; a full
/// disk leaves the previous checkpoint; two sweeps on one store run each stage once.
@Suite(.serialized) struct StoreIntegrityTests {
    let cli = CLITests()
    let parallel = DataParallelTests()

    static let spec = """
        name: store integrity
        data:
          source: {phantom: {cases: 6, seed: 4, size: 32, slices: 8}}
          background: [0, 2, 3]
          preprocess: {size: 32}
          split: {test: 0.34, val: 0.17}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          t: {arch: unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1}
          s: {arch: unet, widths: [2, 4], bottleneck: 4, convs_per_block: 1}
        stages:
          teacher: {model: t, data: full, loss: [{kind: dice_bce}], optimizer: {kind: adam, lr: 0.01}, epochs: 3, batch: 4}
          base: {model: s, data: half, loss: [{kind: dice}], optimizer: {kind: adam, lr: 0.01}, epochs: 2, batch: 4}
          kd:
            model: s
            data: half
            loss: [{kind: dice}]
            optimizer: {kind: adam, lr: 0.01}
            epochs: 2
            batch: 4
            distill: {teacher: teacher, logits: {kind: binary_kl, temperature: 4}}

        """

    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    /// The stage folder whose stage.json label starts with `label`.
    func stage(_ store: String, _ label: String) throws -> String {
        let stages = try FileManager.default.contentsOfDirectory(atPath: store + "/stages")
        let hash = try #require(stages.first { (try? String(contentsOfFile: "\(store)/stages/\($0)/stage.json", encoding: .utf8))?.contains("\"label\": \"\(label)") == true },
                                "no stage labelled \(label) in \(store)")
        return store + "/stages/" + hash
    }

    /// The outputs a `done` record lists (name, bytes, digest): equal records mean equal files, bit for bit.
    func outputs(_ stageFolder: String) throws -> [String] {
        let done = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stageFolder + "/done"))) as? [String: Any])
        let list = try #require(done["outputs"] as? [[String: Any]], "a done record without outputs")
        return list.map { "\($0["file"] ?? "") \($0["bytes"] ?? "") \($0["sha256"] ?? "")" }
    }

    func temporaries(_ folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).filter { ($0 as NSString).lastPathComponent.contains(".tmp-") }
    }

    /// Flips `count` floats in the middle of a file's data (same size: only a digest sees it).
    func flip(_ path: String, count: Int) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let start = bytes.count / 2
        for i in 0..<min(count * 4, bytes.count - start) where i % 4 == 3 { bytes[start + i] ^= 0x40 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func aDamagedOutputIsFoundNamedAndNeverReused() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(first.status == 0, "\(first.out.suffix(1500))")
        let table = try #require(first.out.range(of: "\n# store integrity").map { String(first.out[$0.lowerBound...]) })
        let base = try stage(dir + "/s", "train base")
        let before = try outputs(base)
        #expect(before.contains { $0.hasPrefix("best.safetensors ") } && before.contains { $0.hasPrefix("metrics.jsonl ") })
        #expect(try cli.run(["verify", "--store", "s"], in: dir).status == 0)

        // 1,000 floats of the baseline's selected weights flipped on disk, the size unchanged.
        try flip(base + "/best.safetensors", count: 1000)
        let verify = try cli.run(["verify", "--store", "s"], in: dir)
        #expect(verify.status == 1 && verify.out.contains("damaged: best.safetensors does not match the SHA-256"), "\(verify.out)")
        let status = try cli.run(["status", "spec.yaml", "--store", "s"], in: dir)
        #expect(status.out.contains("damaged") && status.out.contains("best.safetensors"), "\(status.out)")

        // The next sweep says so, runs the stage again (from its intact last checkpoint) and prints the same table.
        let again = try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(again.status == 0, "\(again.out.suffix(1500))")
        #expect(again.out.contains("damaged: best.safetensors does not match the SHA-256 recorded when it was written; set aside and run again"))
        #expect(again.out.contains("1 done, "), "\(again.out.suffix(800))")
        #expect(again.out.hasSuffix(table), "the table changed after the repair")
        #expect(try outputs(base) == before)
        #expect(try cli.run(["verify", "--store", "s"], in: dir).status == 0)

        // A damaged input of a single-stage run (a cluster job) stops it with a message that names the input.
        let plan = try cli.run(["plan", "spec.yaml", "--format", "json"], in: dir)
        try plan.out.write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        let kd = try stage(dir + "/s", "distill kd")
        try FileManager.default.removeItem(atPath: kd + "/done")
        try Data("truncated".utf8).write(to: URL(fileURLWithPath: try stage(dir + "/s", "train teacher") + "/best.safetensors"))
        let job = try cli.run(["run", "--plan", "plan.json", "--stage", String((kd as NSString).lastPathComponent.prefix(12)), "--store", "s", "--threads", "1"], in: dir)
        #expect(job.status == 1)
        #expect(job.out.contains("is damaged (best.safetensors has 9 bytes") && job.out.contains("run that stage again"), "\(job.out)")
    }

    /// The write points of one training stage (stage.json, each epoch's commit, metrics, the selected model, done), as the trace names them.
    func writePoints(_ dir: String, store: String, run: (_ store: String, _ environment: [String: String]) throws -> Int32) throws -> [String] {
        let trace = dir + "/trace-\(store)"
        #expect(try run(store, ["DISTILL_FAULT_TRACE": trace]) == 0)
        return try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// SQLite's crash test on a training stage: stop the process dead at every write in
    /// turn, resume, and compare every output with an uninterrupted run's.
    func crashAtEveryWrite(ranks: Int) throws {
        let (dir, train) = try parallel.setUp(epochs: 2, size: 32)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ store: String, _ environment: [String: String]) throws -> Int32 {
            if ranks == 1 {
                return try cli.run(["run", "--plan", "plan.json", "--stage", String(train.prefix(12)), "--store", store, "--threads", "1"],
                                   in: dir, environment: environment).status
            }
            let p = try parallel.ranks(ranks, dir, train, store: store, environment: environment)
            p.waitUntilExit()
            return p.terminationStatus
        }
        try parallel.store(dir, "whole")
        let points = try writePoints(dir, store: "whole", run: run)
        #expect(points.count >= 10, "\(points)")
        for expected in ["stage.json", "last.safetensors", "metrics.jsonl", "best.safetensors", "done"] {
            #expect(points.contains { $0.contains(expected) }, "no write point for \(expected): \(points)")
        }
        let reference = try outputs(dir + "/whole/stages/\(train)")
        for (n, point) in points.enumerated() {
            let store = "crash-\(n + 1)"
            try parallel.store(dir, store)
            let killed = try run(store, ["DISTILL_FAULT_AT": "\(n + 1)"])
            #expect(killed != 0, "the run at point \(n + 1) (\(point)) was not stopped")
            #expect(try run(store, [:]) == 0, "the resume after point \(n + 1) (\(point)) failed")
            let folder = dir + "/\(store)/stages/\(train)"
            #expect(try outputs(folder) == reference, "after a kill at point \(n + 1) (\(point)) the outputs differ from an uninterrupted run's")
            #expect(temporaries(folder).isEmpty, "after point \(n + 1): \(temporaries(folder)) left behind")
            try FileManager.default.removeItem(atPath: dir + "/" + store)
        }
    }

    @Test func aKillAtEveryWriteResumesToTheSameResult() throws {
        try crashAtEveryWrite(ranks: 1)
    }

    @Test func aKillAtEveryWriteOfRankZeroResumesToTheSameResult() throws {
        try crashAtEveryWrite(ranks: 2)
    }

    @Test func aFullDiskLeavesThePreviousCheckpoint() throws {
        let (dir, train) = try parallel.setUp(epochs: 3, size: 32)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ store: String, _ environment: [String: String]) throws -> (status: Int32, out: String, err: String) {
            try cli.run(["run", "--plan", "plan.json", "--stage", String(train.prefix(12)), "--store", store, "--threads", "1"], in: dir, environment: environment)
        }
        try parallel.store(dir, "whole")
        let points = try writePoints(dir, store: "whole") { store, env in try run(store, env).status }
        // The disk fills while epoch 2's checkpoint is written.
        let commits = points.enumerated().filter { $0.element.contains("write ") && $0.element.hasSuffix("/last.safetensors") }.map { $0.offset + 1 }
        try #require(commits.count == 3, "\(points)")
        try parallel.store(dir, "full")
        let full = try run("full", ["DISTILL_FAULT_AT": "\(commits[1])", "DISTILL_FAULT_KIND": "enospc"])
        #expect(full.status == 1)
        #expect((full.out + full.err).contains("no space left on the device"), "\(full.out)\(full.err)")
        let folder = dir + "/full/stages/\(train)"
        let kept = try SafetensorsFile(path: folder + "/last.safetensors")
        #expect(kept.metadata["epoch"] == "1", "the previous checkpoint is gone: \(kept.metadata)")
        #expect(temporaries(folder).isEmpty && !FileManager.default.fileExists(atPath: folder + "/done"))
        let resumed = try run("full", [:])
        #expect(resumed.status == 0 && resumed.out.contains("resuming after epoch 1"), "\(resumed.out)")
        #expect(try outputs(folder) == outputs(dir + "/whole/stages/\(train)"))
    }

    @Test func twoSweepsOnOneStoreRunEachStageOnce() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func start() throws -> (Process, Pipe) {
            let p = Process(), out = Pipe()
            p.executableURL = URL(fileURLWithPath: CLITests.binary)
            p.arguments = ["sweep", "spec.yaml", "--store", "shared", "--threads", "1"]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            p.standardOutput = out
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            return (p, out)
        }
        let (a, outA) = try start(), (b, outB) = try start()
        let textA = String(decoding: outA.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let textB = String(decoding: outB.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        a.waitUntilExit()
        b.waitUntilExit()
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0, "\(textA.suffix(800))\n---\n\(textB.suffix(800))")
        let tableA = textA.range(of: "\n# store integrity").map { String(textA[$0.lowerBound...]) }
        let tableB = textB.range(of: "\n# store integrity").map { String(textB[$0.lowerBound...]) }
        #expect(tableA != nil && tableA == tableB)
        for stage in try FileManager.default.contentsOfDirectory(atPath: dir + "/shared/stages") {
            let log = try String(contentsOfFile: "\(dir)/shared/stages/\(stage)/log.txt", encoding: .utf8)
            #expect(log.components(separatedBy: "] start: ").count == 2, "stage \(stage.prefix(12)) ran more than once:\n\(log)")
        }
    }
}
