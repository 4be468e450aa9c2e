import Architecture
import Foundation
import NN
import StageConfig
import Tensor
import Testing

/// Checkpoints are safetensors files; bad ones get errors that say exactly what is wrong.
@Suite struct CheckpointTests {
    let s1 = ModelArchitecture.unet(UNetArchitecture(inChannels: 3, widths: [16, 32], bottleneck: 64, convsPerBlock: 1, norm: .batch, groups: 8,
                                                     upsampling: .transpose, heads: [Head(name: "segmentation", channels: 1)], sharedDecoder: true))

    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(UUID().uuidString)-\(name)").path
    }

    @Test func roundTripKeepsEveryTensorAndName() throws {
        let model = ModelBuilder.build(s1, height: 64, width: 64, seed: 1)
        #expect(model.store.parameterCount == 57_297)
        let path = temporary("ckpt.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafetensorsFile.write(model.store.stateDict, metadata: ["format": "distillery"], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata["format"] == "distillery")
        #expect(file.names.contains("encoder.0.conv0.weight"))
        #expect(file.names.contains("decoder.1.norm0.running_var"))
        let other = ModelBuilder.build(s1, height: 64, width: 64, seed: 2)
        var tensors: [String: Tensor] = [:]
        for n in file.names { tensors[n] = try file.tensor(n) }
        try other.store.load(tensors, source: path)
        let a = model.store.parameters["head.segmentation.weight"]?.value.values, b = other.store.parameters["head.segmentation.weight"]?.value.values
        #expect(a == b)
    }

    /// The teacher-output cache is written a batch at a time; the file is the same, byte for byte,
    /// as one written whole, whatever order the rows arrive in.
    @Test func aStreamedFileEqualsOneWrittenWhole() throws {
        var rng = RNG(seed: 9)
        let maps = rng.uniformTensor([10, 3, 4, 5], -2, 2), logits = rng.uniformTensor([10, 1, 8, 8], -5, 5)
        let ids = Tensor(shape: [10], values: (0..<10).map { Float($0 * 3) })
        let whole = temporary("whole.safetensors"), streamed = temporary("streamed.safetensors")
        defer { for p in [whole, streamed] { try? FileManager.default.removeItem(atPath: p) } }
        try SafetensorsFile.write(["pool.1": maps, "logits.segmentation": logits, "slices": ids], metadata: ["format": "cache"], to: whole,
                                  halfNames: ["pool.1", "logits.segmentation"])
        let writer = try SafetensorsStreamWriter(path: streamed, tensors: [.init(name: "pool.1", shape: maps.shape, half: true),
                                                                           .init(name: "logits.segmentation", shape: logits.shape, half: true),
                                                                           .init(name: "slices", shape: ids.shape, half: false)],
                                                 metadata: ["format": "cache"])
        #expect(!FileManager.default.fileExists(atPath: streamed), "the file appears only when finished")
        for first in [8, 0, 4] {  // rows out of order, the last batch short
            let n = first == 8 ? 2 : 4
            try writer.write("pool.1", rows: first, maps.pointer + first * 60, count: n * 60)
            try writer.write("logits.segmentation", rows: first, logits.pointer + first * 64, count: n * 64)
        }
        try writer.write("slices", rows: 0, ids.pointer, count: 10)
        #expect(throws: SafetensorsError.self) { try writer.write("pool.1", rows: 9, maps.pointer, count: 120) }
        try writer.finish()
        #expect(FileManager.default.contents(atPath: streamed) == FileManager.default.contents(atPath: whole))
    }

    @Test func wrongShapesAndNamesAreListed() throws {
        let model = ModelBuilder.build(s1, height: 64, width: 64, seed: 1)
        var tensors = model.store.stateDict
        tensors["encoder.0.conv0.weight"] = Tensor(zeros: [16, 1, 3, 3])
        tensors["extra.weight"] = Tensor(zeros: [1])
        tensors["head.segmentation.bias"] = nil
        #expect {
            try model.store.load(tensors, source: "ckpt.safetensors")
        } throws: { error in
            let text = "\(error)"
            return text.contains("'encoder.0.conv0.weight' has shape [16, 1, 3, 3], the model expects [16, 3, 3, 3]")
                && text.contains("missing 'head.segmentation.bias'") && text.contains("unexpected 'extra.weight'")
        }
    }

    @Test func truncatedAndCorruptFilesAreRefused() throws {
        let model = ModelBuilder.build(s1, height: 64, width: 64, seed: 1)
        let path = temporary("full.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafetensorsFile.write(model.store.stateDict, to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(data: data.prefix(data.count - 100), path: "cut.safetensors") }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(data: data.prefix(5), path: "tiny.safetensors") }
        var garbage = data
        garbage.replaceSubrange(8..<12, with: [0x5B, 0x5B, 0x5B, 0x5B])
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(data: garbage, path: "garbage.safetensors") }
        do {
            _ = try SafetensorsFile(data: data.prefix(data.count - 100), path: "cut.safetensors")
        } catch {
            #expect("\(error)".hasPrefix("cut.safetensors: truncated safetensors file: tensor '"))
        }
    }

    @Test func fp16FilesWidenOnRead() throws {
        let path = temporary("half.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafetensorsFile.write(["t": Tensor(shape: [3], values: [0.5, -2, 1e-3])], to: path, half: true)
        let t = try SafetensorsFile(path: path).tensor("t")
        #expect(abs(t.values[0] - 0.5) < 1e-6 && abs(t.values[1] + 2) < 1e-6 && abs(t.values[2] - 1e-3) < 1e-5)
    }

    @Test func optimisersStepAsPyTorchSchedulesDecay() {
        func schedule(_ curve: LearningRateSchedule.Curve) -> LearningRateSchedule { LearningRateSchedule(warmupEpochs: 0, curve: curve) }
        #expect(schedule(.constant).rate(base: 0.1, epoch: 5, epochs: 10) == 0.1)
        #expect(abs(schedule(.cosine(minLR: 0)).rate(base: 1, epoch: 5, epochs: 10) - 0.5) < 1e-6)
        #expect(abs(schedule(.step(size: 2, gamma: 0.5)).rate(base: 1, epoch: 4, epochs: 10) - 0.25) < 1e-6)
        #expect(schedule(.poly(power: 0.9)).rate(base: 1, epoch: 0, epochs: 10) == 1)
        #expect(abs(LearningRateSchedule(warmupEpochs: 2, curve: .constant).rate(base: 0.3, epoch: 0, epochs: 10) - 0.1) < 1e-6)
        let w = Variable(Tensor(shape: [2], values: [1, 1]), requiresGrad: true)
        let opt = Optimizer(.sgd(momentum: 0, dampening: 0, nesterov: false, weightDecay: 0), lr: 0.5, parameters: [w])
        w.grad = Tensor(shape: [2], values: [3, 4])
        #expect(opt.clipGradNorm(1) == 5)
        opt.update()
        #expect(abs(w.value.values[0] - 0.7) < 1e-5 && abs(w.value.values[1] - 0.6) < 1e-5)
    }
}
