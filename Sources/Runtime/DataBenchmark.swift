import Foundation
import Medical
import Tensor

/// Data-path figures: preprocessing throughput and the time to load a training batch.
public enum DataBenchmark {
    /// Writes a phantom of `cases` 256x256x48 volumes, preprocesses it to 256x256
    /// slices, and times loading batches of 16 from the memory-mapped cache.
    public static func run(cases: Int = 8) throws -> (slicesPerSecond: Double, batchMilliseconds: Double, slices: Int) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-bench-data-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Phantom.write(PhantomSettings(cases: cases, seed: 5, size: 256, slices: 48), to: dir)
        let dataset = try MSDDataset.load(dir)
        let start = Date()
        let set = try SliceSet.prepare(dataset, PreprocessSettings(height: 256, width: 256, channels: 3), cache: dir + "/slices.bin")
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
}
