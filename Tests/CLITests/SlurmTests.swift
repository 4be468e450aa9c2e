import Foundation
import Testing

/// The sweep submitted to a real single-node Slurm: every stage runs once, in
/// dependency order, and the results equal a local sweep's.
@Suite(.serialized) struct SlurmTests {
    let cli = CLITests()

    @Test(.enabled(if: SlurmCluster.installed, "needs slurmctld, slurmd, munge (make test installs them) and root"))
    func aSubmittedSweepMatchesALocalOne() throws {
        let dir = try SweepCLITests().folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        let env = ["SLURM_CONF": cluster.conf]
        let local = try cli.run(["sweep", "spec.yaml", "--store", "local", "--threads", "2"], in: dir)
        #expect(local.status == 0)
        let dry = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "cluster", "--dry-run"], in: dir, environment: env)
        #expect(dry.out.contains("#SBATCH --dependency=afterok:JOB:"))
        let submitted = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "cluster"], in: dir, environment: env)
        #expect(submitted.status == 0, "\(submitted.err)")
        let stages = submitted.out.split(separator: "\n").map { $0.split(separator: "\t") }.filter { $0.count >= 3 }.map { String($0[1]) }
        #expect(stages.count == 7)
        // Wait for every stage to finish.
        let deadline = Date().addingTimeInterval(300)
        func doneCount() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/cluster/stages")) ?? [])
                .filter { FileManager.default.fileExists(atPath: "\(dir)/cluster/stages/\($0)/done") }.count
        }
        while Date() < deadline, doneCount() < 7 { Thread.sleep(forTimeInterval: 1) }
        #expect(doneCount() == 7, "\(cluster.run("/usr/bin/squeue", []))")
        let status = try cli.run(["status", "spec.yaml", "--store", "cluster"], in: dir, environment: env)
        #expect(status.out.hasSuffix("7 done\n"))
        // Each stage started once, after every input was done.
        let planFile = try #require(try FileManager.default.contentsOfDirectory(atPath: dir + "/cluster/plans").first)
        let plan = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/cluster/plans/\(planFile)"))) as? [String: Any]
        for stage in plan?["stages"] as? [[String: Any]] ?? [] {
            guard let hash = stage["hash"] as? String else { continue }
            let sdir = "\(dir)/cluster/stages/\(hash)"
            let log = (try? String(contentsOfFile: sdir + "/log.txt", encoding: .utf8)) ?? ""
            #expect(log.components(separatedBy: "start:").count == 2, "\(hash.prefix(12)) started more than once")
            let started = try FileManager.default.attributesOfItem(atPath: sdir + "/stage.json")[.modificationDate] as? Date
            for input in (stage["inputs"] as? [String: String] ?? [:]).values {
                let done = try FileManager.default.attributesOfItem(atPath: "\(dir)/cluster/stages/\(input)/done")[.modificationDate] as? Date
                #expect((done ?? .distantFuture) <= (started ?? .distantPast), "\(hash.prefix(12)) started before its input \(input.prefix(12)) was done")
            }
            // The same numbers as the local sweep (same stage hashes, same store layout).
            if let a = try? String(contentsOfFile: sdir + "/metrics.json", encoding: .utf8) {
                #expect(a == (try? String(contentsOfFile: "\(dir)/local/stages/\(hash)/metrics.json", encoding: .utf8)))
            }
        }
        // Everything is done: a new submission submits nothing.
        let again = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "cluster"], in: dir, environment: env)
        #expect(again.out.contains("0 jobs for 7 stages"))
    }

    /// A partition with a space would have made more #SBATCH options (its job's log and working
    /// folder elsewhere): refused before anything is submitted. A store path with a space is one
    /// quoted argument: the job's log lands in its stage folder.
    @Test(.enabled(if: SlurmCluster.installed, "needs slurmctld, slurmd, munge (make test installs them) and root"))
    func injectedOptionsAreRefusedAndPathsQuoted() throws {
        let dir = try SweepCLITests().folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        let env = ["SLURM_CONF": cluster.conf]
        let spec = try String(contentsOfFile: dir + "/spec.yaml", encoding: .utf8)
        let injected = spec + "execution:\n  slurm: {partition: \"debug --output=\(dir)/INJECTED_%j.out --chdir=\(dir)\"}\n"
        try injected.write(toFile: dir + "/injected.yaml", atomically: true, encoding: .utf8)
        let refused = try cli.run(["submit", "injected.yaml", "--to", "slurm", "--store", "cluster"], in: dir, environment: env)
        #expect(refused.status == 1 && refused.out.contains("error[E0904]"), "\(refused.out)\(refused.err)")
        #expect(cluster.run("/usr/bin/squeue", ["-h"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/cluster"))

        let spaced = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "my store"], in: dir, environment: env)
        #expect(spaced.status == 0, "\(spaced.err)")
        let jobs = spaced.out.split(separator: "\n").map { $0.split(separator: "\t") }.filter { $0.count >= 3 }
        let first = try #require(jobs.first, "\(spaced.out)")
        let job = String(first[0]), hash = String(first[1])
        let shown = cluster.run("/usr/bin/scontrol", ["show", "job", job])
        let stdout = try #require(shown.split(separator: "\n").first { $0.contains("StdOut=") }, "\(shown)")
        #expect(stdout.contains("StdOut=\(dir)/my store/stages/\(hash)") && stdout.hasSuffix("/slurm-\(job).out"), "\(stdout)")
        _ = cluster.run("/usr/bin/scancel", ["--user=root"])
    }

    /// One training stage as a 2-task job: `mpirun` in the job starts both ranks, rank 0 writes the stage.
    @Test(.enabled(if: SlurmCluster.installed && DataParallelTests.mpirun != nil, "needs Slurm and Open MPI (make test installs them) and root"))
    func aTwoTaskTrainingStage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-slurm-dp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = DataParallelTests.spec(epochs: 2) + "execution:\n  slurm: {nodes: 1, ranks_per_node: 2, cpus_per_task: 1}\n"
        try spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        // Containers often forbid the cross-memory attach of Open MPI's shared-memory transport; sbatch passes the environment on.
        let env = ["SLURM_CONF": cluster.conf, "OMPI_MCA_btl_vader_single_copy_mechanism": "none"]
        let dry = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "cluster", "--dry-run"], in: dir, environment: env)
        #expect(dry.out.contains("#SBATCH --ntasks=2") && dry.out.contains("exec mpirun -np 2 --bind-to none"), "\(dry.out)")
        let submitted = try cli.run(["submit", "spec.yaml", "--to", "slurm", "--store", "cluster"], in: dir, environment: env)
        #expect(submitted.status == 0, "\(submitted.err)")
        let deadline = Date().addingTimeInterval(300)
        func done() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/cluster/stages")) ?? [])
                .filter { FileManager.default.fileExists(atPath: "\(dir)/cluster/stages/\($0)/done") }
        }
        while Date() < deadline, done().count < 4 { Thread.sleep(forTimeInterval: 1) }
        #expect(done().count == 4, "\(cluster.run("/usr/bin/squeue", []))")
        let logs = done().compactMap { try? String(contentsOfFile: "\(dir)/cluster/stages/\($0)/log.txt", encoding: .utf8) }
        let train = try #require(logs.first { $0.contains("data-parallel over 2 ranks") }, "\(logs)")
        #expect(train.components(separatedBy: "epoch 2 done").count == 2, "rank 0 alone writes the log: \(train)")
    }
}

/// The README's cluster table is what `distill plan --nodes N` prints.
@Suite struct ClusterREADMETests {
    @Test func theREADMEsClusterTableIsTheTools() throws {
        let readme = try String(contentsOfFile: CLITests.repository + "/README.md", encoding: .utf8)
        for nodes in [1, 8, 32] {
            let r = try CLITests().run(["plan", "specs/thesis/study.yaml", "--nodes", String(nodes)])
            #expect(r.status == 0)
            let line = try #require(r.out.split(separator: "\n").first { $0.hasPrefix("on \(nodes) node") }, "\(r.out.suffix(800))")
            let match = try #require(line.firstMatch(of: /~(.+?) \(one machine: .+?; no schedule beats the critical path, (.+?)\)/))
            let row = "| \(nodes) | \(match.1) | \(match.2) |"
            #expect(readme.contains(row), "README lacks the row \(row) (the tool: \(line))")
        }
    }
}
