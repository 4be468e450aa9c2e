import Architecture
import Foundation
import Spec
import Testing

/// The tap manifest and parameter counts agree with the study and the reference files.
@Suite struct ArchitectureTests {
    func models() throws -> [String: ModelArchitecture] {
        let checked = try #require(SpecChecker.check(path: "specs/thesis/study.yaml", loader: SpecLoader(workingDirectory: Fixtures.repository)))
        let spec = try #require(checked.base)
        return Dictionary(uniqueKeysWithValues: spec.models.map { ($0.name, $0.architecture) })
    }

    @Test func studentsHaveTheStudysExactParameterCounts() throws {
        let m = try models()
        #expect(m["s1"]?.parameterCount(height: 256, width: 256) == 57_297)
        #expect(m["s2"]?.parameterCount(height: 256, width: 256) == 227_233)
    }

    @Test func teachersHaveTheStudysParameterCounts() throws {
        let m = try models()
        let t1 = Double(m["t1"]?.parameterCount(height: 256, width: 256) ?? 0) / 1e6
        let t2 = Double(m["t2"]?.parameterCount(height: 256, width: 256) ?? 0) / 1e6
        #expect(abs(t1 - 43.2) < 0.1, "T1 has \(t1)M parameters")
        #expect(abs(t2 - 172.6) < 0.1, "T2 has \(t2)M parameters")
    }

    @Test func unetTapsMatchTheReferenceS1() {
        let s1 = ModelArchitecture.unet(UNetArchitecture(inChannels: 3, widths: [16, 32], bottleneck: 64, convsPerBlock: 1, norm: .batch,
                                                         groups: 8, upsampling: .transpose, heads: [Head(name: "segmentation", channels: 1)], sharedDecoder: true))
        let m = s1.tapManifest
        // The reference unet_s1 case (Tests/ParityTests/Reference/README.md): pool.1 [2,32,16,16], bottleneck [2,64,16,16], decoder.1 [2,16,64,64] for a 64x64 input.
        #expect(m["pool.1"] == Tap(name: "pool.1", channels: 32, shape: .map(stride: 4)))
        #expect(m["bottleneck"] == Tap(name: "bottleneck", channels: 64, shape: .map(stride: 4)))
        #expect(m["decoder.1"] == Tap(name: "decoder.1", channels: 16, shape: .map(stride: 1)))
        #expect(m["logits.segmentation"]?.channels == 1)
    }

    @Test func transunetTapsMatchTheReferenceSmallModel() {
        let t = ModelArchitecture.transunet(TransUNetArchitecture(
            inChannels: 3, stemWidth: 8, stageWidths: [16, 32, 64], bottleneck: 32, decoderWidths: [16, 8, 4, 8], patch: 2,
            vitBlocks: 2, vitHeads: 3, vitDim: 32, vitMLP: 64,
            heads: [Head(name: "segmentation", channels: 1), Head(name: "reconstruction", channels: 3)]))
        let m = t.tapManifest
        // transunet_small: encoder.0 [2,16,16,16], bottleneck [2,32,4,4], decoder.segmentation.3 [2,8,64,64].
        #expect(m["encoder.0"] == Tap(name: "encoder.0", channels: 16, shape: .map(stride: 4)))
        #expect(m["bottleneck"] == Tap(name: "bottleneck", channels: 32, shape: .map(stride: 16)))
        #expect(m["decoder.segmentation.3"] == Tap(name: "decoder.segmentation.3", channels: 8, shape: .map(stride: 1)))
        #expect(m["vit"]?.shape == .tokens)
        #expect(t.inputDivisor == 32)
    }

    @Test func multitaskTapsNameTheirDecoder() {
        let t = ModelArchitecture.unet(UNetArchitecture(inChannels: 3, widths: [8, 16, 32, 64], bottleneck: 128, convsPerBlock: 2,
            norm: .batch, groups: 8, upsampling: .transpose, heads: [Head(name: "segmentation", channels: 1), Head(name: "reconstruction", channels: 3)], sharedDecoder: false))
        #expect(t.tapManifest["decoder.segmentation.3"]?.channels == 8)
        #expect(t.tapManifest["decoder.reconstruction.0"]?.shape == .map(stride: 8))
        #expect(t.tapManifest["decoder.3"] == nil)
    }
}

/// MAC counts agree with the study's PyTorch benchmark table (perf.md) (GFLOP = 2 x conv MACs x batch).
@Suite struct ComputeCostTests {
    func unet(_ widths: [Int], _ bottleneck: Int, _ convs: Int, heads: [Head], shared: Bool) -> ModelArchitecture {
        .unet(UNetArchitecture(inChannels: 3, widths: widths, bottleneck: bottleneck, convsPerBlock: convs, norm: .batch, groups: 8,
                               upsampling: .transpose, heads: heads, sharedDecoder: shared))
    }

    @Test func forwardMACsMatchPerfMd() {
        let seg = [Head(name: "segmentation", channels: 1)]
        let s1 = unet([16, 32], 64, 1, heads: seg, shared: true)
        let s2 = unet([32, 64], 128, 1, heads: seg, shared: true)
        let t1 = unet([64, 128, 256, 512], 1024, 2, heads: seg + [Head(name: "reconstruction", channels: 3)], shared: false)
        func gflop(_ m: ModelArchitecture, batch: Int) -> Double {
            Double(m.forwardCost(height: 256, width: 256).macs) * 2 * Double(batch) / 1e9
        }
        // perf.md prints 27.3 for S1: 27.246 rounded via 27.25; its training row, 81.7 = 3 x 27.25, agrees.
        #expect(abs(gflop(s1, batch: 16) - 27.246) < 0.001)
        #expect(abs(gflop(s2, batch: 16) - 107.1) < 0.05)
        #expect(abs(gflop(t1, batch: 8) - 1269.1) < 0.5)
    }
}
