import Architecture
import Foundation
import Interchange
import NN
import Parity
import Spec
import Tensor
import Testing

/// The tools of .build/venv (ONNX, ONNX Runtime, TensorBoard), which `make test` installs.
enum PythonTools {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let python = repository + "/.build/venv/bin/python3"
    static let scripts = repository + "/Tests/InterchangeTests/Python"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs a script of Tests/InterchangeTests/Python and returns what it printed as JSON.
    static func run(_ script: String, _ arguments: [String]) throws -> Any {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Failure(description: "\(python) is missing: `make test` creates it from Tests/python-requirements.txt (onnx, onnxruntime, tensorboard)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [scripts + "/" + script] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failure(description: "\(script) failed: \(problem.suffix(3000))") }
        return try JSONSerialization.jsonObject(with: data)
    }
}

/// Every network Distillery trains, exported to ONNX and run by ONNX Runtime: the
/// file passes onnx.checker and ONNX Runtime's logits match Distillery's within
/// 1e-5 of the largest logit, at the traced shape and, where the graph is
/// shape-agnostic, at another batch and size.
@Suite struct ONNXExportTests {
    /// Every distinct architecture of specs/ and of the PyTorch reference cases.
    static let architectures: [(String, ModelArchitecture)] = {
        var out: [(String, ModelArchitecture)] = []
        let root = PythonTools.repository
        let specs = (FileManager.default.enumerator(atPath: root + "/specs")?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
        for path in specs {
            guard let checked = SpecChecker.check(path: "specs/" + path, loader: SpecLoader(workingDirectory: root), environment: [:]) else { continue }
            for spec in [checked.base].compactMap({ $0 }) + checked.variants.compactMap(\.spec) {
                out += spec.models.map { ("specs/\(path):\($0.name)", $0.architecture) }
            }
        }
        out += ((try? ReferenceParity.architectures(in: root + "/Tests/ParityTests/Reference/torch")) ?? []).map { ("reference \($0.name)", $0.architecture) }
        var seen = Set<ModelArchitecture>()
        return out.filter { seen.insert($0.1).inserted }
    }()

    @Test func everyKindOfNetworkIsCovered() {
        let kinds = Set(Self.architectures.map { a -> String in
            switch a.1 {
            case .unet(let u): return "unet \(u.norm) \(u.upsampling) heads \(u.heads.count)"
            case .transunet: return "transunet"
            }
        })
        #expect(kinds.contains("transunet"), "\(kinds)")
        #expect(kinds.contains { $0.hasPrefix("unet") && $0.hasSuffix("heads 2") }, "no multi-task U-Net in \(kinds)")
        #expect(Self.architectures.count >= 8, "\(Self.architectures.map(\.0))")
    }

    /// Random running statistics, so that eval-mode batch norm is not the identity.
    static func perturbBuffers(_ model: SegmentationModel, seed: UInt64) {
        var rng = RNG(seed: seed)
        for name in model.store.bufferNames {
            guard let t = model.store.buffers[name] else { continue }
            let values = name.hasSuffix("running_var") ? rng.uniformTensor(t.shape, 0.5, 1.5) : rng.uniformTensor(t.shape, -0.2, 0.2)
            t.pointer.update(from: values.pointer, count: t.count)
        }
    }

    static func write(_ t: Tensor, _ path: String) throws {
        try Data(bytes: t.pointer, count: t.count * 4).write(to: URL(fileURLWithPath: path))
    }

    @Test func everyArchitectureRunsInONNXRuntimeAsInDistillery() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-onnx-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var expectDynamic: [String: Bool] = [:]
        for (index, (name, arch)) in Self.architectures.enumerated() {
            let d = arch.inputDivisor, side = max(d, 16), (h, w) = (side, side + d)
            // A volume network: a depth of twice its depth divisor, and one divisor more in the second run.
            var depthDivisor: Int?
            if case .unet(let u) = arch, let v = u.volume { depthDivisor = v.divisor[0] }
            let depth = depthDivisor.map { [2 * $0] } ?? [], otherDepth = depthDivisor.map { [3 * $0] } ?? []
            let model = ModelBuilder.build(arch, height: h, width: w, seed: UInt64(index + 1))
            Self.perturbBuffers(model, seed: UInt64(index + 100))
            var rng = RNG(seed: UInt64(index + 7))
            let input = rng.uniformTensor([1, arch.inChannels] + depth + [h, w], -1, 1)
            let result = try ONNXExport.export(model, head: "segmentation", input: input, graphName: name,
                                               metadata: [("distillery.case", name)], producerVersion: "test")
            let folder = "\(dir)/case\(index)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try result.model.write(to: URL(fileURLWithPath: folder + "/model.onnx"))
            try Self.write(input, folder + "/traced.input.f32")
            try Self.write(result.logits, folder + "/traced.logits.f32")
            var shapes: [String: Any] = ["traced": ["input": input.shape, "logits": result.logits.shape]]
            // A shape-agnostic graph runs at batch 2 and another size as Distillery does.
            if result.dynamic {
                let other = rng.uniformTensor([2, arch.inChannels] + otherDepth + [h + 2 * d, w + d], -1, 1)
                let logits = Tape.noGrad { model.forward(Variable(other), training: false, taps: []).logits["segmentation"] }
                let reference = try #require(logits?.value)
                try Self.write(other, folder + "/other.input.f32")
                try Self.write(reference, folder + "/other.logits.f32")
                shapes["other"] = ["input": other.shape, "logits": reference.shape]
            }
            if case .unet = arch { expectDynamic["case\(index)"] = true } else { expectDynamic["case\(index)"] = false }
            #expect(result.dynamic == (expectDynamic["case\(index)"] ?? false), "\(name): dynamic \(result.dynamic)")
            try JSONSerialization.data(withJSONObject: shapes).write(to: URL(fileURLWithPath: folder + "/shapes.json"))
        }
        let report = try #require(try PythonTools.run("onnx_check.py", [dir]) as? [String: [String: Any]])
        #expect(report.count == Self.architectures.count)
        for (index, (name, _)) in Self.architectures.enumerated() {
            let entry = try #require(report["case\(index)"], "\(name) not run")
            #expect(entry["checker"] as? String == "ok", "\(name): onnx.checker: \(entry["checker"] ?? "?")")
            #expect(entry["opset"] as? [Int] == [Int(ONNXExport.opset)], "\(name)")
            #expect((entry["metadata"] as? [String: String])?["distillery.case"] == name)
            let runs = try #require(entry["runs"] as? [String: [String: Any]], "\(name): not run")
            #expect(runs.count == ((expectDynamic["case\(index)"] ?? false) ? 2 : 1), "\(name)")
            for (run, r) in runs {
                let difference = try #require(r["max_abs_difference"] as? Double, "\(name) \(run): ONNX Runtime gave shape \(r["shape"] ?? "?")")
                let largest = try #require(r["max_abs_logit"] as? Double)
                #expect(largest > 0, "\(name) \(run): all logits are zero; the comparison would say nothing")
                #expect(difference <= 1e-5 * largest, "\(name) \(run): ONNX Runtime differs by \(difference), largest logit \(largest)")
            }
        }
    }

    @Test func anUnknownHeadIsNamed() throws {
        let arch = try #require(Self.architectures.first { $0.1.spatialDimensions == 2 }?.1)
        let d = max(arch.inputDivisor, 16)
        let model = ModelBuilder.build(arch, height: d, width: d, seed: 1)
        var rng = RNG(seed: 1)
        #expect {
            _ = try ONNXExport.export(model, head: "nope", input: rng.uniformTensor([1, arch.inChannels, d, d], 0, 1), graphName: "x",
                                      metadata: [], producerVersion: "test")
        } throws: { "\($0)".contains("no head 'nope'; heads: ") }
        // A sample input of the wrong rank (a slice for a 3D network) is an error, not a trap.
        let volume = try #require(Self.architectures.first { $0.1.spatialDimensions == 3 }?.1)
        let model3D = ModelBuilder.build(volume, height: 16, width: 16, seed: 1)
        #expect {
            _ = try ONNXExport.export(model3D, head: "segmentation", input: rng.uniformTensor([1, volume.inChannels, 16, 16], 0, 1), graphName: "x",
                                      metadata: [], producerVersion: "test")
        } throws: { "\($0)".contains("but the model takes [N, \(volume.inChannels), D, H, W]") }
    }
}
