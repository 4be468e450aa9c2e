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
        let set = try SliceSet.prepare(dataset, settings, classes: .merged([1]), background: [0], cache: dir + "/slices.bin")
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
        let start = Date()
        let settings = Preprocessing(sliceAxis: .axial, window: .clip255, modalities: nil, normalize: [.window], height: 256, width: 256, channels: 3, keepEmpty: 1)
        let set = try SliceSet.prepare(dataset, settings, classes: .merged([1]), background: [0], cache: dir + "/slices.bin")
        return (Double(set.count) / Date().timeIntervalSince(start), set.count)
    }
}
