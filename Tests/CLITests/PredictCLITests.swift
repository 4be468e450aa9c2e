import Foundation
import Medical
import Testing

/// `distill predict`: new volumes segmented in their own geometry; a bad input is
/// named and skipped, and every other volume is still written.
@Suite(.serialized) struct PredictCLITests {
    let cli = CLITests()

    /// The sweep tests' tiny study, trained briefly, with a sweep axis that changes kd only.
    static let spec = SweepCLITests.spec
        .replacingOccurrences(of: "name: tiny kill test", with: "name: tiny predict test")
        .replacingOccurrences(of: "epochs: 8", with: "epochs: 2")
        .replacingOccurrences(of: "epochs: 3", with: "epochs: 1")
        + """
        sweep:
          axes:
            temperature: {path: stages.kd.distill.logits.temperature, values: {low: 2, high: 4}}

        """

    static let fixtures = (CLITests.repository as NSString).appendingPathComponent("Tests/MedicalTests/Fixtures")

    /// A folder with the spec, trained into `runs`, and an `in` folder of inputs.
    func trained() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-predict-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try Self.spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let r = try cli.run(["sweep", "spec.yaml", "--threads", "1"], in: dir)
        #expect(r.status == 0, "\(r.out.suffix(2000))\(r.err)")
        return dir
    }

    /// The store folder of the stage whose label starts with `label`.
    func stageFolder(_ dir: String, _ label: String) throws -> String {
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/runs/stages") {
            let folder = "\(dir)/runs/stages/\(name)"
            if let data = FileManager.default.contents(atPath: folder + "/stage.json"),
               let json = try JSONSerialization.jsonObject(with: data) as? [String: Any], (json["label"] as? String)?.hasPrefix(label) == true {
                return folder
            }
        }
        throw CocoaError(.fileNoSuchFile)
    }

    @Test func newVolumesAreSegmentedInTheirOwnGeometry() throws {
        let dir = try trained()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A NIfTI-2 volume stored LPS with an offset and unequal voxels, and a folder of phantom scans.
        try FileManager.default.copyItem(atPath: Self.fixtures + "/twin_nifti2.nii.gz", toPath: dir + "/in/twin.nii.gz")
        let scans = try stageFolder(dir, "prepare") + "/dataset/imagesTr"
        let r = try cli.run(["predict", "teacher", "--spec", "spec.yaml", "in/twin.nii.gz", scans, "-o", "out", "--threads", "1"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/out")
        let written = files.filter { $0.hasSuffix(".nii.gz") }.sorted()
        let expected = (["twin.nii.gz"] + (try FileManager.default.contentsOfDirectory(atPath: scans))).sorted()
        #expect(written == expected)
        // Beside each label map, its JSON: the warnings printed and the intensity comparison
        // with the training data's foreground (kept by prepare for every modality).
        #expect(files.filter { $0.hasSuffix(".json") }.sorted() == expected.map { String($0.dropLast(7)) + ".json" })
        let scan = try #require(expected.first { $0 != "twin.nii.gz" })
        let sidecar = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/" + scan.dropLast(7) + ".json"))) as? [String: Any])
        let intensities = try #require(sidecar["intensities"] as? [[String: Any]])
        #expect(intensities.count == 1 && (intensities.first?["training"] as? [String: Any])?["percentiles"] as? [Double] == [0.5, 99.5], "\(sidecar)")
        #expect(sidecar["intensities_not_compared"] is NSNull && (sidecar["inputs"] as? [String])?.first?.hasSuffix(scan) == true)
        let warned = (sidecar["warnings"] as? [String] ?? []).contains { $0.hasPrefix("warning[W0813]") }
        #expect(warned == (intensities.first?["unlike_training"] as? Bool ?? false))

        for name in ["twin.nii.gz", try #require(expected.first { $0 != "twin.nii.gz" })] {
            let input = try NIfTI.read(name == "twin.nii.gz" ? dir + "/in/twin.nii.gz" : scans + "/" + name)
            let output = try NIfTI.read(dir + "/out/" + name)
            #expect(output.dims == input.dims, "\(name)")
            #expect(output.orientation.code == input.orientation.code, "\(name)")
            #expect(zip(output.spacing, input.spacing).allSatisfy { abs($0 - $1) < 1e-5 }, "\(name)")
            #expect(zip(output.orientation.affine.joined(), input.orientation.affine.joined()).allSatisfy { abs($0 - $1) < 1e-4 }, "\(name)")
            #expect(output.data.allSatisfy { $0 == 0 || $0 == 1 })
        }
        #expect(try NIfTI.read(dir + "/in/twin.nii.gz").orientation.code == "LPS")

        // The stage's checkpoint given as a file gives the same label maps.
        let best = try stageFolder(dir, "train teacher") + "/best.safetensors"
        let again = try cli.run(["predict", best, "--stage", "teacher", "--spec", "spec.yaml", "in", "-o", "again", "--threads", "1"], in: dir)
        #expect(again.status == 0, "\(again.err)")
        #expect(try NIfTI.read(dir + "/again/twin.nii.gz").data == NIfTI.read(dir + "/out/twin.nii.gz").data)

        // The plan puts what the store's stages took beside its predictions; status the prediction beside each stage.
        let plan = try cli.run(["plan", "spec.yaml"], in: dir)
        #expect(plan.status == 0 && plan.out.contains("time/ran") && plan.out.contains("peak RSS"), "\(plan.out)")
        #expect(plan.out.contains("stages are in the store: they took"), "\(plan.out)")
        let status = try cli.run(["status", "spec.yaml"], in: dir)
        #expect(status.status == 0 && status.out.contains("(planned "), "\(status.out)")

        // A stage that differs between variants needs one.
        let ambiguous = try cli.run(["predict", "kd", "--spec", "spec.yaml", "in", "-o", "kd"], in: dir)
        #expect(ambiguous.status == 2 && ambiguous.err.contains("choose one with --variant (temperature=low, temperature=high)"), "\(ambiguous.err)")
        let chosen = try cli.run(["predict", "kd", "--variant", "temperature=high", "--spec", "spec.yaml", "in", "-o", "kd", "--threads", "1"], in: dir)
        #expect(chosen.status == 0, "\(chosen.err)")
    }

    @Test func badInputsAreNamedAndTheOthersStillWritten() throws {
        let dir = try trained()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Self.fixtures + "/twin_nifti1.nii.gz", toPath: dir + "/in/good.nii.gz")
        // A 2D image, and a 4D one with two modalities: NIfTI-1 files whose dim[0] (byte 40) says so.
        func patched(_ name: String, dims: [Int], header: [Int16]) throws {
            let v = Volume(dims: dims, spacing: [1, 1, 1], data: [Float](repeating: 5, count: dims.reduce(1, *)), datatype: "INT16")
            try NIfTI.write(v, to: dir + "/in/" + name, datatype: 4)
            var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/in/" + name))
            for (i, d) in header.enumerated() { withUnsafeBytes(of: d.littleEndian) { bytes.replaceSubrange((40 + 2 * i)..<(42 + 2 * i), with: $0) } }
            try bytes.write(to: URL(fileURLWithPath: dir + "/in/" + name))
        }
        try patched("flat.nii", dims: [20, 16, 1], header: [2, 20, 16, 1])
        try patched("modalities.nii", dims: [20, 16, 2], header: [4, 20, 16, 1, 2])
        try "not an image".write(toFile: dir + "/in/junk.nii.gz", atomically: true, encoding: .utf8)
        // A volume whose sform and qform disagree by 6 mm: segmented where the sform puts it, and said (W0811).
        try FileManager.default.copyItem(atPath: CLITests.repository + "/Tests/SpecTests/Fixtures/data/transforms/labelsTr/case_2.nii.gz",
                                         toPath: dir + "/in/tilted.nii.gz")
        let r = try cli.run(["predict", "teacher", "--spec", "spec.yaml", "in", "-o", "out", "--threads", "1"], in: dir)
        #expect(r.out.contains("warning[W0811]: in/tilted.nii.gz: its sform and qform are both set and lie 6.0 mm apart; the sform is used"), "\(r.out)")
        #expect(r.status == 1)
        #expect(r.err.contains("in/flat.nii: expected a 3D volume, found dimensions [20, 16]"), "\(r.err)")
        #expect(r.err.contains("error: in/modalities.nii: has 2 modalities, the stage's training data declares 1 (CT)\n"), "\(r.err)")
        #expect(r.err.contains("in/junk.nii.gz"), "\(r.err)")
        #expect(r.err.contains("3 of 5 volumes not segmented; the others are in out"), "\(r.err)")
        // The good volumes are written, and nothing half-written is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted() == ["good.json", "good.nii.gz", "tilted.json", "tilted.nii.gz"])

        // Usage errors exit 2 and say what to do.
        let cases: [([String], String)] = [
            (["predict", "nope", "--spec", "spec.yaml", "in", "-o", "x"], "no trained stage 'nope' in the spec; stages: teacher, kd"),
            (["predict", "runs/missing.safetensors", "--spec", "spec.yaml", "in", "-o", "x"], "no such checkpoint 'runs/missing.safetensors'"),
            (["predict", try stageFolder(dir, "train teacher") + "/best.safetensors", "--spec", "spec.yaml", "in", "-o", "x"], "a checkpoint file needs --stage"),
            (["predict", "teacher", "--spec", "spec.yaml", "in/absent.nii.gz", "-o", "x"], "no such file or folder 'in/absent.nii.gz'"),
            (["predict", "teacher", "--spec", "spec.yaml", "runs", "-o", "x"], "no NIfTI volumes (.nii, .nii.gz) in the folder 'runs'"),
            (["predict", "teacher", "--spec", "spec.yaml", "--store", "elsewhere", "in", "-o", "x"], "is not trained in elsewhere: run `distill run` or `distill sweep` first"),
            (["predict", "teacher", "--spec", "spec.yaml", "in/good.nii.gz", "-o", "in"], "the prediction would overwrite it"),
            (["predict", "teacher", "--spec", "spec.yaml", "-o", "x"], "Missing expected argument '<inputs> ...'"),
            (["predict", "teacher", "--spec", "spec.yaml", "in", "-o", "x", "--threads", "0"], "--threads must be between 1 and 1024, not 0"),
        ]
        for (arguments, message) in cases {
            let e = try cli.run(arguments, in: dir)
            #expect(e.status == 2 && e.err.contains(message), "\(arguments): \(e.status) \(e.err)")
        }
    }
}
