import Foundation
import NN
import Testing

/// One training stage on two MPI ranks (`mpirun -np 2` on this machine): the same
/// loss curve and weights as one process with the same global batch, within the
/// rounding of a reordered sum; and a 2-rank run stopped mid-way resumes to the
/// weights of an uninterrupted one. Open MPI comes from `make test` (TEST_PACKAGES).
@Suite(.serialized) struct DataParallelTests {
    let cli = CLITests()

    /// Batch norm (synchronised across ranks) and a batch-pooled Dice + BCE: both
    /// couple the images of a batch, so a split that ignored the other rank would differ.
    static func spec(epochs: Int, size: Int = 64) -> String {
        """
        data:
          source: {phantom: {cases: 8, size: \(max(32, size)), slices: 6}}
          background: [0, 2, 3]
          preprocess: {size: \(size)}
          split: {test: 0.25, val: 0.125}
          subsets:
            all: {fraction: 1.0}
        models:
          net: {arch: unet, widths: [8, 16], bottleneck: 32}
        stages:
          teacher:
            model: net
            data: all
            loss: [{kind: dice_bce}]
            optimizer: {kind: sgd, lr: 0.01}
            epochs: \(epochs)
            batch: 4
            seed: 5

        """
    }

    static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The spec's teacher and a student distilled from it through the batch-contrastive
    /// terms: an InfoNCE tap pair (each image against the others of the batch) and SupCon
    /// (pixels sampled per image, contrasted across the batch). SupCon at its default
    /// temperature (0.1) amplifies rounding within two epochs (one process on 1 and on 2
    /// threads ends 5% apart in the logit term), so the comparison uses temperature 1,
    /// where 1 thread, 2 threads and 2 ranks agree to 1e-8.
    static let contrastiveSpec = (spec(epochs: 2, size: 32) + """
          student:
            model: small
            data: all
            loss: [{kind: dice}]
            optimizer: {kind: sgd, lr: 0.01}
            epochs: 2
            batch: 4
            seed: 3
            distill:
              teacher: teacher
              taps:
                ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}, loss: {kind: infonce, temperature: 0.4}}
              logits: {kind: binary_kl, temperature: 4}
              supcon: {tap: decoder.1, samples_per_class: 8, weight: 0.5, temperature: 1.0}

        """).replacingOccurrences(of: "  net: {arch: unet, widths: [8, 16], bottleneck: 32}\n",
                                 with: "  net: {arch: unet, widths: [8, 16], bottleneck: 32}\n  small: {arch: unet, widths: [4, 8], bottleneck: 8}\n")

    /// A folder with the spec, its JSON plan and the stages before the trained one run into `base`;
    /// returns (folder, the train stage: `kind`'s last).
    func setUp(epochs: Int = 3, size: Int = 64, spec: String? = nil, kind: String = "train") throws -> (dir: String, train: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-dp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (spec ?? Self.spec(epochs: epochs, size: size)).write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let plan = try cli.run(["plan", "spec.yaml", "--format", "json"], in: dir)
        try plan.out.write(toFile: dir + "/plan.json", atomically: true, encoding: .utf8)
        try #require(plan.status == 0, "distill plan: \(plan.out)\(plan.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(plan.out.utf8)) as? [String: Any])
        let stages = try #require(json["stages"] as? [[String: Any]])
        let train = try #require(stages.last { $0["kind"] as? String == kind }?["hash"] as? String)
        // Everything the stage reads (the prepared data, a teacher and its outputs), in one process.
        for s in stages {
            guard let hash = s["hash"] as? String, hash != train, s["kind"] as? String != "evaluate", s["kind"] as? String != "report" else { continue }
            let r = try cli.run(["run", "--plan", "plan.json", "--stage", hash, "--store", "base", "--threads", "1"], in: dir)
            #expect(r.status == 0, "\(r.out)\(r.err)")
        }
        return (dir, train)
    }

