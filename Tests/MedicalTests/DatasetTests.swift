import Foundation
import Medical
import StageConfig
import Testing

@Suite(.serialized) struct DatasetTests {
    static let folder: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-phantom-tests-\(ProcessInfo.processInfo.processIdentifier)").path
        if !FileManager.default.fileExists(atPath: dir + "/dataset.json") {
            try? Phantom.write(TestSettings.phantom(cases: 8, seed: 3, size: 32, slices: 12), to: dir)
        }
        return dir
    }()

    func slices(_ settings: Preprocessing = TestSettings.preprocessing(height: 32, width: 32)) throws -> SliceSet {
        let dataset = try MSDDataset.load(Self.folder)
        return try SliceSet.prepare(dataset, settings, classes: .merged([1]), background: [0, 2, 3], cache: Self.folder + "/cache-\(settings.json.sha256.prefix(16)).slices")
    }

    @Test func phantomIsAnMSDFolderWithSpleens() throws {
        let d = try MSDDataset.load(Self.folder)
        #expect(d.cases.count == 8)
        #expect(d.labels[1] == "spleen")
        #expect(d.cases.map(\.id).prefix(2) == ["spleen_1", "spleen_2"])
        let label = try NIfTI.read(d.cases[0].label)
        #expect(label.data.contains(1))
    }

    @Test func phantomIsSeeded() {
        let a = Phantom.patient(TestSettings.phantom(seed: 9, size: 24, slices: 6), index: 2, hard: false)
        let b = Phantom.patient(TestSettings.phantom(seed: 9, size: 24, slices: 6), index: 2, hard: false)
        let c = Phantom.patient(TestSettings.phantom(seed: 10, size: 24, slices: 6), index: 2, hard: false)
        #expect(a.0[0].data == b.0[0].data && a.1.data == b.1.data)
        #expect(a.0[0].data != c.0[0].data)
    }

    @Test func preprocessingFollowsTheSettingsAndCachesOnce() throws {
        let set = try slices(TestSettings.preprocessing(height: 16, width: 24, window: .clip255, channels: 3, keepEmpty: 0))
        #expect(set.height == 16 && set.width == 24 && set.channels == 3)
        // Every slice is stored, whatever keep_empty says: 8 cases of 12.
        #expect(set.count == 8 * 12 && set.records.contains { !$0.hasForeground })
        let foreground = set.records.indices.filter { set.records[$0].hasForeground }
        let (images, labels) = set.batch(Array(foreground.prefix(2)))
        #expect(images.shape == [2, 3, 16, 24] && labels.shape == [2, 1, 16, 24])
        #expect(images.values.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(Array(images.values[0..<384]) == Array(images.values[384..<768]))  // grey replicated to 3 channels
        #expect(labels.values.contains(1))
    }

    /// keep_empty thins the training part's empty slices, never the validation or test slices.
    @Test func keepEmptyThinsTheTrainingPartOnly() throws {
        let set = try slices()
        let split = TestSettings.split(test: 0.25, val: 0.25, seed: 5)
        let all = try SplitManifest.make(set, split, keepEmpty: 1), thin = try SplitManifest.make(set, split, keepEmpty: 0)
        #expect(thin.slices(.test) == all.slices(.test) && thin.slices(.val) == all.slices(.val))
        #expect(all.slices(.test).contains { !set.records[$0].hasForeground })
        #expect(thin.slices(.train).allSatisfy { set.records[$0].hasForeground })
        #expect(thin.slices(.train) == all.slices(.train).filter { set.records[$0].hasForeground })
        let some = try SplitManifest.make(set, split, keepEmpty: 0.5).slices(.train)
        #expect(some.count > thin.slices(.train).count && some.count < all.slices(.train).count)
    }

    @Test func aCacheMadeWithOtherSettingsIsNeverUsed() throws {
        let dataset = try MSDDataset.load(Self.folder)
        let path = Self.folder + "/shared.slices"
        let a = try SliceSet.prepare(dataset, TestSettings.preprocessing(height: 16, width: 16), classes: .merged([1]), background: [0, 2, 3], cache: path)
        let b = try SliceSet.prepare(dataset, TestSettings.preprocessing(height: 24, width: 24), classes: .merged([1]), background: [0, 2, 3], cache: path)
        #expect(a.height == 16 && b.height == 24)
        let reopened = try SliceSet(path: path)
        #expect(reopened.height == 24)
    }

    @Test func patientSplitsNeverShareAPatient() throws {
        let set = try slices()
        for seed in 0..<25 {
            let m = try SplitManifest.make(set, TestSettings.split(test: 0.25, val: 0.125, seed: seed), keepEmpty: 1)
            let parts = ["train", "val", "test"].map { Set(m.parts[$0]?.patients ?? []) }
            #expect(parts[0].isDisjoint(with: parts[1]) && parts[0].isDisjoint(with: parts[2]) && parts[1].isDisjoint(with: parts[2]))
            #expect(parts.map(\.count).reduce(0, +) == 8)
            let sliceParts = [SplitPart.train, .val, .test].map { Set(m.slices($0).map { set.records[$0].patient }) }
            #expect(sliceParts[0].isDisjoint(with: sliceParts[2]))
            #expect(m.slices(.train).count + m.slices(.val).count + m.slices(.test).count == set.count)
        }
    }

    /// Several scans of one patient (a key over the case ids) land in one part, whatever the seed;
    /// a case id the key does not match is an error naming it, never a patient of its own.
    @Test func aPatientKeyKeepsEveryScanOfAPatientInOnePart() throws {
        // 6 patients with 1-3 scans each, 2 slices a scan.
        let ids = ["sub-01_ct", "sub-01_ct2", "sub-02_ct", "sub-03_ct", "sub-03_ct2", "sub-03_ct3", "sub-04_ct", "sub-05_ct", "sub-05_ct2", "sub-06_ct"]
        let records = ids.indices.flatMap { p in (0..<2).map { SliceRecord(patient: p, slice: $0, hasForeground: true) } }
        let set = SliceList(records: records, patients: ids)
        let patient = { (id: String) in String(id.prefix(6)) }
        var separated = 0
        for seed in 0..<30 {
            let grouped = try SplitManifest.make(set, TestSettings.split(test: 0.3, val: 0.2, seed: seed, patient: "^(sub-[0-9]+)_"), keepEmpty: 1)
            let parts = ["train", "val", "test"].map { Set((grouped.parts[$0]?.patients ?? []).map(patient)) }
            #expect(parts[0].isDisjoint(with: parts[1]) && parts[0].isDisjoint(with: parts[2]) && parts[1].isDisjoint(with: parts[2]), "seed \(seed)")
            #expect(parts.map(\.count).reduce(0, +) == 6)
            #expect(grouped.slices(.train).count + grouped.slices(.val).count + grouped.slices(.test).count == records.count)
            // Without the key the same scans are units of their own, and some seed splits a patient.
            let plain = try SplitManifest.make(set, TestSettings.split(test: 0.3, val: 0.2, seed: seed), keepEmpty: 1)
            let plainParts = ["train", "val", "test"].map { Set((plain.parts[$0]?.patients ?? []).map(patient)) }
            if !plainParts[0].isDisjoint(with: plainParts[2]) { separated += 1 }
        }
        #expect(separated > 0)
        #expect {
            _ = try SplitManifest.make(set, TestSettings.split(test: 0.3, val: 0.2, seed: 1, patient: "^(sub-0[1-5])_"), keepEmpty: 1)
        } throws: { error in
            guard let problem = error as? DatasetProblem else { return false }
            return problem.kind == .patient && problem.message.contains("sub-06_ct") && !problem.message.contains("sub-05")
        }
    }

    @Test func sliceSplitsMixPatientsAsTheStudyDid() throws {
        let set = try slices()
        let m = try SplitManifest.make(set, TestSettings.split(unit: .slice, test: 0.2, val: 0, seed: 42), keepEmpty: 1)
        let train = Set(m.slices(.train).map { set.records[$0].patient }), test = Set(m.slices(.test).map { set.records[$0].patient })
        #expect(!train.isDisjoint(with: test))
    }

    @Test func foldsCoverEveryPatientOnce() throws {
        let set = try slices()
        var tested: [String] = []
        for f in 0..<4 {
            tested += try SplitManifest.make(set, TestSettings.split(test: 0.2, val: 0.1, seed: 1, folds: 4, fold: f), keepEmpty: 1).parts["test"]?.patients ?? []
        }
        #expect(tested.sorted() == set.patients.sorted())
    }

    @Test func nestedSubsetsLieInsideTheirParentsAndStratify() throws {
        let set = try slices()
        let m = try SplitManifest.make(set, TestSettings.split(test: 0.25, val: 0, seed: 7), keepEmpty: 1)
        let full = m.subset(SubsetChain([TestSettings.level(1)]), of: set, seed: 7)
        let half = m.subset(SubsetChain([TestSettings.level(1), TestSettings.level(0.5, stratify: true)]), of: set, seed: 7)
        #expect(Set(half).isSubset(of: Set(full)))
        #expect(abs(Double(half.count) - Double(full.count) / 2) <= 1)
        let share = { (s: [Int]) in Double(s.filter { set.records[$0].hasForeground }.count) / Double(max(1, s.count)) }
        #expect(abs(share(half) - share(full)) < 0.1)
        #expect(m.subset(SubsetChain([TestSettings.level(1), TestSettings.level(0.5, stratify: true)]), of: set, seed: 7) == half)
    }

    @Test func nnUNetLayoutIsRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-nnunet-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/imagesTr", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/labelsTr", withIntermediateDirectories: true)
        let (images, label) = Phantom.patient(TestSettings.phantom(size: 16, slices: 4), index: 0, hard: false)
        let image = images[0]
        try NIfTI.write(image, to: dir + "/imagesTr/case_007_0000.nii.gz", datatype: 4)
        try NIfTI.write(label, to: dir + "/labelsTr/case_007.nii.gz", datatype: 2)
        try Data(#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "spleen": 1}, "numTraining": 1, "file_ending": ".nii.gz"}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        let d = try MSDDataset.load(dir)
        #expect(d.cases.map(\.id) == ["case_007"])
        #expect(d.labels[1] == "spleen" && d.modality == ["CT"])
    }

    @Test func missingLabelsAreReported() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-broken-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/imagesTr", withIntermediateDirectories: true)
        try Data(#"{"training": [{"image": "./imagesTr/a.nii.gz", "label": "./labelsTr/a.nii.gz"}]}"#.utf8).write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        #expect(throws: DatasetProblem.self) { try MSDDataset.load(dir) }
        let (_, problems) = MSDDataset.survey(dir)
        #expect(problems.map(\.kind) == [.files] && problems[0].message.contains("lists imagesTr/a.nii.gz, labelsTr/a.nii.gz, which are missing"), "\(problems)")
    }

    /// An MSD folder of ANALYZE 7.5 files is refused until the data source states their orientation.
    @Test func analyzeDatasetsNeedAStatedOrientation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-analyze-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/imagesTr", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/labelsTr", withIntermediateDirectories: true)
        var training: [String] = []
        for i in 0..<3 {
            let (images, label) = Phantom.patient(TestSettings.phantom(size: 16, slices: 4), index: i, hard: false)
            let image = images[0]
            for (volume, sub, type) in [(image, "imagesTr", Int32(4)), (label, "labelsTr", Int32(2))] {
                let path = "\(dir)/\(sub)/case_\(i).nii"
                try NIfTI.write(volume, to: path, datatype: type)
                var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes.replaceSubrange(344..<348, with: [0, 0, 0, 0])
                try bytes.write(to: URL(fileURLWithPath: path))
            }
            training.append(#"{"image": "./imagesTr/case_\#(i).nii", "label": "./labelsTr/case_\#(i).nii"}"#)
        }
        try Data(#"{"labels": {"0": "background", "1": "spleen"}, "training": [\#(training.joined(separator: ", "))]}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/dataset.json"))
        let settings = TestSettings.preprocessing(height: 16, width: 16)
        #expect(throws: NIfTIError.self) {
            try SliceSet.prepare(try MSDDataset.load(dir), settings, classes: .merged([1]), background: [0, 2, 3], cache: dir + "/a.slices")
        }
        let stated = try SliceSet.prepare(try MSDDataset.load(dir, analyzeOrientation: try #require(AxisOrientation("LPS"))), settings,
                                          classes: .merged([1]), background: [0, 2, 3], cache: dir + "/b.slices")
        #expect(stated.count == 12)
    }
}

