import Foundation
import Medical
import Testing

/// A store nobody can turn against its owner: every attack on a finished store (hostile
/// done records, planted links, edited results, a store moved elsewhere) is found, named,
/// and never followed or believed. One sweep makes the store; each test attacks a copy.
@Suite(.serialized) struct HostileStoreTests {
    let cli = CLITests()
    let integrity = StoreIntegrityTests()

    /// A folder with the spec and a finished store `s`, copied from one sweep made once.
    static let template: String? = {
        let t = StoreIntegrityTests()
        guard let dir = try? t.folder(), let r = try? CLITests().run(["sweep", "spec.yaml", "--store", "s", "--threads", "2"], in: dir),
              r.status == 0 else { return nil }
        return dir
    }()

    func swept() throws -> String {
        let template = try #require(Self.template, "the template sweep failed")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-hostile-\(UUID().uuidString)").path
        let cp = Process()
        cp.executableURL = URL(fileURLWithPath: "/bin/cp")
        cp.arguments = ["-a", template, dir]
        try cp.run()
        cp.waitUntilExit()
        try #require(cp.terminationStatus == 0)
        return dir
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    func sweep(_ dir: String) throws -> (status: Int32, out: String, err: String) {
        try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "2"], in: dir)
    }

    /// A done record naming a file outside the store: damage, and the file is never touched.
    @Test func aDoneRecordCannotMakeASweepDeleteOutsideTheStore() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "precious\n".write(toFile: dir + "/victim", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/victim-folder", withIntermediateDirectories: true)
        try "also precious\n".write(toFile: dir + "/victim-folder/inside", atomically: true, encoding: .utf8)
        let base = try integrity.stage(dir + "/s", "train base")
        var record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + "/done"))) as? [String: Any])
        var outputs = try #require(record["outputs"] as? [[String: Any]])
        let zeros = String(repeating: "0", count: 64)
        outputs.append(["file": "../../../victim", "bytes": 1, "sha256": zeros])
        outputs.append(["file": "../../../victim-folder/inside", "bytes": 1, "sha256": zeros])
        record["outputs"] = outputs
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: base + "/done"))

        let verify = try cli.run(["verify", "--store", "s"], in: dir)
        #expect(verify.status == 1 && verify.out.contains("its done record names '../../../victim', a path outside the stage folder"), "\(verify.out)")
        let again = try sweep(dir)
        #expect(again.status == 0, "\(again.out.suffix(1500))")
        #expect(read(dir + "/victim") == "precious\n" && read(dir + "/victim-folder/inside") == "also precious\n")
        #expect(try cli.run(["verify", "--store", "s"], in: dir).status == 0)
    }

    /// Links planted in a stage folder (its lock, its log) are removed, never written through.
    @Test func linksInAStageFolderAreNeverWrittenThrough() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "precious\n".write(toFile: dir + "/victim-lock", atomically: true, encoding: .utf8)
        try "precious\n".write(toFile: dir + "/victim-log", atomically: true, encoding: .utf8)
        let base = try integrity.stage(dir + "/s", "train base")
        try FileManager.default.removeItem(atPath: base + "/lock")
        try FileManager.default.removeItem(atPath: base + "/log.txt")
        try FileManager.default.createSymbolicLink(atPath: base + "/lock", withDestinationPath: dir + "/victim-lock")
        try FileManager.default.createSymbolicLink(atPath: base + "/log.txt", withDestinationPath: dir + "/victim-log")

        let verify = try cli.run(["verify", "--store", "s"], in: dir)
        #expect(verify.status == 1 && verify.out.contains("lock is a symbolic link") && verify.out.contains("log.txt is a symbolic link"), "\(verify.out)")
        let status = try cli.run(["status", "spec.yaml", "--store", "s"], in: dir)
        #expect(status.out.contains("damaged") && status.out.contains("symbolic link"), "\(status.out)")
        let again = try sweep(dir)
        #expect(again.status == 0, "\(again.out.suffix(1500))")
        #expect(read(dir + "/victim-lock") == "precious\n" && read(dir + "/victim-log") == "precious\n")
        var s = stat()
        #expect(lstat(base + "/lock", &s) == 0 && s.st_mode & S_IFMT == S_IFREG)
        #expect(try cli.run(["verify", "--store", "s"], in: dir).status == 0)
    }

    /// A stage folder that is itself a link is damage: the outputs are not taken from it, nor written into it.
    @Test func aLinkedStageFolderIsDamage() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try integrity.stage(dir + "/s", "train base")
        try FileManager.default.moveItem(atPath: base, toPath: dir + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: base, withDestinationPath: dir + "/elsewhere")
        let before = try FileManager.default.contentsOfDirectory(atPath: dir + "/elsewhere").sorted()

        let verify = try cli.run(["verify", "--store", "s"], in: dir)
        #expect(verify.status == 1 && verify.out.contains("the stage folder is a symbolic link"), "\(verify.out)")
        let again = try sweep(dir)
        #expect(again.status == 0, "\(again.out.suffix(1500))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/elsewhere").sorted() == before)
        var s = stat()
        #expect(lstat(base, &s) == 0 && s.st_mode & S_IFMT == S_IFDIR)
        #expect(try cli.run(["verify", "--store", "s"], in: dir).status == 0)
    }

    /// An empty or unreadable done record is never "done, unchecked": with a flipped byte in the
    /// teacher's weights, nothing is built from them and the teacher trains again.
    @Test func anUnreadableDoneRecordTurnsNoCheckOff() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let teacher = try integrity.stage(dir + "/s", "train teacher")
        try Data().write(to: URL(fileURLWithPath: teacher + "/done"))
        try integrity.flip(teacher + "/best.safetensors", count: 1)

        let verify = try cli.run(["verify", "--store", "s"], in: dir)
        #expect(verify.status == 1 && verify.out.contains("its done record is empty"), "\(verify.out)")
        let status = try cli.run(["status", "spec.yaml", "--store", "s"], in: dir)
        #expect(status.out.contains("damaged") && status.out.contains("done record is empty"), "\(status.out)")
        let again = try sweep(dir)
        #expect(again.status == 0, "\(again.out.suffix(1500))")
        let log = read(teacher + "/log.txt") ?? ""
        #expect(log.components(separatedBy: "] start: ").count == 3, "the teacher did not train again:\n\(log)")
        #expect(try cli.run(["verify", "--store", "s"], in: dir).status == 0)
    }

    /// `report` prints no figure from an edited or truncated output: it names the stage and the file.
    @Test func theReportReadsOnlyVerifiedOutputs() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let evaluate = try integrity.stage(dir + "/s", "evaluate base")
        let text = try #require(read(evaluate + "/metrics.json"))
        let pooled = try #require(text.range(of: "\"pooled\""), "no pooled metrics in \(text.prefix(300))")
        let dice = try #require(text.range(of: "\"dice\"", range: pooled.upperBound..<text.endIndex))
        let tail = text[dice.upperBound...]
        let digit = try #require(tail.firstIndex { $0.isNumber })
        var edited = text
        edited.replaceSubrange(digit...digit, with: text[digit] == "9" ? "8" : "9")
        try edited.write(toFile: evaluate + "/metrics.json", atomically: true, encoding: .utf8)
        let report = try cli.run(["report", "spec.yaml", "--store", "s"], in: dir)
        #expect(report.status == 1 && report.err.contains("is damaged") && report.err.contains("metrics.json"), "\(report.out)\(report.err)")
        try Data(text.utf8.prefix(40)).write(to: URL(fileURLWithPath: evaluate + "/metrics.json"))
        let truncated = try cli.run(["report", "spec.yaml", "--store", "s"], in: dir)
        #expect(truncated.status == 1 && truncated.err.contains("metrics.json has 40 bytes"), "\(truncated.err)")
    }

    /// A store copied elsewhere works from any directory: no path in it is relative to where a sweep ran.
    /// Its evaluation reads the phantom from the copy, and a damaged phantom label is written anew.
    @Test func aCopiedStoreWorksFromAnotherDirectory() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moved = dir + "/moved/deeper"
        try FileManager.default.createDirectory(atPath: dir + "/moved", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: dir + "/s", toPath: moved)
        let evaluate = try integrity.stage(moved, "evaluate teacher")
        try FileManager.default.removeItem(atPath: evaluate + "/done")
        let prepare = try integrity.stage(moved, "prepare")
        let labels = prepare + "/dataset/labelsTr"
        let label = try #require(try FileManager.default.contentsOfDirectory(atPath: labels).sorted().first)
        try Data("not a volume".utf8).write(to: URL(fileURLWithPath: labels + "/" + label))
        // From another working directory, the spec and the store by absolute paths.
        let elsewhere = FileManager.default.temporaryDirectory.path
        let again = try cli.run(["sweep", dir + "/spec.yaml", "--store", moved, "--threads", "2"], in: elsewhere)
        #expect(again.status == 0, "\(again.out.suffix(2000))\(again.err)")
        #expect(again.out.contains("damaged: dataset/labelsTr/\(label)"), "\(again.out.suffix(2000))")
        #expect(try cli.run(["verify", "--store", moved], in: elsewhere).status == 0)
        #expect(read(prepare + "/dataset-root.txt") == "dataset")
    }

    /// `predict` never writes onto its input (a -o linked to the input folder), nor over a file without --overwrite.
    @Test func predictNeverWritesOntoItsInput() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scans = try integrity.stage(dir + "/s", "prepare") + "/dataset/imagesTr"
        let input = try #require(try FileManager.default.contentsOfDirectory(atPath: scans).sorted().first)
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: scans + "/" + input, toPath: dir + "/in/" + input)
        let original = try Data(contentsOf: URL(fileURLWithPath: dir + "/in/" + input))
        try FileManager.default.createSymbolicLink(atPath: dir + "/out-link", withDestinationPath: dir + "/in")
        let linked = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/" + input, "-o", "out-link", "--threads", "1"], in: dir)
        #expect(linked.status == 2 && linked.err.contains("is the input"), "\(linked.err)")
        let overwriting = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/" + input, "-o", "out-link", "--overwrite", "--threads", "1"], in: dir)
        #expect(overwriting.status == 2 && overwriting.err.contains("is the input"), "\(overwriting.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/in/" + input)) == original)

        let first = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/" + input, "-o", "out", "--threads", "1"], in: dir)
        #expect(first.status == 0, "\(first.err)")
        let second = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/" + input, "-o", "out", "--threads", "1"], in: dir)
        #expect(second.status == 2 && second.err.contains("exists: pass --overwrite to replace it"), "\(second.err)")
        let third = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/" + input, "-o", "out", "--overwrite", "--threads", "1"], in: dir)
        #expect(third.status == 0, "\(third.err)")
    }

    /// NaN or infinite voxels in a volume to segment are refused by default (as training refuses
    /// them), and replaced and said with --replace-non-finite.
    @Test func predictRefusesNonFiniteVoxels() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scans = try integrity.stage(dir + "/s", "prepare") + "/dataset/imagesTr"
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: scans).sorted().first)
        var volume = try NIfTI.read(scans + "/" + name)
        for i in stride(from: 0, to: 100 * 7, by: 7) { volume.data[i] = i % 2 == 0 ? .nan : .infinity }
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try NIfTI.write(volume, to: dir + "/in/nan.nii.gz", datatype: 16)
        let refused = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/nan.nii.gz", "-o", "out", "--threads", "1"], in: dir)
        #expect(refused.status == 1 && refused.err.contains("in/nan.nii.gz: 100 of \(volume.data.count) voxels are NaN (50) or infinite (50)"), "\(refused.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/nan.nii.gz"))
        let replaced = try cli.run(["predict", "base", "--spec", "spec.yaml", "--store", "s", "in/nan.nii.gz", "-o", "out", "--replace-non-finite", "--threads", "1"], in: dir)
        #expect(replaced.status == 0 && replaced.out.contains("note: in/nan.nii.gz: 100 of"), "\(replaced.out)\(replaced.err)")
    }

    /// Each done record names the machine that made it, and the report lists the machines.
    @Test func resultsSayWhichMachineMadeThem() throws {
        let dir = try swept()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try integrity.stage(dir + "/s", "train base")
        let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + "/done"))) as? [String: Any])
        let machine = try #require(record["machine"] as? [String: Any])
        for key in ["cpu", "isa", "blas", "threads", "os"] { #expect(machine[key] != nil, "no \(key) in \(machine)") }
        let report = try cli.run(["report", "spec.yaml", "--store", "s"], in: dir)
        #expect(report.status == 0 && report.out.contains("\n## Machines\n") && report.out.contains("\(machine["cpu"] ?? "?")"), "\(report.out.suffix(800))")
    }

    /// A store the user cannot write: one line naming the path, no Foundation dump.
    @Test(.enabled(if: getuid() == 0, "needs root to run as another user"))
    func aStoreOwnedByAnotherUserGetsOneLine() throws {
        let dir = try integrity.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Everything readable by others, the store's folder writable only by root.
        try FileManager.default.createDirectory(atPath: dir + "/locked", withIntermediateDirectories: true)
        let chmod = Process()
        chmod.executableURL = URL(fileURLWithPath: "/bin/chmod")
        chmod.arguments = ["-R", "go+rX", dir]
        try chmod.run()
        chmod.waitUntilExit()
        let p = Process(), out = Pipe(), err = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        p.arguments = ["-u", "nobody", "--", CLITests.binary, "sweep", "spec.yaml", "--store", "locked/s", "--threads", "1"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = ["PATH": "/usr/bin:/bin", "HOME": "/tmp", "DISTILL_CALIBRATION": "off"]
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let all = o + e
        #expect(p.terminationStatus != 0)
        #expect(all.contains("cannot create the folder locked/s: Permission denied"), "\(all.suffix(1500))")
        #expect(!all.contains("NSCocoaErrorDomain") && !all.contains("Error Domain="), "\(all.suffix(1500))")
    }
}
