import Foundation
import Storage
import Medical
import Plan
import StageConfig
import Synchronization
import Tensor
import NN

/// The `prepare` stage: the dataset (phantom written out, or an MSD folder),
/// preprocessed into a memory-mapped slice cache, and the split manifest.
enum PrepareStage {
    static func run(_ stage: PlanStage, _ c: PrepareConfiguration, _ ctx: StageContext) throws {
        if let problem = c.preprocess.problem { throw RuntimeError.badPlan("preprocess: \(problem)") }
        let folder: String
        var analyzeOrientation: AxisOrientation?
        switch c.source {
        case .phantom(let settings):
            // Written anew whenever the stage runs (it runs only when not done, or set aside as
            // damaged): a phantom is a few seconds of arithmetic, and a damaged one is never kept.
            folder = ctx.directory + "/" + PreparedData.phantomFolder
            ctx.log("writing the phantom: \(settings.cases) cases of \(settings.size)x\(settings.size)x\(settings.slices)")
            try? FileManager.default.removeItem(atPath: folder + ".tmp")
            try Phantom.write(settings, to: folder + ".tmp")
            try? FileManager.default.removeItem(atPath: folder)
            try FileManager.default.moveItem(atPath: folder + ".tmp", toPath: folder)
        case .msd(let path, let orientation):
            folder = FilePath.absolute(FilePath.resolve(path, against: ctx.baseDirectory), standardized: true)
            analyzeOrientation = orientation
        }
        // The headers first, as `distill check` reads them (the same problems, the same ids), then every voxel.
        let scan = DatasetScan.scan(folder, modalities: c.preprocess.modalities, analyzeOrientation: analyzeOrientation)
        for warning in scan.problems where warning.kind.isWarning { ctx.log(DataDiagnostics.text(warning)) }
        let errors = scan.problems.filter { !$0.kind.isWarning }
        guard errors.isEmpty, let dataset = scan.dataset else { throw problems(errors.isEmpty ? scan.problems : errors) }
        // Evaluation writes predictions back into the source volumes' geometry: it needs the folder.
        // The phantom's is named inside the stage folder, so that a store that moves keeps it; a
        // dataset of the user's by its absolute path, so that any working directory finds it.
        let recorded = if case .phantom = c.source { PreparedData.phantomFolder } else { folder }
        try AtomicFile.write(Data(recorded.utf8), to: ctx.directory + "/" + PreparedData.datasetRootFile)
        let start = Date()
        let progress: (Int, Int) -> Void = { i, n in if i % 8 == 0 { ctx.log("preprocessing case \(i + 1) of \(n)") } }
        let inventory: any SliceInventory
        do {
            // Every case's patient is known before a voxel is read.
            if c.split.unit == .patient { _ = try SplitManifest.patients(dataset.cases.map(\.id), key: c.split.patient) }
            if c.preprocess.volume != nil {
                inventory = try VolumeSet.prepare(dataset, c.preprocess, classes: c.classes, background: c.background, split: c.split,
                                                  cache: ctx.directory + "/" + PreparedData.volumeFile, progress: progress)
            } else {
                inventory = try SliceSet.prepare(dataset, c.preprocess, classes: c.classes, background: c.background, split: c.split,
                                                 cache: ctx.directory + "/" + PreparedData.sliceFile, progress: progress)
            }
        } catch let found as DatasetProblems {
            throw problems(found.problems)
        } catch let found as DatasetProblem {
            throw problems([found])
        }
        let manifest = try SplitManifest.make(inventory, c.split, keepEmpty: c.preprocess.keepEmpty)
        let json = try JSONSerialization.data(withJSONObject: manifest.json, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: ctx.directory + "/split.json")
        let seconds = Date().timeIntervalSince(start)
        let unit = c.preprocess.volume == nil ? "slices" : "volumes"
        var line = "\(inventory.records.count) \(unit) from \(dataset.cases.count) cases in \(String(format: "%.1f", seconds)) s; train \(manifest.slices(.train).count), val \(manifest.slices(.val).count), test \(manifest.slices(.test).count)"
        if let volumes = inventory as? VolumeSet {
            let spacing: [String] = volumes.spacing.map { String(format: "%.2f", $0) }
            let sizes: [[Int]] = volumes.cases.map(\.dims)
            let largest: [Int] = sizes.max { $0.reduce(1, *) < $1.reduce(1, *) } ?? []
            line += "; spacing " + spacing.joined(separator: " x ") + " mm, largest " + largest.map(String.init).joined(separator: "x")
        }
        ctx.log(line)
    }
}

extension PrepareStage {
    /// The data's problems, each with the id `distill check` gives it.
    static func problems(_ found: [DatasetProblem]) -> RuntimeError {
        if found.count == 1 { return RuntimeError.stage("the dataset: " + DataDiagnostics.text(found[0])) }
        return RuntimeError.stage("the dataset has \(found.count) problems:\n" + found.map { "  " + DataDiagnostics.text($0) }.joined(separator: "\n"))
    }
}

/// The prepared data of a plan, opened once per process: slices for 2D networks, or
/// resampled volumes that 3D networks see in patches.
final class PreparedData: @unchecked Sendable {
    static let sliceFile = "slices.bin", volumeFile = "volumes.bin"
    /// The file naming the dataset's folder, and the phantom's folder inside the stage's.
    static let datasetRootFile = "dataset-root.txt", phantomFolder = "dataset"