/// Slicing an unlabelled volume and placing the masks back is the identity, along every axis.
@Suite struct SliceRoundTripTests {
    @Test(arguments: [SliceAxis.axial, .coronal, .sagittal])
    func masksGoBackWhereTheirSlicesCameFrom(_ axis: SliceAxis) throws {
        let dims = [5, 4, 3]
        var bits = UInt64(0x9E37_79B9_7F4A_7C15)
        let values = (0..<60).map { _ -> Float in
            bits = bits &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(bits >> 63)
        }
        let image = Volume(dims: dims, spacing: [1, 1, 1], data: values, datatype: "UINT8")
        let (rows, cols, count): (Int, Int, Int) = switch axis {
        case .axial: (dims[1], dims[0], dims[2])
        case .coronal: (dims[2], dims[0], dims[1])
        case .sagittal: (dims[2], dims[1], dims[0])
        }
        let settings = Preprocessing(sliceAxis: axis, window: .hounsfield(low: 0, high: 1), modalities: nil, normalize: [.window], height: rows, width: cols, channels: 1, keepEmpty: 0)
        let set = try SliceSet.unlabelled([image], id: "pattern", settings: settings, statistics: [nil])
        #expect(set.count == count)  // keep_empty does not apply: every slice is predicted
        var back = [UInt8](repeating: 0, count: 60)
        for s in 0..<set.count {
            let plane = set.batch([s]).images
            Slicer.placeClasses(logits: plane.pointer, channels: 1, height: rows, width: cols, slice: set.records[s].slice, axis: axis,
                                dims: dims, into: &back) { $0[0] > 0.5 ? 1 : 0 }
        }
        #expect(back.map(Float.init) == values)
    }
}
