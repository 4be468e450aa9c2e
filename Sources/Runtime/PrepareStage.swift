import Foundation
import Medical
import Plan

/// The `prepare` stage: the dataset (phantom written out, or an MSD folder),
/// preprocessed into a memory-mapped slice cache, and the split manifest.
enum PrepareStage {
    static func run(_ stage: PlanStage, _ ctx: StageContext) throws {
        let source = stage.params["source"] ?? .object([:])
        let folder: String
        if let phantom = source["phantom"] {
            folder = ctx.directory + "/dataset"
            let s = PhantomSettings(cases: phantom["cases"]?.int ?? 24, seed: UInt64(phantom["seed"]?.int ?? 0), size: phantom["size"]?.int ?? 128,
                                    slices: phantom["slices"]?.int ?? 48, noise: phantom["noise"]?.number ?? 20, hardCases: phantom["hard_cases"]?.number ?? 0.25)
            if !FileManager.default.fileExists(atPath: folder + "/dataset.json") {
                ctx.log("writing the phantom: \(s.cases) cases of \(s.size)x\(s.size)x\(s.slices)")
                try Phantom.write(s, to: folder + ".tmp")
                try? FileManager.default.removeItem(atPath: folder)
                try FileManager.default.moveItem(atPath: folder + ".tmp", toPath: folder)
            }
        } else if let path = source["msd"]?.string {
            folder = path.hasPrefix("/") ? path : (ctx.baseDirectory as NSString).appendingPathComponent(path)
        } else {
            throw RuntimeError.badPlan("prepare stage without a source")
        }
        let dataset = try MSDDataset.load(folder)
        // Evaluation writes predictions back into the source volumes' geometry: it needs the folder.
        try RunStore.writeAtomically(Data(folder.utf8), to: ctx.directory + "/dataset-root.txt")
        let settings = PlanDecoding.preprocess(stage.params)
        let start = Date()
        let set = try SliceSet.prepare(dataset, settings, cache: ctx.directory + "/slices.bin") { i, n in
            if i % 8 == 0 { ctx.log("preprocessing case \(i + 1) of \(n)") }
        }
        let manifest = SplitManifest.make(set, PlanDecoding.split(stage.params))
        let json = try JSONSerialization.data(withJSONObject: manifest.json, options: [.prettyPrinted, .sortedKeys])
        try RunStore.writeAtomically(json, to: ctx.directory + "/split.json")
        let seconds = Date().timeIntervalSince(start)
        ctx.log("\(set.count) slices from \(dataset.cases.count) cases in \(String(format: "%.1f", seconds)) s; train \(manifest.slices("train").count), val \(manifest.slices("val").count), test \(manifest.slices("test").count)")
    }
}

/// The prepared data of a plan, opened once per process.
final class PreparedData: @unchecked Sendable {
    let set: SliceSet
    let split: SplitManifest
    let seed: UInt64
    let axis: String

    init(directory: String, params: JSON) throws {
        set = try SliceSet(path: directory + "/slices.bin")
        axis = PlanDecoding.preprocess(params).axis
        split = SplitManifest.make(set, PlanDecoding.split(params))
        seed = UInt64(params["split"]?["seed"]?.int ?? 42)
    }

    nonisolated(unsafe) private static var cache: [String: PreparedData] = [:]
    private static let lock = NSLock()

    static func open(_ hash: String, _ ctx: StageContext) throws -> PreparedData {
        lock.lock()
        defer { lock.unlock() }
        if let d = cache[hash] { return d }
        guard let stage = ctx.plan.stage(hash) else { throw RuntimeError.badPlan("no prepare stage \(hash.prefix(12))") }
        let d = try PreparedData(directory: ctx.store.directory(hash), params: stage.params)
        cache[hash] = d
        return d
    }
}