    /// The folder of the dataset a prepare stage read (checked against its digest): an absolute
    /// path as recorded, or a relative one inside the stage's folder (the phantom's).
    static func datasetRoot(_ prepare: String, store: RunStore) throws -> String {
        let file = try store.verifiedFile(prepare, datasetRootFile)
        guard let recorded = try? String(contentsOfFile: file, encoding: .utf8), !recorded.isEmpty else {
            throw RuntimeError.damaged(stage: prepare, "\(datasetRootFile) is empty or unreadable")
        }
        if recorded.hasPrefix("/") { return recorded }
        guard ConfinedTree.isSafeName(recorded) else { throw RuntimeError.damaged(stage: prepare, "\(datasetRootFile) names '\(recorded)', outside the stage folder") }
        return store.directory(prepare) + "/" + recorded
    }

    enum Samples {
        case slices(SliceSet)
        /// The volumes and the patch their networks see.
        case volumes(VolumeSet, patch: [Int])
    }

    let samples: Samples
    let split: SplitManifest
    let seed: UInt64
    let axis: SliceAxis
    let classes: LabelClasses

    init(directory: String, config: PrepareConfiguration) throws {
        if let sampling = config.preprocess.volume {
            samples = .volumes(try VolumeSet(path: directory + "/" + Self.volumeFile), patch: sampling.patch)
        } else {
            samples = .slices(try SliceSet(path: directory + "/" + Self.sliceFile))
        }
        classes = config.classes
        axis = config.preprocess.sliceAxis
        switch samples {
        case .slices(let set): split = try SplitManifest.make(set, config.split, keepEmpty: config.preprocess.keepEmpty)
        case .volumes(let set, _): split = try SplitManifest.make(set, config.split, keepEmpty: 1)
        }
        seed = UInt64(config.split.seed)
    }

    /// Slices, or volumes: what splits and subsets are drawn over (a volume is one record).
    var inventory: any SliceInventory {
        switch samples {
        case .slices(let set): return set
        case .volumes(let set, _): return set
        }
    }

    /// Input channels of every sample.
    var channels: Int {
        switch samples {
        case .slices(let set): return set.channels
        case .volumes(let set, _): return set.channels
        }
    }

    /// What a training step reads for the samples `indices`, the share of a batch of `batch`
    /// starting at place `first`: the slices as they are, or a patch of each volume drawn
    /// from `seed` (which the stage derives from its seed, the epoch and the step).
    func trainingBatch(_ indices: [Int], of batch: Int, first: Int, seed: UInt64) -> (images: Tensor, labels: Tensor) {
        switch samples {
        case .slices(let set): return set.batch(indices)
        case .volumes(let set, let patch):
            return set.patches(indices, sampler: PatchSampler(patch: patch), classes: classes.count + 1, batch: batch, first: first, seed: seed)
        }
    }

    /// Validation samples in batches: slices 16 at a time; of each validation volume, two
    /// patches drawn from a fixed seed (the second centred on foreground), the same every
    /// epoch, as nnU-Net validates on patches while it trains.
    func validationBatches(_ indices: [Int]) -> [(indices: [Int], load: () -> (images: Tensor, labels: Tensor))] {
        switch samples {
        case .slices(let set):
            return Metrics.batches(set, indices)
        case .volumes(let set, let patch):
            let sampler = PatchSampler(patch: patch, foregroundShare: 0.5)
            return indices.map { i in
                ([i], { set.patches(Array(repeating: i, count: WorkBatch.volumeValidation), sampler: sampler, classes: self.classes.count + 1, batch: WorkBatch.volumeValidation, seed: 0x7A1 &+ UInt64(i)) })
            }
        }
    }


    /// The prepared slices; `what` names the slice-only use in the error a 3D plan gets.
    func slices(for what: String) throws -> SliceSet {
        guard case .slices(let set) = samples else { throw RuntimeError.badPlan("\(what) reads slices, but this data is prepared as volumes for 3D networks") }
        return set
    }

    /// The dataset the slices were cut from (its folder is named in the prepare stage's
    /// dataset-root.txt): evaluation measures on its volumes' own grids.
    func dataset(_ ctx: StageContext) throws -> MSDDataset {
        let prepare = try ctx.input("data")
        let root = try Self.datasetRoot(prepare.hash, store: ctx.store)
        var orientation: AxisOrientation?
        if case .prepare(let c) = prepare.config, case .msd(_, let o) = c.source { orientation = o }
        do {
            return try MSDDataset.load(root, analyzeOrientation: orientation)
        } catch {
            throw RuntimeError.stage("the test cases are measured on their own voxel grids, which needs the dataset the slices were cut from: \(error)")
        }
    }

    private static let opened = Mutex<[String: PreparedData]>([:])

    static func open(_ hash: String, _ ctx: StageContext) throws -> PreparedData {
        try opened.withLock { cache in
            if let d = cache[hash] { return d }
            guard let stage = ctx.plan.stage(hash), case .prepare(let config) = stage.config else {
                throw RuntimeError.badPlan("no prepare stage \(hash.prefix(12))")
            }
            let d = try PreparedData(directory: ctx.store.directory(hash), config: config)
            cache[hash] = d
            return d
        }
    }
}
