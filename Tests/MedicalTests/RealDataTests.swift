import Foundation
import Medical
import StageConfig
import Testing

/// Real volumes (Colin27 and its AAL atlas grouped into lobes, from Debian's
/// mricron-data) made into small dataset folders by RealData/make_datasets.py,
/// with nibabel, as other tools write them; and the patient-grid metrics checked
/// against RealData/reference_metrics.py (nibabel and scipy.ndimage).
enum RealData {
    static let python = "/usr/bin/python3"
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("RealData").path
    static let templates = "/usr/share/mricron/templates"
    static var available: Bool { FileManager.default.fileExists(atPath: templates + "/aal.nii.gz") }
    static let lobes = [1000, 2000, 3000, 4000]

    /// The folders, made once per test process.
    static let root: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-realdata-\(getpid())").path
        if !FileManager.default.fileExists(atPath: dir + "/pairs") {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try? run(scripts + "/make_datasets.py", [dir])
        }
        return dir
    }()

    /// Runs a script with Debian's Python; its standard output.
    static func run(_ script: String, _ arguments: [String], input: Data? = nil) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script] + arguments
        let inPipe = Pipe(), out = Pipe(), err = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (inPipe, out, err)
        try p.run()
        if let input { inPipe.fileHandleForWriting.write(input) }
        try inPipe.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw RealDataError(message: "\(script) failed (`make test` installs mricron-data, python3-nibabel and python3-scipy): \(problem)")
        }
        return data
    }

    /// The reference's metrics for (truth, prediction) files: per pair, per class.
    static func reference(_ pairs: [(truth: String, pred: String)], values: [Int], tolerance: [Double]) throws -> [[[String: Any]]] {
        let problems = pairs.map { ["truth": $0.truth, "pred": $0.pred, "values": values, "tolerance": tolerance] as [String: Any] }
        let data = try run(scripts + "/reference_metrics.py", [], input: try JSONSerialization.data(withJSONObject: problems))
        return try JSONSerialization.jsonObject(with: data) as? [[[String: Any]]] ?? []
    }
}

struct RealDataError: Error, CustomStringConvertible { var message: String; var description: String { message } }

@Suite(.serialized) struct SurfaceMetricsTests {
    static func classes(_ v: Volume) -> [UInt8] {
        v.data.map { value in RealData.lobes.firstIndex(of: Int(value)).map { UInt8($0 + 1) } ?? 0 }
    }

    static func close(_ a: Double?, _ b: Any?, _ tolerance: Double) -> Bool {
        guard let a else { return b == nil || b is NSNull }
        guard let b = (b as? NSNumber)?.doubleValue else { return false }
        return abs(a - b) <= tolerance * max(1, abs(b))
    }

