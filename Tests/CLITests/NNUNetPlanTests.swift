import Foundation
import Testing

/// `auto` against nnU-Net itself: nnunetv2 2.8.1's planner (installed by `make test` into
/// .build/venv) and `distill data inspect --fingerprint` plan the same small folders (Colin27
/// with AAL lobes, thick slices whose spacing varies by case, the phantom, and 1 mm volumes
/// larger than a patch fits, so that the patch shrinks to the budget) and must agree: the same
/// spacing, the same levels (pooling per axis and kernels) and batch, the patch within one
/// down-sampling step per axis. nnU-Net fits an 8 GB GPU with a count of feature maps,
/// Distillery `execution.memory` (whose default is that GPU) with its memory model.
@Suite(.serialized) struct NNUNetPlanTests {
    let cli = CLITests()
    static let python = CLITests.repository + "/.build/venv/bin/python3"
    static let scripts = CLITests.repository + "/Tests/CLITests/NNUNet"

    static let cases = ["colin27", "thick", "phantom", "large"]

    static let root: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-nnunet-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// The folder of a case, made once.
    func folder(_ name: String) throws -> String {
        let path = Self.root + "/" + name
        if FileManager.default.fileExists(atPath: path + "/dataset.json") { return path }
        switch name {
        case "colin27": return RealDataCLITests.root + "/good"
        case "thick", "large": _ = try RealDataCLITests.python([Self.scripts + "/make_folder.py", path, name])
        default:
            let r = try cli.run(["data", "phantom", path, "--cases", "6", "--size", "128", "--slices", "40"])
            #expect(r.status == 0, "\(r.err)")
        }
        return path
    }

    /// nnU-Net's 3d_fullres configuration for `folder`.
    func nnUNet(_ folder: String) throws -> [String: Any] {
        let work = Self.root + "/work-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = [Self.scripts + "/nnunet_plan.py", folder, work]
        // Output to files, never pipes: a planner stopped at its deadline may leave workers holding a pipe open.
        let (outputs, errors) = (work + "-stdout.txt", work + "-stderr.txt")
        for f in [outputs, errors] { FileManager.default.createFile(atPath: f, contents: nil) }
        defer { for f in [outputs, errors] { try? FileManager.default.removeItem(atPath: f) } }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outputs)), err = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        defer { try? out.close(); try? err.close() }
        (p.standardOutput, p.standardError) = (out, err)
        try p.run()
        // A planner that hangs is stopped (and the test fails) rather than holding the suite: by
        // SIGKILL, which no signal mask it inherits can block (the test process's threads block SIGTERM).
        let pid = p.processIdentifier
        let deadline = DispatchWorkItem { if p.isRunning { kill(pid, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 300, execute: deadline)
        defer { deadline.cancel() }
        p.waitUntilExit()
        let data = FileManager.default.contents(atPath: outputs) ?? Data()
        let problem = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        guard p.terminationStatus == 0, let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let json = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            Issue.record("nnU-Net's planner failed: \(problem.suffix(2000))")
            return [:]
        }
        return json
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/mricron/templates/aal.nii.gz"), "needs Debian's mricron-data"),
          .timeLimit(.minutes(10)), arguments: cases)
    func autoPlansAsNNUNetDoes(_ name: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record("\(Self.python) is missing: `make test` creates it from Tests/python-requirements.txt")
            return
        }
        let path = try folder(name)
        let r = try cli.run(["data", "inspect", path, "--fingerprint", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let ours = try #require((try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["recipe"] as? [String: Any])
        let theirs = try nnUNet(path)
        guard !theirs.isEmpty else { return }
        // nnU-Net puts the coarsest axis first; Distillery the slice axis (axial here): map theirs onto ours.
        let transpose = try #require(theirs["transpose"] as? [Int])
        func ordered<T>(_ v: [T]) -> [T] { (0..<3).map { a in v[transpose.firstIndex(of: a) ?? a] } }
        let spacing = ordered(try #require(theirs["spacing"] as? [Double]))
        let patch = ordered(try #require(theirs["patch"] as? [Int]))
        let strides = try #require(theirs["strides"] as? [[Int]]).dropFirst().map(ordered)
        let kernels = try #require(theirs["kernels"] as? [[Int]]).map(ordered)
        let ourSpacing = try #require(ours["spacing"] as? [Double]), ourPatch = try #require(ours["patch"] as? [Int])
        let ourPools = try #require(ours["pools"] as? [[Int]]), ourKernels = try #require(ours["kernels"] as? [[Int]])
        let seen = "ours \(ours), nnU-Net's \(theirs)"
        #expect(zip(ourSpacing, spacing).allSatisfy { abs($0 - $1) <= 1e-5 * $1 }, "spacing: \(seen)")
        #expect(ourPools == strides, "pooling: \(seen)")
        #expect(ourKernels == kernels, "kernels: \(seen)")
        // Within one down-sampling step per axis.
        let divisor = (0..<3).map { a in ourPools.reduce(1) { $0 * $1[a] } }
        #expect((0..<3).allSatisfy { abs(ourPatch[$0] - patch[$0]) <= divisor[$0] }, "patch: \(seen)")
        #expect(ours["batch"] as? Int == theirs["batch"] as? Int, "batch: \(seen)")
    }
}
