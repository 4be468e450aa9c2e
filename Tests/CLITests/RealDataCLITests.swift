import Foundation
import Medical
import Testing

/// What a new user meets with real volumes written by other tools (Colin27 and AAL
/// lobes from Debian's mricron-data, made into dataset folders with nibabel by
/// Tests/MedicalTests/RealData/make_datasets.py): every defect refused before
/// anything trains, with one id in `check` and in `run`; metrics on the patient's
/// grid equal to scipy's; the plan's step count equal to the run's; `predict` reads
/// what `run` reads and keeps the input's header.
@Suite(.serialized) struct RealDataCLITests {
    let cli = CLITests()
    static let scripts = CLITests.repository + "/Tests/MedicalTests/RealData"
    static var available: Bool { FileManager.default.fileExists(atPath: "/usr/share/mricron/templates/aal.nii.gz") }

    static let root: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-realcli-\(getpid())").path
        if !FileManager.default.fileExists(atPath: dir + "/good") { _ = try? python([scripts + "/make_datasets.py", dir]) }
        return dir
    }()

    @discardableResult
    static func python(_ arguments: [String], input: Data? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = arguments
        let inPipe = Pipe(), out = Pipe(), err = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (inPipe, out, err)
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(input) }
        try inPipe.fileHandleForWriting.close()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw RealDataCLIError(message: "python failed (`make test` installs python3-nibabel and python3-scipy): \(problem)") }
        return text
    }

    /// A spec over `folder` of the real data (four lobes, 16-bit label codes, one T1 or both contrasts).
    static func spec(_ folder: String, modalities: [String] = ["T1"], epochs: Int = 1) -> String {
        """
        name: colin lobes
        data:
          source:
            msd: \(root)/\(folder)
          foreground: {frontal: 1000, parietal: 2000, temporal: 3000, occipital: 4000}
          preprocess: {normalize: zscore, size: 64, modalities: [\(modalities.joined(separator: ", "))], channels: \(modalities.count)}
          split: {test: 0.34, val: 0.17}
          subsets: {full: {fraction: 1.0}}
        models:
          net: {arch: unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1, heads: {segmentation: 5}}
        stages:
          s: {model: net, data: full, loss: [{kind: dice_ce}], optimizer: {kind: adam, lr: 0.01}, epochs: \(epochs), batch: 8}
        evaluate: {nsd_tolerance: {frontal: 2, parietal: 2, temporal: 4, occipital: 4}}

        """
    }

    func folder(_ spec: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-real-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test(.enabled(if: available, "needs Debian's mricron-data"))
    func everyDefectIsRefusedBeforeAnythingTrainsWithOneIdInCheckAndRun() throws {
        let header: [(folder: String, id: String, says: String)] = [
            ("shifted", "E0806", "brain_2.nii.gz does not lie on the grid of"), ("flipped", "E0806", "its header orients it LAS where the image's says RAS"),
            ("dims", "E0806", "dimensions [59, 72, 45] against [61, 72, 45]"), ("unlisted", "E0803", "in imagesTr/ that dataset.json does not list: imagesTr/brain_99.nii.gz"),
            // The sform 20 mm off (the qform aligned): the sform is what the NIfTI standard and nibabel use.
            ("sformoff", "E0806", "brain_2.nii.gz does not lie on the grid of"),
        ]
        for defect in header {
            let dir = try folder(Self.spec(defect.folder))
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let check = try cli.run(["check", "spec.yaml"], in: dir)
            #expect(check.status == 1 && check.out.contains("spec.yaml:4:10: error[\(defect.id)]") && check.out.contains(defect.says), "\(defect.folder): \(check.out)")
            let plan = try cli.run(["plan", "spec.yaml"], in: dir)
            #expect(plan.status == 1 && plan.out.contains("error[\(defect.id)]"), "\(defect.folder): \(plan.out)")
            // A plan written elsewhere, run here: the prepare stage finds the same problem, with the same id.
            let run = try cli.run(["run", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
            #expect(run.status == 1 && run.out.contains("error[\(defect.id)]"), "\(defect.folder): \(run.out)")
        }
        // Defects only the voxels show: refused when the data is prepared, every value and case named.
        let voxels: [(folder: String, id: String, says: String)] = [
            ("undeclared", "E0807", "label values 7 (brain_1), 300 (brain_1, brain_4) are neither a class of data.foreground nor data.background (0)"),
            ("fraction", "E0807", "labels that are not whole numbers (a label map resampled with interpolation?): labelsTr/brain_5.nii.gz"),
            ("nan", "E0808", "images with NaN or infinite voxels: imagesTr/brain_6.nii.gz ("),
        ]
        for defect in voxels {
            let dir = try folder(Self.spec(defect.folder))
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let run = try cli.run(["run", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
            #expect(run.status == 1 && run.out.contains("error[\(defect.id)]: " + defect.says), "\(defect.folder): \(run.out)")
            #expect(!run.out.contains("train s"), "\(defect.folder): a stage trained")
            // The headers pass `check`; `check --data` reads every voxel and refuses the same, with the scan's throughput.
            #expect(try cli.run(["check", "spec.yaml"], in: dir).status == 0, "\(defect.folder)")
            let scanned = try cli.run(["check", "--data", "spec.yaml"], in: dir)
            #expect(scanned.status == 1 && scanned.out.contains("spec.yaml:4:10: error[\(defect.id)]: " + defect.says), "\(defect.folder): \(scanned.out)")
            #expect(scanned.err.contains("voxels of \(defect.folder): 6 cases read in") && scanned.err.contains("M voxels/s; "), "\(defect.folder): \(scanned.err)")
            // submit reads them before anything is queued (here before it even asks for execution.slurm).
            let submit = try cli.run(["submit", "spec.yaml", "--dry-run"], in: dir)
            #expect(submit.status == 1 && submit.out.contains("error[\(defect.id)]") && submit.err.contains("nothing submitted"), "\(defect.folder): \(submit.out) \(submit.err)")
        }
        // A gzip stream cut short after the header: every header reads, the voxels do not.
        let cut = try folder(Self.spec("truncated"))
        defer { try? FileManager.default.removeItem(atPath: cut) }
        try FileManager.default.copyItem(atPath: Self.root + "/good", toPath: cut + "/truncated")
        let victim = cut + "/truncated/imagesTr/brain_3.nii.gz"
        let whole = try Data(contentsOf: URL(fileURLWithPath: victim))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: victim))
        let truncatedSpec = Self.spec("truncated").replacingOccurrences(of: Self.root + "/truncated", with: "truncated")
        try truncatedSpec.write(toFile: cut + "/spec.yaml", atomically: true, encoding: .utf8)
        #expect(try cli.run(["check", "spec.yaml"], in: cut).status == 0)
        let truncated = try cli.run(["check", "--data", "spec.yaml"], in: cut)
        #expect(truncated.status == 1 && truncated.out.contains("imagesTr/brain_3.nii.gz") && truncated.err.contains("1 problem"), "\(truncated.out) \(truncated.err)")
        let good = try folder(Self.spec("good"))
        defer { try? FileManager.default.removeItem(atPath: good) }
        #expect(try cli.run(["check", "--data", "spec.yaml"], in: good).status == 0)
        // The qform 20 mm off, the sform aligned: the sform is used, and the disagreement is a warning.
        let qform = try folder(Self.spec("qformoff"))
        defer { try? FileManager.default.removeItem(atPath: qform) }
        let warned = try cli.run(["check", "spec.yaml"], in: qform)
        #expect(warned.status == 0 && warned.out.contains("warning[W0811]: labelsTr/brain_2.nii.gz: its sform and qform are both set and lie 20.0 mm apart"), "\(warned.out)")
        let inspect = try cli.run(["data", "inspect", Self.root + "/undeclared"])
        #expect(inspect.status == 1 && inspect.out.contains("problem: label values 7 (brain_1), 300 (brain_1, brain_4) are not among dataset.json's labels"), "\(inspect.out)")
        #expect(try cli.run(["data", "inspect", Self.root + "/good"]).status == 0)
        // A modality the dataset does not have, and a folder that is not there (a warning: the data may be on a cluster).
        let t2 = try folder(Self.spec("good", modalities: ["T2"]))
        defer { try? FileManager.default.removeItem(atPath: t2) }
        let modality = try cli.run(["check", "spec.yaml"], in: t2)
        #expect(modality.status == 1 && modality.out.contains("error[E0804]: the spec picks modality 'T2', but dataset.json declares T1"), "\(modality.out)")
        let gone = try folder(Self.spec("not-here"))
        defer { try? FileManager.default.removeItem(atPath: gone) }
        let missing = try cli.run(["check", "spec.yaml"], in: gone)
        #expect(missing.status == 0 && missing.out.contains("warning[W0801]: dataset folder '\(Self.root)/not-here' is not there"), "\(missing.out)")
    }

    /// The real-layout folder trained for one epoch: the plan's steps are the run's, and every
    /// test case's metrics (16-bit codes, 3 x 3 x 4 mm voxels) are what scipy computes from the
    /// written prediction and the label file.
    @Test(.enabled(if: available, "needs Debian's mricron-data"))
    func metricsOnThePatientsGridMatchScipyAndStepsMatchThePlan() throws {
        let dir = try folder(Self.spec("good", epochs: 2))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let planned = try cli.run(["plan", "spec.yaml", "--format", "json"], in: dir)
        #expect(planned.status == 0, "\(planned.err)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(planned.out.utf8)) as? [String: Any])
        let stages = try #require(plan["stages"] as? [[String: Any]])
        let train = try #require(stages.first { $0["kind"] as? String == "train" })
        let evaluate = try #require(stages.first { $0["kind"] as? String == "evaluate" })
        let run = try cli.run(["run", "spec.yaml", "--store", "s", "--threads", "2"], in: dir)
        #expect(run.status == 0, "\(run.out.suffix(1500))")
        let store = dir + "/s/stages/"
        let done = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: store + "\(train["hash"] ?? "")/done"))) as? [String: Any])
        #expect((train["cost"] as? [String: Any])?["steps"] as? Int == done["steps"] as? Int, "planned \(train["cost"] ?? "") against run \(done["steps"] ?? "")")

        let folder = store + "\(evaluate["hash"] ?? "")"
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/metrics.json"))) as? [String: Any])
        #expect(metrics["grid"] as? String == "patient")
        let cases = try #require(metrics["cases"] as? [[String: Any]])
        try #require(!cases.isEmpty)
        let names = ["frontal", "parietal", "temporal", "occipital"]
        let problems: [[String: Any]] = cases.map { c in
            let id = c["case"] as? String ?? ""
            return ["truth": Self.root + "/good/labelsTr/\(id).nii.gz", "pred": folder + "/predictions/\(id).nii.gz",
                    "values": [1000, 2000, 3000, 4000], "tolerance": [2.0, 2.0, 4.0, 4.0]]
        }
        let out = try Self.python([Self.scripts + "/reference_metrics.py"], input: try JSONSerialization.data(withJSONObject: problems))
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[[String: Any]]])
        func same(_ a: Any?, _ b: Any?) -> Bool {
            switch (a as? NSNumber, b as? NSNumber) {
            case (nil, nil): return true
            case (let x?, let y?): return abs(x.doubleValue - y.doubleValue) <= 1e-9 * max(1, abs(y.doubleValue))
            default: return false
            }
        }
        for (c, expected) in zip(cases, reference) {
            let classes = try #require(c["classes"] as? [String: [String: Any]])
            for (name, e) in zip(names, expected) {
                // The run's HD95 is the default convention, MONAI's.
                for (key, reference) in [("tp", "tp"), ("fp", "fp"), ("fn", "fn"), ("dice", "dice"), ("hd95", "hd95_monai"), ("nsd", "nsd")] {
                    #expect(same(classes[name]?[key], e[reference]), "\(c["case"] ?? "") \(name) \(key): \(classes[name]?[key] ?? "nil") against \(e[reference] ?? "nil")")
                }
            }
        }
        // The label maps keep the label files' 16-bit codes.
        let prediction = try NIfTI.read(folder + "/predictions/\(cases[0]["case"] as? String ?? "").nii.gz")
        #expect(Set(prediction.data).isSubset(of: [0, 1000, 2000, 3000, 4000]))
    }

    /// `distill predict` reads nnU-Net's per-modality files and MSD's 4D files as `run` does,
    /// answers NIfTI-2 with NIfTI-2, and keeps the input's header but for datatype, scaling
    /// and the dimensions beyond three.
    @Test(.enabled(if: available, "needs Debian's mricron-data"))
    func predictReadsWhatRunReadsAndKeepsTheHeader() throws {
        let dir = try folder(Self.spec("nnunet", modalities: ["T1", "T2"]))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try cli.run(["run", "spec.yaml", "--store", "s", "--threads", "2"], in: dir)
        #expect(run.status == 0, "\(run.out.suffix(1500))")
        // Inputs: nnU-Net's two files of a case, a 4D file, and that 4D file as NIfTI-2 with codes and units of its own.
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        for k in ["0000", "0001"] {
            try FileManager.default.copyItem(atPath: Self.root + "/nnunet/imagesTr/brain_3_\(k).nii.gz", toPath: dir + "/in/brain_3_\(k).nii.gz")
        }
        try FileManager.default.copyItem(atPath: Self.root + "/fourd/imagesTr/brain_4.nii.gz", toPath: dir + "/in/brain_4.nii.gz")
        try Self.python(["-c", """
            import nibabel as nib, numpy as np
            src = nib.load('\(Self.root)/fourd/imagesTr/brain_5.nii.gz')
            img = nib.Nifti2Image(np.asarray(src.dataobj), src.affine)
            img.set_qform(src.affine, code=2)
            img.set_sform(src.affine, code=4)
            img.header.set_xyzt_units('mm', 'sec')
            img.header['intent_code'] = 1002
            img.header['descrip'] = b'made by nibabel for distill'
            nib.save(img, '\(dir)/in/brain_5_n2.nii.gz')
            """])
        let p = try cli.run(["predict", "s", "--spec", "spec.yaml", "--store", "s", "in", "-o", "out", "--threads", "1"], in: dir)
        #expect(p.status == 0, "\(p.out)\(p.err)")
        #expect(p.out.contains("in/brain_3_0000.nii.gz (+1 modality) -> out/brain_3.nii.gz"), "\(p.out)")
        let report = try Self.python(["-c", """
            import nibabel as nib, json
            out = {}
            for i, o in [('in/brain_3_0000.nii.gz', 'out/brain_3.nii.gz'), ('in/brain_4.nii.gz', 'out/brain_4.nii.gz'), ('in/brain_5_n2.nii.gz', 'out/brain_5_n2.nii.gz')]:
                a, b = nib.load('\(dir)/' + i).header, nib.load('\(dir)/' + o).header
                same = {k: bool((a[k] == b[k]).all()) for k in ['qform_code', 'sform_code', 'xyzt_units', 'intent_code', 'descrip', 'srow_x', 'srow_y', 'srow_z', 'quatern_b', 'quatern_c', 'quatern_d', 'qoffset_x']}
                same['pixdim'] = bool((a['pixdim'][1:4] == b['pixdim'][1:4]).all())
                same['shape'] = a.get_data_shape()[:3] == b.get_data_shape()
                same['format'] = type(a).__name__ == type(b).__name__
                out[o] = {'same': same, 'format': type(b).__name__, 'dtype': str(b.get_data_dtype())}
            print(json.dumps(out))
            """])
        let headers = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: [String: Any]])
        for (file, h) in headers {
            let same = try #require(h["same"] as? [String: Bool])
            #expect(same.values.allSatisfy { $0 }, "\(file): \(same.filter { !$0.value }.keys.sorted()) differ from the input's header")
            #expect(h["dtype"] as? String == "uint16", "\(file): 16-bit label codes need uint16, found \(h["dtype"] ?? "")")
        }
        #expect(headers["out/brain_5_n2.nii.gz"]?["format"] as? String == "Nifti2Header")
    }
}

struct RealDataCLIError: Error, CustomStringConvertible { var message: String; var description: String { message } }
