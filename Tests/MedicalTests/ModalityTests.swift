import Foundation
import Medical
import StageConfig
import Testing

/// Multi-modal volumes (4D files, nnU-Net's one file per modality), the modalities a
/// spec chooses, and normalisation per modality.
@Suite struct ModalityTests {
    static let fixtures = NIfTITests.fixtures

    /// A 4D file written by nibabel (Fixtures/make_fixtures.py): each modality equals what
    /// nibabel reads in canonical order, slope and intercept applied.
    @Test func fourDimensionalModalitiesReadAsNibabelDoes() throws {
        let volumes = try NIfTI.readChannels(Self.fixtures + "/modalities_4d.nii.gz")
        let expected = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/expected_4d.json"))) as? [String: Any])
        let shape = try #require(expected["shape"] as? [Int])
        let modalities = try #require(expected["modalities"] as? [[String: Any]])
        #expect(volumes.count == shape[3] && volumes.count == modalities.count)
        for (v, e) in zip(volumes, modalities) {
            #expect(v.dims == Array(shape.prefix(3)) && v.orientation.code == "LPS")
            for voxel in try #require(e["voxels"] as? [[Double]]) {
                #expect(Double(v[Int(voxel[0]), Int(voxel[1]), Int(voxel[2])]) == voxel[3], "voxel \(voxel)")
            }
            #expect(abs(v.data.reduce(0.0) { $0 + Double($1) } - (try #require(e["sum"] as? Double))) < 1e-6)
        }
        // A single-volume read refuses it, naming its shape in the file's order.
        #expect(throws: NIfTIError.notThreeD(Self.fixtures + "/modalities_4d.nii.gz", dims: [12, 10, 6, 3])) {
            try NIfTI.read(Self.fixtures + "/modalities_4d.nii.gz")
        }
    }

    /// The phantom's second modality round-trips through a 4D file, and the spec's choice
    /// and order of modalities is what the slices hold.
    @Test func modalitiesAreChosenByNameInTheSpecsOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-modalities-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let settings = TestSettings.phantom(cases: 2, size: 16, slices: 4, modalities: ["CT", "T1"])
        try Phantom.write(settings, to: dir)
        let dataset = try MSDDataset.load(dir)
        #expect(dataset.modality == ["CT", "T1"])
        let all = try NIfTI.readChannels(dataset.cases[0].image)
        let read = try dataset.readModalities(dataset.cases[0], names: ["T1", "CT"])
        #expect(read.count == 2 && read[0].data == all[1].data && read[1].data == all[0].data && all[0].data != all[1].data)
        // The CT is the same as without the second modality.
        let (images, _) = Phantom.patient(settings, index: 0, hard: false)
        #expect(Phantom.patient(TestSettings.phantom(cases: 2, size: 16, slices: 4), index: 0, hard: false).0[0].data == images[0].data)
        #expect(throws: DatasetProblem(.modality, dataset.cases[0].image + ": no modality 'FLAIR'; dataset.json declares CT, T1", files: [dataset.cases[0].image])) {
            try dataset.readModalities(dataset.cases[0], names: ["FLAIR"])
        }
        #expect(throws: DatasetProblem(.modality, dataset.cases[0].image + ": has 2 modalities (CT, T1); choose them with data.preprocess.modalities", files: [dataset.cases[0].image])) {
            try dataset.readModalities(dataset.cases[0], names: nil)
        }
        // Two planes per slice, in the chosen order, each normalised its own way.
        let pre = TestSettings.preprocessing(height: 16, width: 16, modalities: ["T1", "CT"], normalize: [.zscore(mask: .nonzero), .window], channels: 2)
        let set = try SliceSet.prepare(dataset, pre, classes: .merged([1]), background: [0, 2, 3], cache: dir + "/slices.bin")
        #expect(set.planes == 2 && set.channels == 2)
        let (batch, _) = set.batch(Array(0..<set.count))
        let plane = 16 * 16
        var t1: [Float] = [], ct: [Float] = []
        for b in 0..<set.count {
            t1 += Array(UnsafeBufferPointer(start: batch.pointer + (b * 2) * plane, count: plane))
            ct += Array(UnsafeBufferPointer(start: batch.pointer + (b * 2 + 1) * plane, count: plane))
        }
        #expect(ct.allSatisfy { (0...1).contains($0) })  // the HU window
        #expect(t1.contains { $0 < 0 } && t1.contains { $0 > 1.5 })  // a z-score
    }

    /// nnU-Net v2 keeps one file per modality: CASE_0000, CASE_0001.
    @Test func nnUNetChannelFilesAreOneCasesModalities() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-nnunet-mm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/imagesTr", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/labelsTr", withIntermediateDirectories: true)
        let (images, label) = Phantom.patient(TestSettings.phantom(size: 16, slices: 4, modalities: ["CT", "T2"]), index: 0, hard: false)
        try NIfTI.write(images[0], to: dir + "/imagesTr/case_001_0000.nii.gz", datatype: 4)
        try NIfTI.write(images[1], to: dir + "/imagesTr/case_001_0001.nii.gz", datatype: 4)
        try NIfTI.write(label, to: dir + "/labelsTr/case_001.nii.gz", datatype: 2)
        try Data(#"{"channel_names": {"0": "CT", "1": "T2"}, "labels": {"background": 0, "spleen": 1}, "numTraining": 1, "file_ending": ".nii.gz"}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        let d = try MSDDataset.load(dir)
        #expect(d.cases.count == 1 && d.cases[0].images.count == 2)
        #expect(try d.readModalities(d.cases[0], names: ["T2"]).map(\.data) == [images[1].data], "the T2 file's values")
    }

    /// z-score per volume: over every voxel, or over the non-zero ones with the others kept at 0.
    @Test func zScoreUsesTheVolumeAndItsMask() throws {
        var values = [Float](repeating: 0, count: 4 * 4 * 2)
        for i in 0..<values.count where i % 2 == 0 { values[i] = Float(i) }
        let v = Volume(dims: [4, 4, 2], spacing: [1, 1, 1], data: values, datatype: "FLOAT32")
        for mask in [ZScoreMask.all, .nonzero] {
            let pre = TestSettings.preprocessing(height: 4, width: 4, normalize: [.zscore(mask: mask)])
            let set = try SliceSet.unlabelled([v], id: "z", settings: pre, statistics: [nil])
            let out = set.batch(Array(0..<set.count)).images.values
            let kept = mask == .all ? out : zip(values.reversedSlices(rows: 4, cols: 4), out).filter { $0.0 != 0 }.map(\.1)
            let mean = kept.reduce(0, +) / Float(kept.count)
            let sd = (kept.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(kept.count)).squareRoot()
            #expect(abs(mean) < 1e-5 && abs(sd - 1) < 1e-4, "\(mask): mean \(mean), sd \(sd)")
            if mask == .nonzero { #expect(zip(values.reversedSlices(rows: 4, cols: 4), out).allSatisfy { $0.0 != 0 || $0.1 == 0 }) }
        }
    }

    /// Percentiles interpolate linearly between order statistics (numpy's default).
    @Test func percentileStatisticsMatchNumpy() throws {
        let s = try #require(IntensityStatistics(samples: (1...101).map(Float.init), low: 0.5, high: 99.5))
        // numpy.percentile(arange(1, 102), [0.5, 99.5]) = [1.5, 100.5]; mean 51, population sd sqrt(850).
        #expect(abs(s.low - 1.5) < 1e-9 && abs(s.high - 100.5) < 1e-9)
        #expect(abs(s.mean - 51) < 1e-9 && abs(s.sd - 850.0.squareRoot()) < 1e-9)
        #expect(IntensityStatistics(samples: [], low: 0.5, high: 99.5) == nil)
    }

    /// Percentile statistics come from the foreground of the cases outside the test split.
    @Test func percentileStatisticsLeaveTheTestCasesOut() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-percentile-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Phantom.write(TestSettings.phantom(cases: 6, size: 16, slices: 4), to: dir)
        let dataset = try MSDDataset.load(dir)
        let pre = TestSettings.preprocessing(height: 16, width: 16, normalize: [.percentile(low: 0.5, high: 99.5)])
        let split = TestSettings.split(test: 0.34, val: 0, seed: 3)
        let set = try SliceSet.prepare(dataset, pre, classes: .merged([1]), background: [0, 2, 3], split: split, cache: dir + "/a.bin")
        let other = try SliceSet.prepare(dataset, pre, classes: .merged([1]), background: [0, 2, 3], split: TestSettings.split(test: 0.34, val: 0, seed: 4), cache: dir + "/b.bin")
        let stats = try #require(set.statistics.first ?? nil)
        #expect(stats.low < stats.mean && stats.mean < stats.high && stats.sd > 0)
        // Another split holds out other cases, so other statistics.
        #expect(other.statistics.first ?? nil != stats)
        // Values are clipped to the percentiles, then z-scored.
        let out = set.batch(Array(0..<set.count)).images.values
        let lo = Float((stats.low - stats.mean) / stats.sd), hi = Float((stats.high - stats.mean) / stats.sd)
        #expect(out.allSatisfy { $0 >= lo - 1e-4 && $0 <= hi + 1e-4 })
    }

    /// Without foreground voxels in the training cases there are no percentiles to clip to: an error, not a default.
    @Test func percentileWithoutForegroundIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-noforeground-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/imagesTr", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/labelsTr", withIntermediateDirectories: true)
        let (images, label) = Phantom.patient(TestSettings.phantom(size: 16, slices: 4), index: 0, hard: false)
        var empty = label
        empty.data = [Float](repeating: 0, count: label.count)
        try NIfTI.write(images[0], to: dir + "/imagesTr/case_001_0000.nii.gz", datatype: 4)
        try NIfTI.write(empty, to: dir + "/labelsTr/case_001.nii.gz", datatype: 2)
        try Data(#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "spleen": 1}, "numTraining": 1, "file_ending": ".nii.gz"}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        let pre = TestSettings.preprocessing(height: 16, width: 16, normalize: [.percentile(low: 0.5, high: 99.5)])
        #expect(throws: DatasetProblem(.labels, dir + ": percentile normalisation of modality 0 needs foreground voxels in the training cases, and they have none", files: [dir])) {
            try SliceSet.prepare(try MSDDataset.load(dir), pre, classes: .merged([1]), background: [0, 2, 3], cache: dir + "/s.bin")
        }
    }
}

extension Array where Element == Float {
    /// A volume's values in slice order as the slicer emits them (rows from the top, i.e. y reversed).
    func reversedSlices(rows: Int, cols: Int) -> [Float] {
        let plane = rows * cols
        return (0..<(count / plane)).flatMap { k in (0..<rows).flatMap { r in (0..<cols).map { c in self[k * plane + (rows - 1 - r) * cols + c] } } }
    }
}
