import Foundation
import Storage
import Medical
import Plan
import StageConfig
import Synchronization

/// The `prepare` stage: the dataset (phantom written out, or an MSD folder),
/// preprocessed into a memory-mapped slice cache, and the split manifest.
enum PrepareStage {
    static func run(_ stage: PlanStage, _ c: PrepareConfiguration, _ ctx: StageContext) throws {
        if let problem = c.preprocess.problem { throw RuntimeError.badPlan("preprocess: \(problem)") }
        let folder: String
        var analyzeOrientation: AxisOrientation?
        switch c.source {
        case .phantom(let settings):
            folder = ctx.directory + "/dataset"
            if !FileManager.default.fileExists(atPath: folder + "/dataset.json") {
                ctx.log("writing the phantom: \(settings.cases) cases of \(settings.size)x\(settings.size)x\(settings.slices)")
                try Phantom.write(settings, to: folder + ".tmp")
                try? FileManager.default.removeItem(atPath: folder)
                try FileManager.default.moveItem(atPath: folder + ".tmp", toPath: folder)
            }
        case .msd(let path, let orientation):
            folder = FilePath.resolve(path, against: ctx.baseDirectory)
            analyzeOrientation = orientation
        }
        // The headers first, as `distill check` reads them (the same problems, the same ids), then every voxel.
        let scan = DatasetScan.scan(folder, modalities: c.preprocess.modalities, analyzeOrientation: analyzeOrientation)
        guard scan.problems.isEmpty, let dataset = scan.dataset else { throw problems(scan.problems) }
        // Evaluation writes predictions back into the source volumes' geometry: it needs the folder.
        try AtomicFile.write(Data(folder.utf8), to: ctx.directory + "/dataset-root.txt")
        let start = Date()
        let set: SliceSet
        do {
            set = try SliceSet.prepare(dataset, c.preprocess, classes: c.classes, background: c.background, split: c.split, cache: ctx.directory + "/slices.bin") { i, n in
                if i % 8 == 0 { ctx.log("preprocessing case \(i + 1) of \(n)") }
            }
        } catch let found as DatasetProblems {
            throw problems(found.problems)
        } catch let found as DatasetProblem {
            throw problems([found])
        }
        let manifest = SplitManifest.make(set, c.split, keepEmpty: c.preprocess.keepEmpty)
        let json = try JSONSerialization.data(withJSONObject: manifest.json, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: ctx.directory + "/split.json")
        let seconds = Date().timeIntervalSince(start)
        ctx.log("\(set.count) slices from \(dataset.cases.count) cases in \(String(format: "%.1f", seconds)) s; train \(manifest.slices(.train).count), val \(manifest.slices(.val).count), test \(manifest.slices(.test).count)")
    }
}

extension PrepareStage {
    /// The data's problems, each with the id `distill check` gives it.
    static func problems(_ found: [DatasetProblem]) -> RuntimeError {
        if found.count == 1 { return RuntimeError.stage("the dataset: " + DataDiagnostics.text(found[0])) }
        return RuntimeError.stage("the dataset has \(found.count) problems:\n" + found.map { "  " + DataDiagnostics.text($0) }.joined(separator: "\n"))
    }
}

/// The prepared data of a plan, opened once per process.
final class PreparedData: @unchecked Sendable {
    let set: SliceSet
    let split: SplitManifest
    let seed: UInt64
    let axis: SliceAxis
    let classes: LabelClasses

    init(directory: String, config: PrepareConfiguration) throws {
        set = try SliceSet(path: directory + "/slices.bin")
        classes = config.classes
        axis = config.preprocess.sliceAxis
        split = SplitManifest.make(set, config.split, keepEmpty: config.preprocess.keepEmpty)
        seed = UInt64(config.split.seed)
    }

    /// The dataset the slices were cut from (its folder is named in the prepare stage's
    /// dataset-root.txt): evaluation measures on its volumes' own grids.
    func dataset(_ ctx: StageContext) throws -> MSDDataset {
        let prepare = try ctx.input("data")
        let rootFile = ctx.store.file(prepare.hash, "dataset-root.txt")
        guard let root = try? String(contentsOfFile: rootFile, encoding: .utf8) else {
            throw RuntimeError.stage("\(rootFile) is missing: the prepare stage \(prepare.shortHash) is incomplete; delete its folder and rerun")
        }
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
