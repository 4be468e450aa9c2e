import Architecture
import Foundation
import NN
import Parity
import Spec
import StageConfig
import Tensor
import Testing

/// The builder and the architecture description are one network: for every model
/// in specs/ and in the PyTorch reference cases, square and non-square inputs,
/// the forward pass produces exactly the manifest's taps with their channels and
/// strides, and the built model has exactly the weight manifest's tensors, in order.
@Suite struct ArchitectureContractTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// Every distinct architecture, with where it comes from.
    static let architectures: [(String, ModelArchitecture)] = {
        var out: [(String, ModelArchitecture)] = []
        for path in ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/thesis/study.yaml", "specs/reproduce-thesis-bugs.yaml"] {
            guard let spec = SpecChecker.check(path: path, loader: SpecLoader(workingDirectory: repository), environment: [:])?.base else { continue }
            out += spec.models.map { ("\(path):\($0.name)", $0.architecture) }
        }
        let reference = repository + "/Tests/ParityTests/Reference/torch"
        out += ((try? ReferenceParity.architectures(in: reference)) ?? []).map { ("reference \($0.name)", $0.architecture) }
        var seen = Set<ModelArchitecture>()
        return out.filter { seen.insert($0.1).inserted }
    }()

    @Test func everySourceOfArchitecturesIsRead() throws {
        _ = try ReferenceParity.architectures(in: Self.repository + "/Tests/ParityTests/Reference/torch")
        // quickstart 2, study 4, the bug reproduction's (same as the study's), reference: S1, small T1, small T2, a 3D U-Net.
        #expect(Self.architectures.count >= 9, "\(Self.architectures.map(\.0))")
        #expect(Self.architectures.contains { if case .transunet = $0.1 { return true }; return false })
        #expect(Self.architectures.contains { $0.1.spatialDimensions == 3 })
    }

    static func volume(_ a: ModelArchitecture) -> VolumeLevels? {
        if case .unet(let u) = a { return u.volume }
        return nil
    }

    /// The sizes a model is tried at: the smallest square it accepts and a non-square one.
    static func sizes(_ a: ModelArchitecture) -> [(Int, Int)] {
        let d = a.inputDivisor
        let side = max(d, 16)
        return [(side, side), (side, side + d * max(1, 32 / d))]
    }

    @Test(arguments: architectures.map(\.0))
    func forwardPassMatchesTheManifestAndTheCount(_ name: String) throws {
        let arch = try #require(Self.architectures.first { $0.0 == name }?.1)
        let manifest = arch.tapManifest
        for (h, w) in Self.sizes(arch) {
            let model = ModelBuilder.build(arch, height: h, width: w, seed: 1)
            #expect(model.store.parameterCount == arch.parameterCount(height: h, width: w), "\(name) at \(h)x\(w)")
            let weights = arch.weightManifest(height: h, width: w)
            #expect(weights.filter { !$0.isBuffer }.map(\.name) == model.store.names, "\(name): parameters differ from the weight manifest")
            #expect(weights.filter(\.isBuffer).map(\.name) == model.store.bufferNames, "\(name): buffers differ from the weight manifest")
            for entry in weights {
                #expect(model.store.stateDict[entry.name]?.shape == entry.shape, "\(name) at \(h)x\(w): \(entry.name)")
            }
            // A volume network takes a depth of twice its depth divisor.
            let depth = Self.volume(arch).map { [2 * $0.divisor[0]] } ?? []
            var rng = RNG(seed: 2)
            let out = Tape.noGrad { model.forward(Variable(rng.uniformTensor([1, arch.inChannels] + depth + [h, w], 0, 1)), training: false) }
            #expect(Set(out.taps.keys) == Set(manifest.names), "\(name) at \(h)x\(w): taps differ from the manifest")
            for tap in manifest.taps {
                let shape = try #require(out.taps[tap.name]?.shape, "\(name): no tap \(tap.name)")
                switch tap.shape {
                case .map(let stride):
                    #expect(shape == [1, tap.channels, h / stride, w / stride], "\(name) at \(h)x\(w): \(tap.name) is \(shape), manifest says \(tap.summary)")
                case .tokens:
                    guard case .transunet(let t) = arch else { Issue.record("token tap on a U-Net"); continue }
                    #expect(shape == [1, t.tokens(height: h, width: w), tap.channels], "\(name) at \(h)x\(w): \(tap.name) is \(shape)")
                case .volume(let s):
                    #expect(shape == [1, tap.channels, depth[0] / s[0], h / s[1], w / s[2]], "\(name) at \(h)x\(w): \(tap.name) is \(shape), manifest says \(tap.summary)")
                }
            }
            for head in arch.heads { #expect(out.logits[head.name]?.shape == [1, head.channels] + depth + [h, w]) }
        }
    }

    @Test func theHybridTakesNonSquareInputs() throws {
        // 64 x 96 with a stride-16 encoder and patch 1: a 4 x 6 token grid.
        let t = TransUNetArchitecture(inChannels: 1, stemWidth: 4, stageWidths: [8, 8, 8], bottleneck: 8, decoderWidths: [8, 8, 8, 4],
                                      patch: 1, vitBlocks: 1, vitHeads: 2, vitDim: 8, vitMLP: 16, heads: [Head(name: "segmentation", channels: 1)])
        #expect(t.tokenGrid(height: 64, width: 96) == (4, 6))
        let model = ModelBuilder.build(.transunet(t), height: 64, width: 96, seed: 0)
        let out = Tape.noGrad { model.forward(Variable(Tensor(zeros: [2, 1, 64, 96])), training: false) }
        #expect(out.taps["vit"]?.shape == [2, 24, 8])
        #expect(out.logits["segmentation"]?.shape == [2, 1, 64, 96])
        #expect(model.store.parameters["vit.pos_embed"]?.shape == [25, 8])
    }
}