    /// A copy of the store with only the prepared data.
    func store(_ dir: String, _ name: String) throws {
        try FileManager.default.copyItem(atPath: dir + "/base", toPath: dir + "/" + name)
    }

    /// `environment` is added to the ranks' (mpirun passes each variable on with -x).
    func ranks(_ n: Int, _ dir: String, _ train: String, store: String, environment: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(Self.mpirun, "mpirun is not installed: `make test` installs openmpi-bin"))
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", String(n)] + environment.keys.sorted().flatMap { ["-x", $0] }
            + [CLITests.binary, "run", "--plan", "plan.json", "--stage", String(train.prefix(12)), "--store", store, "--threads", "1"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        // Containers often forbid the cross-memory attach of Open MPI's shared-memory transport.
        p.environment = ProcessInfo.processInfo.environment.merging(["OMPI_MCA_btl_vader_single_copy_mechanism": "none", "DISTILL_CALIBRATION": "off"].merging(environment) { a, _ in a }) { _, new in new }
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        return p
    }

    /// The `distill` processes working in `directory` whose command line holds `part` (the ranks of one run).
    static func processes(in directory: String, containing part: String) -> [pid_t] {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), let raw = fm.contents(atPath: "/proc/\(entry)/cmdline"),
                  let cwd = try? fm.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"),
                  (cwd as NSString).resolvingSymlinksInPath == (directory as NSString).resolvingSymlinksInPath else { return nil }
            let words = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard words.first == CLITests.binary else { return nil }
            return words.joined(separator: " ").contains(part) ? pid : nil
        }
    }

    func weights(_ path: String) throws -> [String: [Float]] {
        let f = try SafetensorsFile(path: path)
        var out: [String: [Float]] = [:]
        for n in f.names where n.hasPrefix("model.") && !n.contains("running_") {
            let t = try f.tensor(n)
            out[n] = Array(UnsafeBufferPointer(start: t.pointer, count: t.count))
        }
        return out
    }

    /// max |a - b| and ||a - b|| / ||a|| over every learnable tensor.
    func distance(_ a: [String: [Float]], _ b: [String: [Float]]) -> (maxAbs: Float, relative: Double) {
        var worst: Float = 0, d2 = 0.0, a2 = 0.0
        for (name, x) in a {
            guard let y = b[name], y.count == x.count else { return (.infinity, .infinity) }
            for i in 0..<x.count {
                worst = max(worst, abs(x[i] - y[i]))
                d2 += Double(x[i] - y[i]) * Double(x[i] - y[i])
                a2 += Double(x[i]) * Double(x[i])
            }
        }
        return (worst, (d2 / max(a2, 1e-30)).squareRoot())
    }

    func losses(_ path: String) throws -> [Double] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try #require(o["train_loss"] as? Double)
        }
    }

    @Test func twoRanksComputeWhatOneProcessComputes() throws {
        let (dir, train) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store(dir, "one")
        try store(dir, "two")
        let one = try cli.run(["run", "--plan", "plan.json", "--stage", String(train.prefix(12)), "--store", "one", "--threads", "1"], in: dir)
        #expect(one.status == 0, "\(one.out)")
        let p = try ranks(2, dir, train, store: "two")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let stage = "/stages/\(train)/"
        let a = try losses(dir + "/one" + stage + "metrics.jsonl"), b = try losses(dir + "/two" + stage + "metrics.jsonl")
        #expect(a.count == 3 && b.count == 3)
        // The bounds are rounding's, which three epochs grow: measured, 2 ranks against 1 process, the losses
        // 1.0e-6 apart (relative) and the weights 1.1e-5 at most (4.8e-6 relative); one process on 2 threads
        // against 1 drifts as far (1.3e-5, 5.0e-6).
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 5e-6 * abs(x), "epoch losses \(a) vs \(b)") }
        let d = distance(try weights(dir + "/one" + stage + "last.safetensors"), try weights(dir + "/two" + stage + "last.safetensors"))
        #expect(d.maxAbs <= 5e-5 && d.relative <= 2e-5, "1 process vs 2 ranks: max |dw| \(d.maxAbs), relative \(d.relative)")
        // Only rank 0 wrote: one log, one metrics file, one done marker.
        let log = try String(contentsOfFile: dir + "/two" + stage + "log.txt", encoding: .utf8)
        #expect(log.contains("data-parallel over 2 ranks"))
        #expect(log.components(separatedBy: "epoch 3 done").count == 2, "\(log)")
    }

    /// InfoNCE and SupCon see the global batch: two ranks gather each other's embeddings
    /// (and SupCon's labels) and compute what one process computes.
    @Test func batchContrastiveTermsOnTwoRanksComputeWhatOneProcessComputes() throws {
        let (dir, train) = try setUp(spec: Self.contrastiveSpec, kind: "distill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store(dir, "one")
        try store(dir, "two")
        let one = try cli.run(["run", "--plan", "plan.json", "--stage", String(train.prefix(12)), "--store", "one", "--threads", "1"], in: dir)
        #expect(one.status == 0, "\(one.out)\(one.err)")
        let p = try ranks(2, dir, train, store: "two")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let stage = "/stages/\(train)/"
        let log = (try? String(contentsOfFile: dir + "/two" + stage + "log.txt", encoding: .utf8)) ?? ""
        #expect(log.contains("data-parallel over 2 ranks"), "\(log)")
        func terms(_ store: String) throws -> [[String: Double]] {
            try String(contentsOfFile: dir + "/" + store + stage + "metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return o.compactMapValues { $0 as? Double }.filter { $0.key.hasPrefix("train_") }
            }
        }
        let a = try terms("one"), b = try terms("two")
        #expect(a.count == 2 && b.count == 2)
        #expect(a.first?.keys.contains("train_ee") == true && a.first?.keys.contains("train_supcon") == true, "\(a)")
        for (x, y) in zip(a, b) {
            for (k, v) in x { #expect(abs(v - (y[k] ?? .nan)) <= 1e-6 * abs(v), "\(k): one process \(v), two ranks \(y[k] ?? .nan) (\(a) vs \(b))") }
        }
        let d = distance(try weights(dir + "/one" + stage + "last.safetensors"), try weights(dir + "/two" + stage + "last.safetensors"))
        #expect(d.maxAbs <= 1e-5 && d.relative <= 1e-5, "1 process vs 2 ranks: max |dw| \(d.maxAbs), relative \(d.relative)")
    }

    @Test func aStoppedTwoRankRunResumesToTheSameWeights() throws {
        // Long enough that the stop lands before the end.
        let (dir, train) = try setUp(epochs: 8)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store(dir, "whole")
        try store(dir, "stopped")
        let whole = try ranks(2, dir, train, store: "whole")
        whole.waitUntilExit()
        #expect(whole.terminationStatus == 0)

        // Stop the second run once its first epoch is on disk: mpirun passes SIGTERM to both ranks.
        let state = dir + "/stopped/stages/\(train)/last.safetensors"
        let stopped = try ranks(2, dir, train, store: "stopped")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: state), stopped.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        // As `scancel` does: SIGTERM to every rank. Both stop at the same step (the stop travels with the gradients).
        let rankPIDs = Self.processes(in: dir, containing: "--store stopped")
        #expect(rankPIDs.count == 2, "ranks found: \(rankPIDs)")
        for pid in rankPIDs { kill(pid, SIGTERM) }
        stopped.waitUntilExit()
        let done = FileManager.default.fileExists(atPath: dir + "/stopped/stages/\(train)/done")
        #expect(!done, "the run finished before it could be stopped")
        let resumed = try ranks(2, dir, train, store: "stopped")
        resumed.waitUntilExit()
        #expect(resumed.terminationStatus == 0)
        let log = try String(contentsOfFile: dir + "/stopped/stages/\(train)/log.txt", encoding: .utf8)
        #expect(log.contains("resuming after epoch"), "\(log)")
        let stage = "/stages/\(train)/last.safetensors"
        let d = distance(try weights(dir + "/whole" + stage), try weights(dir + "/stopped" + stage))
        #expect(d.maxAbs == 0, "resumed vs uninterrupted: max |dw| \(d.maxAbs)")
    }

    /// `distill submit`: ranks for training stages (batch-contrastive ones too), from `max_time` or `stage_nodes`;
    /// a `stage_nodes` that names no stage is an error.
    @Test func submitAsksSlurmForRanks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-ranks-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func submit(_ slurm: String) throws -> (status: Int32, out: String, err: String) {
            try "extends: \(CLITests.repository)/specs/thesis/study.yaml\nexecution:\n  slurm: \(slurm)\n"
                .write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
            return try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "s", "--dry-run"], in: dir)
        }
        // T1 is 118 days on one rank: a week's budget asks for more ranks than its batch of 8 allows.
        let budget = try submit("{max_time: \"7-00:00:00\"}")
        #expect(budget.status == 0, "\(budget.err)")
        #expect(budget.out.contains("train (8 ranks)") && budget.out.contains("#SBATCH --ntasks=8") && budget.out.contains("exec mpirun -np 8"))
        #expect(!budget.out.contains("stays on one rank"), "\(budget.out.prefix(600))")
        // A request is honoured or the job says why not: T1's week is not enough on the 8 ranks its batch allows.
        #expect(budget.out.contains("# warning: teacher_t1 (") && budget.out.contains("over max_time 7-00:00:00: its batch allows no more ranks"),
                "\(budget.out.prefix(1200))")
        let capped = try submit("{stage_nodes: {teacher_t1: 8}, ranks_per_node: 2}")
        #expect(capped.out.contains("# warning: teacher_t1 (") && capped.out.contains("asked for 16 ranks and gets 8: its batch of 8 gives each rank one image at most"),
                "\(capped.out.prefix(1200))")
        let named = try submit("{stage_nodes: {baseline_s1: 2}, ranks_per_node: 2}")
        #expect(named.out.contains("#SBATCH --ntasks=4\n#SBATCH --ntasks-per-node=2\n#SBATCH --nodes=2"), "\(named.out.prefix(900))")
        // The rules are the checker's: a located error and exit 1, the same that `distill check` gives.
        let typo = try submit("{stage_nodes: {teacher_t: 4}}")
        #expect(typo.status == 1 && typo.out.contains("error[E0303]") && typo.out.contains("did you mean 'teacher_t1'?"), "\(typo.out)")
        // InfoNCE and SupCon gather the global batch: the study's students split like any stage.
        let contrastive = try submit("{stage_nodes: {kd_t1_s1: 2}}")
        #expect(contrastive.status == 0 && contrastive.out.contains("kd_t1_s1 (") && contrastive.out.contains("(2 ranks)")
                && contrastive.out.contains("#SBATCH --ntasks=2"), "\(contrastive.out.prefix(1500))")
        let badTime = try submit("{max_time: \"a week\"}")
        #expect(badTime.status == 1 && badTime.out.contains("error[E0902]: execution.slurm.max_time 'a week' is not a time like"), "\(badTime.out)")
        #expect(try cli.run(["check", "spec.yaml"], in: dir).status == 1, "check and submit disagree")
        // A command-line value with a line break would become a line of the job script: refused, nothing written.
        _ = try submit("{}")
        let hostile = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "s", "--dry-run", "--partition", "cpu\nrm -rf ~"], in: dir)
        #expect(hostile.status == 2 && hostile.err.contains("--partition holds a control character") && !hostile.out.contains("rm -rf"), "\(hostile.err)")
        let clock = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "s", "--dry-run", "--time", "soon"], in: dir)
        #expect(clock.status == 2 && clock.err.contains("--time 'soon' is not a time like"), "\(clock.err)")
    }
}

