import Foundation
import Testing

/// `distill data inspect` on hostile and unusual volumes: what a person sees, and the exit code.
@Suite struct DataCLITests {
    let cli = CLITests()
    static let templates = "/usr/share/mricron/templates"
    static var available: Bool { FileManager.default.fileExists(atPath: templates + "/aal.nii.gz") }

    func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-data-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(.enabled(if: available, "needs Debian's mricron-data"))
    func anAtlasWithHundredsOfLabelsIsALabelMap() throws {
        let r = try cli.run(["data", "inspect", Self.templates + "/aal.nii.gz"])
        #expect(r.status == 0, "\(r.err)")
        // AAL: background and 116 regions.
        #expect(r.out.contains("labels: 117 values: 0: "), "\(r.out)")
        #expect(!r.out.contains("not a label map"))
    }

    /// A phantom case written by `distill data phantom`, then damaged three ways.
    @Test func damagedFilesAreRefusedWithOneClearMessageAndExitOne() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try cli.run(["data", "phantom", "ph", "--cases", "4", "--size", "32", "--slices", "4"], in: dir)
        #expect(made.status == 0, "\(made.err)")
        let image = dir + "/ph/imagesTr/spleen_1.nii.gz"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: image))
        try bytes.prefix(bytes.count * 3 / 4).write(to: URL(fileURLWithPath: dir + "/cut.nii.gz"))
        let cut = try cli.run(["data", "inspect", "cut.nii.gz"], in: dir)
        #expect(cut.status == 1)
        #expect(cut.err.hasPrefix("error: cut.nii.gz: truncated: the header promises 8192 bytes of voxel data, the file holds "), "\(cut.err)")
        #expect(cut.err.split(separator: "\n").count == 1, "libnifti added lines: \(cut.err)")

        // Uncompressed, with the NIfTI magic removed: ANALYZE 7.5.
        let inspected = try cli.run(["data", "inspect", "ph/imagesTr/spleen_1.nii.gz"], in: dir)
        #expect(inspected.status == 0)
        try Data([UInt8](repeating: 0x41, count: 500)).write(to: URL(fileURLWithPath: dir + "/junk.nii"))
        let junk = try cli.run(["data", "inspect", "junk.nii"], in: dir)
        #expect(junk.status == 1 && junk.err.hasPrefix("error: junk.nii: not a NIfTI file ("), "\(junk.err)")
        #expect(junk.err.split(separator: "\n").count == 1, "libnifti added lines: \(junk.err)")

        let missing = try cli.run(["data", "inspect", "nothing.nii"], in: dir)
        #expect(missing.status == 2)
    }

    /// A folder with a truncated case: every case is read, the truncated one is reported with its
    /// file, and the exit status is 1 (it used to be skipped: "no problems", exit 0).
    @Test func inspectingAFolderReadsEveryCase() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cli.run(["data", "phantom", "ph", "--cases", "4", "--size", "32", "--slices", "4"], in: dir).status == 0)
        let image = dir + "/ph/imagesTr/spleen_3.nii.gz"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: image))
        try bytes.prefix(bytes.count * 3 / 4).write(to: URL(fileURLWithPath: image))
        let r = try cli.run(["data", "inspect", "ph"], in: dir)
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("spleen_3: cannot be read: ") && r.out.contains("problem: ") && r.out.contains("spleen_3.nii.gz: truncated"), "\(r.out)")
        for id in ["spleen_1", "spleen_2", "spleen_4"] { #expect(r.out.contains("\n\(id): image "), "\(id) not listed: \(r.out)") }
        #expect(!r.out.contains("no problems"))
    }

    @Test func analyzeIsRefusedUnlessItsOrientationIsGiven() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cli.run(["data", "phantom", "ph", "--cases", "4", "--size", "32", "--slices", "4"], in: dir).status == 0)
        // Decompress with the system's gzip, then clear the magic at byte 344.
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-dc", dir + "/ph/imagesTr/spleen_1.nii.gz"]
        let pipe = Pipe()
        gunzip.standardOutput = pipe
        try gunzip.run()
        var plain = pipe.fileHandleForReading.readDataToEndOfFile()
        gunzip.waitUntilExit()
        try #require(plain.count > 348, "gzip gave \(plain.count) bytes")
        plain.replaceSubrange(344..<348, with: [0, 0, 0, 0])
        try plain.write(to: URL(fileURLWithPath: dir + "/old.nii"))
        let refused = try cli.run(["data", "inspect", "old.nii"], in: dir)
        #expect(refused.status == 1)
        #expect(refused.err.contains("looks like an ANALYZE 7.5 file") && refused.err.contains("records no orientation"), "\(refused.err)")
        let stated = try cli.run(["data", "inspect", "old.nii", "--analyze-orientation", "LAS"], in: dir)
        #expect(stated.status == 0, "\(stated.err)")
        #expect(stated.out.contains("stored LAS"))
        let wrong = try cli.run(["data", "inspect", "old.nii", "--analyze-orientation", "LLS"], in: dir)
        #expect(wrong.status == 2)
    }

    /// `data preview --spec --augment`: the spec's training slices beside augmented draws.
    @Test func previewShowsTheSpecsAugmentation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-augment-preview-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try MultiClassCLITests.spec.replacingOccurrences(of: "\nmodels:", with: "\n  augment: {flip: {}, rotate: {p: 0.5}, elastic: {}, gamma: {}}\nmodels:")
            .write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let r = try cli.run(["data", "preview", "--spec", "spec.yaml", "--augment", "--store", "s", "--draws", "3", "-o", "aug.png"], in: dir)
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("wrote aug.png: 4 training slices, 3 draws each"))
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/aug.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        // Without --spec there is no augmentation to show; a spec without data.augment says so.
        let alone = try cli.run(["data", "preview", "--augment", "-o", "x.png"], in: dir)
        #expect(alone.status == 2 && alone.err.contains("--augment needs --spec"))
        try MultiClassCLITests.spec.write(toFile: dir + "/plain.yaml", atomically: true, encoding: .utf8)
        let plain = try cli.run(["data", "preview", "--spec", "plain.yaml", "--augment", "--store", "s", "-o", "x.png"], in: dir)
        #expect(plain.status != 0 && plain.err.contains("has no data.augment"), "\(plain.err)")
    }
}
