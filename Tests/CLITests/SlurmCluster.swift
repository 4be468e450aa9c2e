import Foundation

/// A single-node Slurm on this machine for the integration test: munged,
/// slurmctld and slurmd with a generated slurm.conf (2 CPUs, ports of our own),
/// all under one temporary folder. `stop()` kills every daemon it started by pid.
final class SlurmCluster {
    let dir: String
    var conf: String { dir + "/slurm.conf" }
    private var pids: [Int32] = []

    static var installed: Bool {
        ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
            && getuid() == 0
    }

    /// Daemons of an earlier test process that crashed before `stop()`: killed by their pid files.
    static func reapOrphans() {
        let tmp = FileManager.default.temporaryDirectory.path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix("distill-slurm-") {
            guard let owner = Int32(name.dropFirst("distill-slurm-".count)), kill(owner, 0) != 0 else { continue }
            for pidFile in ["munge/munged.pid", "slurmctld.pid", "slurmd.pid"] {
                if let text = try? String(contentsOfFile: "\(tmp)/\(name)/\(pidFile)", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    kill(pid, SIGKILL)
                }
            }
            try? FileManager.default.removeItem(atPath: "\(tmp)/\(name)")
        }
    }

    init() throws {
        Self.reapOrphans()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-slurm-\(getpid())").path
        let fm = FileManager.default
        for sub in ["state", "spool", "munge", "log"] { try fm.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true) }
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir + "/munge")
        var key = Data(count: 1024)
        key.withUnsafeMutableBytes { raw in for i in 0..<raw.count { raw[i] = UInt8.random(in: 0...255) } }
        try key.write(to: URL(fileURLWithPath: dir + "/munge/munge.key"))
        try fm.setAttributes([.posixPermissions: 0o400], ofItemAtPath: dir + "/munge/munge.key")
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: ".").first.map(String.init) ?? "localhost"
        let port = 20000 + Int(getpid() % 20000)
        let config = """
            ClusterName=distilltest
            SlurmctldHost=\(host)
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            AuthInfo=socket=\(dir)/munge/munge.socket
            CredType=cred/munge
            StateSaveLocation=\(dir)/state
            SlurmdSpoolDir=\(dir)/spool
            SlurmctldPidFile=\(dir)/slurmctld.pid
            SlurmdPidFile=\(dir)/slurmd.pid
            SlurmctldPort=\(port)
            SlurmdPort=\(port + 1)
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU_Memory
            SchedulerType=sched/backfill
            SchedulerParameters=defer_batch
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            MpiDefault=none
            ReturnToService=2
            MinJobAge=600
            SlurmctldLogFile=\(dir)/log/slurmctld.log
            SlurmdLogFile=\(dir)/log/slurmd.log
            NodeName=\(host) CPUs=2 RealMemory=8000 State=UNKNOWN
            PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP

            """
        try config.write(toFile: conf, atomically: true, encoding: .utf8)
        try launch("/usr/sbin/munged", ["--key-file=\(dir)/munge/munge.key", "--socket=\(dir)/munge/munge.socket", "--pid-file=\(dir)/munge/munged.pid",
                                        "--log-file=\(dir)/log/munged.log", "--seed-file=\(dir)/munge/seed", "-F", "-f"])
        // Slurm's daemons authenticate through munged's socket: wait until it is there.
        let socketDeadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: "\(dir)/munge/munge.socket"), Date() < socketDeadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        try launch("/usr/sbin/slurmctld", ["-f", conf, "-D"])
        try launch("/usr/sbin/slurmd", ["-f", conf, "-D"])
        // Wait until the node is idle.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if run("/usr/bin/sinfo", ["-h", "-o", "%t"]).contains("idle") { return }
            Thread.sleep(forTimeInterval: 0.5)
        }
        stop()
        throw NSError(domain: "slurm", code: 1, userInfo: [NSLocalizedDescriptionKey: "the single-node Slurm did not come up; see \(dir)/log"])
    }

    /// Starts a daemon with posix_spawn: Foundation's Process would reap its children
    /// one pid at a time and block on a daemon that never exits.
    private func launch(_ path: String, _ args: [String]) throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        let environment: [String] = ["SLURM_CONF=" + conf, "PATH=/usr/sbin:/usr/bin:/bin"]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "\(dir)/log/\((path as NSString).lastPathComponent).out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // With no signal blocked: the test process's threads block SIGTERM, which a spawned daemon would inherit.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        guard posix_spawn(&pid, path, &actions, &attributes, argv, envp) == 0 else {
            throw NSError(domain: "slurm", code: 2, userInfo: [NSLocalizedDescriptionKey: "cannot start \(path)"])
        }
        pids.append(pid)
    }

    func run(_ path: String, _ args: [String]) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.environment = ["SLURM_CONF": conf, "PATH": "/usr/sbin:/usr/bin:/bin"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return "" }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return out
    }

    func stop() {
        for pid in pids.reversed() { kill(pid, SIGTERM) }
        // Each daemon gets 5 s to stop on SIGTERM (polled), then SIGKILL.
        let deadline = Date().addingTimeInterval(5)
        var running = Set(pids)
        while !running.isEmpty, Date() < deadline {
            var status: Int32 = 0
            running = running.filter { waitpid($0, &status, WNOHANG) == 0 }
            if !running.isEmpty { Thread.sleep(forTimeInterval: 0.05) }
        }
        for pid in running {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids.removeAll()
        try? FileManager.default.removeItem(atPath: dir)
    }

    deinit { if !pids.isEmpty { stop() } }
}
