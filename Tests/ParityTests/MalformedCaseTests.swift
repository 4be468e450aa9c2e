import Foundation
import NN
import Parity
import Tensor
import Testing

/// `distill parity` on malformed cases: every problem is a failure naming the case and the
/// key, never a read out of bounds or a trap, and the other cases still run.
@Suite struct MalformedCaseTests {
    static let directory = ParityTests.directory

    /// A copy of reference case `name` with tensors replaced and params changed, written to a temporary file.
    func variant(of name: String, replacing: [String: Tensor] = [:], params change: [String: Any] = [:]) throws -> String {
        let file = try SafetensorsFile(path: "\(Self.directory)/\(name).safetensors")
        var tensors: [String: Tensor] = [:]
        for n in file.names { tensors[n] = try file.tensor(n) }
        for (k, v) in replacing { tensors[k] = v }
        var metadata = file.metadata
        var params = (try JSONSerialization.jsonObject(with: Data((metadata["params"] ?? "{}").utf8)) as? [String: Any]) ?? [:]
        for (k, v) in change { params[k] = v }
        metadata["params"] = String(decoding: try JSONSerialization.data(withJSONObject: params), as: UTF8.self)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parity-\(name)-\(UUID().uuidString).safetensors").path
        try SafetensorsFile.write(tensors, metadata: metadata, to: path)
        return path
    }

    func run(_ path: String) -> ParityResult {
        defer { try? FileManager.default.removeItem(atPath: path) }
        return ReferenceParity.run(path: path)
    }

    @Test func aWeightWhoseChannelsDoNotFitItsInputIsNamed() throws {
        let weight = try SafetensorsFile(path: "\(Self.directory)/conv2d_k3s1p1.safetensors").tensor("param.weight")
        var shape = weight.shape
        shape[1] += 1
        let r = run(try variant(of: "conv2d_k3s1p1", replacing: ["param.weight": Tensor(zeros: shape)]))
        #expect(!r.passed && r.error?.contains("case 'conv2d_k3s1p1': param.weight has shape \(shape)") == true, "\(r.error ?? "")")
    }

    /// A gradient seed shorter than its output used to be read past its end.
    @Test func aShortGradientSeedIsNamed() throws {
        let gout = try SafetensorsFile(path: "\(Self.directory)/relu.safetensors").tensor("gout.y")
        let r = run(try variant(of: "relu", replacing: ["gout.y": Tensor(zeros: [gout.count / 2])]))
        #expect(!r.passed && r.error?.contains("gout.y has shape [\(gout.count / 2)], expected \(gout.shape)") == true, "\(r.error ?? "")")
    }

    /// The same number of elements in another shape is another tensor.
    @Test func outputsAreComparedByShape() throws {
        let y = try SafetensorsFile(path: "\(Self.directory)/relu.safetensors").tensor("out.y")
        let r = run(try variant(of: "relu", replacing: ["out.y": Tensor(shape: [y.count], values: Array(UnsafeBufferPointer(start: y.pointer, count: y.count)))]))
        let comparison = r.comparisons.first { $0.name == "out.y" }
        #expect(!r.passed && comparison?.passed == false && comparison?.note?.contains("expected [\(y.count)]") == true, "\(r.comparisons)")
    }

    /// Parameters the runner does not implement are refused, not ignored.
    @Test func unimplementedParametersAreReportedAsUnsupported() throws {
        let transposed = run(try variant(of: "conv_transpose2d_k2s2", params: ["output_padding": 1]))
        #expect(transposed.error?.contains("unsupported parameter output_padding = 1") == true, "\(transposed.error ?? "")")
        let pooled = run(try variant(of: "maxpool2d_k2s2", params: ["ceil_mode": true, "padding": 1]))
        #expect(pooled.error?.contains("unsupported parameters padding = 1, ceil_mode = 1") == true, "\(pooled.error ?? "")")
    }
}
