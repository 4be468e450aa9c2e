import Foundation
import Medical
import StageConfig
import Tensor

/// Data-path figures: preprocessing throughput and the time to load a training batch.
public enum DataBenchmark {
    /// Writes a phantom of `cases` 256x256x48 volumes, preprocesses it to 256x256
    /// slices, and times loading batches of 16 from the memory-mapped cache.
    public static func run(cases: Int = 8) throws -> (slicesPerSecond: Double, batchMilliseconds: Double, slices: Int) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-data-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Phantom.write(PhantomSettings(cases: cases, seed: 5, size: 256, slices: 48, noise: 20, hardCases: 0.25, modalities: ["CT"]), to: dir)
        let dataset = try MSDDataset.load(dir)
        let start = Date()
        let settings = Preprocessing(sliceAxis: .axial, window: .hounsfield(low: -160, high: 240), modalities: nil, normalize: [.window], height: 256, width: 256, channels: 3, keepEmpty: 1)
        // The spleen is the class; the phantom's liver and kidneys are background.
        let set = try SliceSet.prepare(dataset, settings, classes: .merged([1]), background: [0, 2, 3], cache: dir + "/slices.bin")
        let prep = Date().timeIntervalSince(start)
        var rng = RNG(seed: 1)
        var times: [Double] = []
        for _ in 0..<20 {
            let idx = (0..<16).map { _ in rng.below(set.count) }
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = set.batch(idx)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return (Double(set.count) / prep, times.sorted()[times.count / 2], set.count)
    }

    /// Preprocessing throughput on a real volume written by another tool: Debian's
    /// mricron-data ch2 MRI template (181x217x181) with the AAL label map as its label.
    public static func realVolume() throws -> (slicesPerSecond: Double, slices: Int)? {
        let templates = "/usr/share/mricron/templates"
        guard FileManager.default.fileExists(atPath: templates + "/ch2.nii.gz") else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-real-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let manifest = #"{"training": [{"image": "\#(templates)/ch2.nii.gz", "label": "\#(templates)/aal.nii.gz"}], "labels": {"0": "background", "1": "region"}}"#
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        let dataset = try MSDDataset.load(dir)
        // Every AAL region is foreground (one merged class): each label value is accounted for.
        let regions = Set(try NIfTI.read(templates + "/aal.nii.gz").data.map { Int($0) }).subtracting([0]).sorted()
        let start = Date()
        let settings = Preprocessing(sliceAxis: .axial, window: .clip255, modalities: nil, normalize: [.window], height: 256, width: 256, channels: 3, keepEmpty: 1)
        let set = try SliceSet.prepare(dataset, settings, classes: .merged(regions), background: [0], cache: dir + "/slices.bin")
        return (Double(set.count) / Date().timeIntervalSince(start), set.count)
    }

    /// The header scan `distill check` and `plan` make of a dataset: `cases` cases of a
    /// 64x64x32 CT and its label (gzipped NIfTI-1), listed in dataset.json.
    public static func headerScan(cases: Int = 1000) throws -> (seconds: Double, cases: Int) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-scan-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Phantom.write(PhantomSettings(cases: 1, seed: 5, size: 64, slices: 32, noise: 20, hardCases: 0, modalities: ["CT"]), to: dir + "/one")
        let one = try MSDDataset.load(dir + "/one")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/imagesTr", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/labelsTr", withIntermediateDirectories: true)
        var training: [String] = []
        for i in 0..<cases {
            try fm.copyItem(atPath: one.cases[0].image, toPath: "\(dir)/imagesTr/case_\(i).nii.gz")
            try fm.copyItem(atPath: one.cases[0].label, toPath: "\(dir)/labelsTr/case_\(i).nii.gz")
            training.append(#"{"image": "./imagesTr/case_\#(i).nii.gz", "label": "./labelsTr/case_\#(i).nii.gz"}"#)
        }
        try Data(#"{"modality": {"0": "CT"}, "labels": {"0": "background", "1": "spleen"}, "training": [\#(training.joined(separator: ","))]}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        let start = Date()
        let scan = DatasetScan.scan(dir, modalities: nil, analyzeOrientation: nil)
        let seconds = Date().timeIntervalSince(start)
        guard scan.problems.isEmpty, scan.cases.count == cases else { throw DatasetProblems(scan.problems) }
        return (seconds, cases)
    }
}
