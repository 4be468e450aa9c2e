import Foundation
import Medical
import Testing

/// A three-organ study on the phantom, end to end: softmax heads, Dice+CE, softmax KL,
/// per-class metrics in metrics.json, per_case.csv and the report, and label maps
/// (from evaluate and from `distill predict`) written with the classes' label values.
@Suite(.serialized) struct MultiClassCLITests {
    let cli = CLITests()

    static let spec = """
        name: tiny multi-organ
        data:
          source: {phantom: {cases: 8, seed: 3, size: 48, slices: 10}}
          foreground: {spleen: 1, liver: 2, kidney: 3}
          preprocess: {size: 48}
          split: {test: 0.25, val: 0.125}
          subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
        models:
          t: {arch: unet, widths: [8, 16], bottleneck: 16, convs_per_block: 1, heads: {segmentation: 4}}
          s: {arch: unet, widths: [4, 8], bottleneck: 8, convs_per_block: 1, heads: {segmentation: 4}}
        stages:
          teacher: {model: t, data: full, loss: [{kind: dice_ce}], optimizer: {kind: adamw, lr: 0.01}, epochs: 6, batch: 4}
          kd:
            model: s
            data: half
            loss: [{kind: dice_ce}]
            optimizer: {kind: adamw, lr: 0.01}
            epochs: 3
            batch: 4
            distill: {teacher: teacher, logits: {kind: kl, temperature: 2}}

        """

    @Test func threeOrgansTrainEvaluateReportAndPredictByClass() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-classes-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.spec.write(toFile: dir + "/spec.yaml", atomically: true, encoding: .utf8)
        let sweep = try cli.run(["sweep", "spec.yaml", "--store", "s", "--threads", "1"], in: dir)
        #expect(sweep.status == 0, "\(sweep.out.suffix(2000))\(sweep.err)")
        #expect(sweep.out.contains("## By class, on each patient's grid") && sweep.out.contains("| group | stage | class | Dice (pooled) | Dice (mean over cases) | HD95 mm | NSD |"))
        for organ in ["spleen", "liver", "kidney"] { #expect(sweep.out.contains("| * | kd | \(organ) | "), "no row for \(organ)") }

        var evaluated = 0
        for stage in try FileManager.default.contentsOfDirectory(atPath: dir + "/s/stages") {
            let folder = "\(dir)/s/stages/\(stage)"
            guard let data = FileManager.default.contents(atPath: folder + "/metrics.json"),
                  let metrics = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let pooled = metrics["pooled"] as? [String: Any], let byClass = pooled["classes"] as? [String: [String: Any]] else { continue }
            evaluated += 1
            #expect(metrics["classes"] as? [String] == ["spleen", "liver", "kidney"])
            // The headline Dice is the mean of the classes' Dice.
            let dice = ["spleen", "liver", "kidney"].compactMap { byClass[$0]?["dice"] as? Double }
            #expect(dice.count == 3)
            #expect(abs((pooled["dice"] as? Double ?? -1) - dice.reduce(0, +) / 3) < 1e-9)
            let csv = try String(contentsOfFile: folder + "/per_case.csv", encoding: .utf8)
            #expect(csv.hasPrefix("case,dice,iou,precision,recall,hd95,nsd,dice.spleen,hd95.spleen,nsd.spleen,dice.liver,hd95.liver,nsd.liver,dice.kidney,hd95.kidney,nsd.kidney\n"))
            #expect(metrics["grid"] as? String == "patient")
            // Predictions hold label values of the classes, never a class index of another meaning.
            for file in try FileManager.default.contentsOfDirectory(atPath: folder + "/predictions") {
                let values = Set(try NIfTI.read(folder + "/predictions/" + file).data)
                #expect(values.isSubset(of: [0, 1, 2, 3]), "\(values)")
            }
            if (metrics["parameters"] as? Int ?? 0) > 5000 {
                // The teacher finds the liver, the largest organ, after six epochs.
                #expect((byClass["liver"]?["dice"] as? Double ?? 0) > 0.5)
            }
        }
        #expect(evaluated == 2)

        // `distill predict` writes the same label values.
        let phantom = try #require(try FileManager.default.contentsOfDirectory(atPath: dir + "/s/stages").first {
            FileManager.default.fileExists(atPath: "\(dir)/s/stages/\($0)/dataset/imagesTr")
        })
        let image = "s/stages/\(phantom)/dataset/imagesTr/spleen_1.nii.gz"
        let predicted = try cli.run(["predict", "teacher", "--spec", "spec.yaml", "--store", "s", image, "-o", "out", "--threads", "1"], in: dir)
        #expect(predicted.status == 0, "\(predicted.err)")
        let map = try NIfTI.read(dir + "/out/spleen_1.nii.gz")
        #expect(Set(map.data).isSubset(of: [0, 1, 2, 3]) && map.data.contains(2))
    }
}
