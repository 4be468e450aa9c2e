import ArgumentParser
import Figures
import Foundation
import Medical
import Plan
import Runtime
import StageConfig
import Tensor

/// `distill data preview --spec S --augment`: training slices as a stage sees them,
/// each beside draws of the spec's `data.augment`, the label outlined by class.
enum AugmentPreview {
    static func run(spec: String, store: String, draws: Int, output: String) throws {
        let (plan, base) = try SpecPlanning.plan(spec, variant: nil, firstVariant: true)
        guard let prepare = plan.stages.first(where: { $0.kind == .prepare }), case .prepare(let config) = prepare.config else {
            throw ValidationError("the spec's plan has no data to prepare")
        }
        let augmentation = plan.stages.lazy.compactMap { s -> AugmentationSettings? in
            if case .train(let c) = s.config { return c.augment }
            return nil
        }.first
        guard let augmentation else { throw ValidationError("\(spec) has no data.augment: there is nothing to preview") }
        let runs = RunStore(root: store)
        if !runs.isDone(prepare.hash) {
            try SpecPlanning.execute(plan, base: base, store: store, threads: ProcessInfo.processInfo.activeProcessorCount, only: [prepare.hash])
        }
        let set = try SliceSet(path: runs.file(prepare.hash, "slices.bin"))
        let train = SplitManifest.make(set, config.split, keepEmpty: config.preprocess.keepEmpty).slices(.train)
        // The slice with the most foreground of each of up to four training cases.
        var best: [Int: (slice: Int, area: Int)] = [:]
        for s in train {
            let area = set.batch([s]).labels.values.filter { $0 > 0 }.count
            let p = set.records[s].patient
            if area > (best[p]?.area ?? -1) { best[p] = (s, area) }
        }
        let chosen = best.sorted { $0.key < $1.key }.prefix(4).map(\.value.slice)
        guard !chosen.isEmpty else { throw ValidationError("the training split has no slices") }
        let augmenter = Augmenter(augmentation)
        var rows: [(String, [RGBImage])] = []
        for s in chosen {
            let (images, labels) = set.batch([s])
            var panels = [panel(images, labels, set)]
            for d in 0..<draws {
                let out = augmenter.apply(images: images, labels: labels, seed: UInt64(d) &* 7_919 &+ UInt64(s))
                panels.append(panel(out.images, out.labels, set, range: range(images)))
            }
            rows.append(("\(set.patients[set.records[s].patient]) z\(set.records[s].slice)", panels))
        }
        let canvas = Charts.imageGrid(title: "Augmented training slices", subtitle: "\(spec): data.augment, first channel, label outlined by class",
                                      columns: ["prepared"] + (1...draws).map { "draw \($0)" }, rows: rows,
                                      legend: config.classes.classes.enumerated().map { ($1.name, Color.segmentationClass($0 + 1)) })
        try canvas.png(to: output)
        print("wrote \(output): \(chosen.count) training slices, \(draws) draws each")
    }

    /// The first channel's range in the unaugmented slice, so that draws show brightness changes.
    static func range(_ images: Tensor) -> (Float, Float) {
        let plane = images.shape[2] * images.shape[3]
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<plane { lo = min(lo, images.pointer[i]); hi = max(hi, images.pointer[i]) }
        return (lo, hi > lo ? hi : lo + 1)
    }

    static func panel(_ images: Tensor, _ labels: Tensor, _ set: SliceSet, range given: (Float, Float)? = nil) -> RGBImage {
        let (h, w) = (set.height, set.width)
        let (lo, hi) = given ?? range(images)
        let scale = max(1, 128 / max(h, w))
        var img = RGBImage(width: w * scale, height: h * scale)
        for y in 0..<h {
            for x in 0..<w {
                let g = UInt8(max(0, min(255, (images.pointer[y * w + x] - lo) / (hi - lo) * 255)))
                let k = Int(labels.pointer[y * w + x])
                let edge = k > 0 && [(1, 0), (-1, 0), (0, 1), (0, -1)].contains { dx, dy in
                    let (xx, yy) = (x + dx, y + dy)
                    return xx < 0 || yy < 0 || xx >= w || yy >= h || Int(labels.pointer[yy * w + xx]) != k
                }
                let color = edge ? Color.segmentationClass(k) : Color(g, g, g)
                for sy in 0..<scale { for sx in 0..<scale { img[x * scale + sx, y * scale + sy] = color } }
            }
        }
        return img
    }
}