    /// Dice, HD95 (mm, anisotropic voxels of 3 x 3 x 4) and NSD at 2 and 5 mm on real label
    /// maps against moved and damaged copies, with a class missing from one prediction.
    @Test(.enabled(if: RealData.available, "needs Debian's mricron-data (make test installs it)"))
    func patientGridMetricsMatchScipy() throws {
        let root = RealData.root + "/pairs"
        let names = ["brain_1", "brain_2", "brain_3"]
        let pairs = names.map { (truth: "\(root)/\($0)_truth.nii.gz", pred: "\(root)/\($0)_pred.nii.gz") }
        let tolerance = [2.0, 2.0, 5.0, 5.0]
        let reference = try RealData.reference(pairs, values: RealData.lobes, tolerance: tolerance)
        try #require(reference.count == 3)
        var missing = 0
        for (pair, expected) in zip(pairs, reference) {
            let truth = try NIfTI.read(pair.truth), pred = try NIfTI.read(pair.pred)
            #expect(truth.spacing == [3, 3, 4])
            let mine = SegmentationMetrics.compare(prediction: Self.classes(pred), truth: Self.classes(truth), dims: truth.dims,
                                                   spacing: truth.spacing, classes: 4, tolerance: tolerance, hd95: .monai)
            let medpy = SegmentationMetrics.compare(prediction: Self.classes(pred), truth: Self.classes(truth), dims: truth.dims,
                                                    spacing: truth.spacing, classes: 4, tolerance: tolerance, hd95: .medpy)
            for (k, (m, e)) in zip(mine, expected).enumerated() {
                #expect(m.tp == e["tp"] as? Int && m.fp == e["fp"] as? Int && m.fn == e["fn"] as? Int, "\(pair.pred) class \(k)")
                #expect(Self.close(m.dice, e["dice"], 1e-12), "\(pair.pred) class \(k): Dice \(m.dice ?? .nan) against \(e["dice"] ?? "")")
                #expect(Self.close(m.hd95, e["hd95_monai"], 1e-9), "\(pair.pred) class \(k): HD95 \(m.hd95 ?? .nan) against MONAI's \(e["hd95_monai"] ?? "")")
                #expect(Self.close(medpy[k].hd95, e["hd95_medpy"], 1e-9), "\(pair.pred) class \(k): HD95 \(medpy[k].hd95 ?? .nan) against MedPy's \(e["hd95_medpy"] ?? "")")
                if let a = m.hd95, let b = medpy[k].hd95 { #expect(a >= b - 1e-9, "MONAI's HD95 is never below the pooled one") }
                #expect(Self.close(m.nsd, e["nsd"], 1e-12), "\(pair.pred) class \(k): NSD \(m.nsd ?? .nan) against \(e["nsd"] ?? "")")
                if m.hd95 == nil { missing += 1 }
            }
        }
        #expect(missing == 1, "the occipital lobe the third prediction misses has no surface distance")
    }

    /// The default HD95 against MONAI's own (monai_hd95.json, written by MONAI 1.6.1's
    /// compute_hausdorff_distance on the same pairs; it computes in float32).
    @Test(.enabled(if: RealData.available, "needs Debian's mricron-data (make test installs it)"))
    func theDefaultHD95IsMONAIs() throws {
        let fixture = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: RealData.scripts + "/monai_hd95.json"))) as? [String: Any])
        let root = RealData.root + "/pairs"
        for name in ["brain_1", "brain_2", "brain_3"] {
            let expected = try #require(fixture[name] as? [Any])
            let truth = try NIfTI.read("\(root)/\(name)_truth.nii.gz"), pred = try NIfTI.read("\(root)/\(name)_pred.nii.gz")
            let mine = SegmentationMetrics.compare(prediction: Self.classes(pred), truth: Self.classes(truth), dims: truth.dims,
                                                   spacing: truth.spacing, classes: 4, tolerance: [2, 2, 2, 2], hd95: .monai)
            for (k, (m, e)) in zip(mine, expected).enumerated() {
                #expect(Self.close(m.hd95, e, 1e-5), "\(name) class \(k): HD95 \(m.hd95 ?? .nan) against MONAI's \(e)")
            }
        }
    }

    /// The distance transform against the brute force over every pair of voxels.
    @Test func distanceTransformIsExact() {
        let dims = [7, 5, 4], spacing = [0.8, 1.5, 3.0]
        var bits = UInt64(12345)
        let sites = (0..<140).map { _ -> Bool in
            bits = bits &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return bits >> 61 == 0
        }
        let fast = SegmentationMetrics.distanceTransform(sites, dims: dims, spacing: spacing)
        for z in 0..<4 { for y in 0..<5 { for x in 0..<7 {
            var best = Double.infinity
            for zz in 0..<4 { for yy in 0..<5 { for xx in 0..<7 where sites[(zz * 5 + yy) * 7 + xx] {
                let d = pow(Double(x - xx) * spacing[0], 2) + pow(Double(y - yy) * spacing[1], 2) + pow(Double(z - zz) * spacing[2], 2)
                best = min(best, d)
            } } }
            let got = fast[(z * 5 + y) * 7 + x]
            #expect(abs(got - best) < 1e-9, "voxel \(x),\(y),\(z): \(got) against \(best)")
        } } }
    }
}
