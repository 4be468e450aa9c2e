import Foundation
import NN
import SwiftProtobuf
import Tensor

/// A trained network as an ONNX model (opset 17, IR version 8) that ONNX Runtime,
/// TensorRT or OpenVINO run without Distillery.
///
/// The graph is not written by hand per architecture: the model's own eval-mode
/// forward pass runs once under a `Trace`, and each traced operation becomes one or
/// a few ONNX nodes. Batch norm is a BatchNormalization node over the running
/// statistics (not folded into the convolution, so a reader sees the layers it
/// trained). Weights keep their checkpoint names.
///
/// A graph of shape-agnostic operations (convolutions, pooling, normalisation,
/// concatenation, resizing by whole factors) gets symbolic batch, height and width;
/// a graph with an operation that fixes token counts or shapes (the hybrid's patch
/// embedding and position embedding) is exported for the traced input shape only.
public enum ONNXExport {
    public static let opset: Int64 = 17
    public static let irVersion: Int64 = 8

    /// The model file, the logits Distillery computed for the traced input, and
    /// whether batch and spatial dimensions are symbolic.
    public struct Result {
        public let model: Data
        public let logits: Tensor
        public let dynamic: Bool
        public let nodeCount: Int
    }

    public enum Failure: Error, CustomStringConvertible {
        case noHead(String, known: [String])
        case unnamedInput(op: String)
        case inputShape([Int], expected: String)

        public var description: String {
            switch self {
            case .noHead(let h, let known): return "the model has no head '\(h)'; heads: \(known.joined(separator: ", "))"
            case .unnamedInput(let op): return "an input of a traced \(op) is neither the image, a weight nor an earlier output (the exporter does not know it)"
            case .inputShape(let shape, let expected): return "the sample input is \(shape), but the model takes \(expected)"
            }
        }
    }

    /// Traces `model` on `input` [N, C, H, W] (a 3D network's [N, C, D, H, W]) in eval mode and writes the graph from
    /// the image to the logits of `head`. `metadata` goes into the model's metadata_props.
    public static func export(_ model: SegmentationModel, head: String, input: Tensor, graphName: String,
                              metadata: [(String, String)], producerVersion: String) throws -> Result {
        let spatial = model.architecture.spatialDimensions
        guard input.rank == 2 + spatial, input.shape[1] == model.architecture.inChannels else {
            throw Failure.inputShape(input.shape, expected: "[N, \(model.architecture.inChannels), \(spatial == 3 ? "D, H, W" : "H, W")]")
        }
        let trace = Trace()
        let image = Variable(input)
        let out = Tape.noGrad { trace.record { model.forward(image, training: false, taps: []) } }
        guard let logits = out.logits[head] else { throw Failure.noHead(head, known: out.logits.keys.sorted()) }
        var graph = GraphBuilder(store: model.store)
        graph.names[ObjectIdentifier(image)] = "image"
        // Only the operations the head's logits depend on (the other heads' decoders drop out).
        let needed = GraphBuilder.ancestors(of: logits, in: trace.nodes)
        for node in trace.nodes where needed.contains(ObjectIdentifier(node.output)) {
            try graph.emit(node, name: node.output === logits ? "logits" : nil)
        }
        let dynamic = !graph.shapeBound
        var g = Onnx_GraphProto()
        g.name = graphName
        g.node = graph.nodes
        g.initializer = graph.initializers
        // The batch and spatial sizes are named (free) in a shape-agnostic graph; channels stay fixed.
        let axes: [String?] = input.rank == 5 ? ["batch", nil, "depth", "height", "width"] : ["batch", nil, "height", "width"]
        g.input = [valueInfo("image", input.shape, dynamic ? axes : nil)]
        g.output = [valueInfo("logits", logits.shape, dynamic ? axes : nil)]
        var m = Onnx_ModelProto()
        m.irVersion = irVersion
        m.producerName = "distillery"
        m.producerVersion = producerVersion
        m.graph = g
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Self.opset
        m.opsetImport = [opset]
        m.metadataProps = (metadata + [("distillery.dynamic_axes", dynamic ? "batch, height, width" : "none: the traced shape only")]).map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
        return Result(model: try m.serializedData(), logits: logits.value.copy(), dynamic: dynamic, nodeCount: graph.nodes.count)
    }

    static func valueInfo(_ name: String, _ shape: [Int], _ symbols: [String?]?) -> Onnx_ValueInfoProto {
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var s = Onnx_TensorShapeProto()
        s.dim = shape.enumerated().map { i, n in
            var d = Onnx_TensorShapeProto.Dimension()
            if let symbol = symbols?[i] { d.dimParam = symbol } else { d.dimValue = Int64(n) }
            return d
        }
        t.shape = s
        var type = Onnx_TypeProto()
        type.tensorType = t
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type = type
        return v
    }
}

/// Turns traced operations into ONNX nodes, naming every value once.
struct GraphBuilder {
    var nodes: [Onnx_NodeProto] = []
    var initializers: [Onnx_TensorProto] = []
    var names: [ObjectIdentifier: String] = [:]
    /// Whether some node fixes the batch or spatial size.
    var shapeBound = false
    private var parameterNames: [ObjectIdentifier: String] = [:]
    private var bufferNames: [UnsafeMutablePointer<Float>: String] = [:]
    private var written: Set<String> = []
    private var counter = 0

    init(store: ParameterStore) {
        for (name, v) in store.parameters { parameterNames[ObjectIdentifier(v)] = name }
        for (name, t) in store.buffers { bufferNames[t.pointer] = name }
    }

    /// The traced outputs `target` depends on.
    static func ancestors(of target: Variable, in nodes: [TracedNode]) -> Set<ObjectIdentifier> {
        var producer: [ObjectIdentifier: TracedNode] = [:]
        for n in nodes { producer[ObjectIdentifier(n.output)] = n }
        var seen: Set<ObjectIdentifier> = [], stack = [target]
        while let v = stack.popLast() {
            let id = ObjectIdentifier(v)
            guard let n = producer[id], seen.insert(id).inserted else { continue }
            stack += n.inputs.compactMap { $0 }
        }
        return seen
    }

    mutating func fresh(_ stem: String) -> String {
        counter += 1
        return "\(stem)_\(counter)"
    }

    /// The name of an input: an earlier output, the image, or a weight (written as an initializer on first use).
    mutating func name(of v: Variable, op: String) throws -> String {
        if let n = names[ObjectIdentifier(v)] { return n }
        guard let p = parameterNames[ObjectIdentifier(v)] else { throw ONNXExport.Failure.unnamedInput(op: op) }
        if written.insert(p).inserted { initializers.append(Self.tensor(p, v.value)) }
        names[ObjectIdentifier(v)] = p
        return p
    }

    /// A buffer of the store (running statistics) by its checkpoint name, else a new constant.
    mutating func constant(_ t: Tensor, stem: String) -> String {
        let n = bufferNames[t.pointer] ?? fresh(stem)
        if written.insert(n).inserted { initializers.append(Self.tensor(n, t)) }
        return n
    }

    mutating func floats(_ values: [Float], shape: [Int], stem: String) -> String {
        constant(Tensor(shape: shape, values: values), stem: stem)
    }

    mutating func ints(_ values: [Int64], stem: String) -> String {
        let n = fresh(stem)
        var t = Onnx_TensorProto()
        t.name = n
        t.dims = [Int64(values.count)]
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        initializers.append(t)
        return n
    }

    static func tensor(_ name: String, _ value: Tensor) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = value.shape.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        // Little-endian float32, as ONNX stores raw data.
        t.rawData = Data(bytes: value.pointer, count: value.count * MemoryLayout<Float>.size)
        return t
    }

    @discardableResult
    mutating func node(_ op: String, _ inputs: [String], output: String? = nil, _ attributes: [Onnx_AttributeProto] = []) -> String {
        let out = output ?? fresh(op.lowercased())
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = out
        n.input = inputs
        n.output = [out]
        n.attribute = attributes
        nodes.append(n)
        return out
    }

    static func attr(_ name: String, ints: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = ints.map(Int64.init)
        return a
    }

    static func attr(_ name: String, int: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(int)
        return a
    }

    static func attr(_ name: String, float: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = float
        return a
    }

    static func attr(_ name: String, string: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(string.utf8)
        return a
    }

    /// A [C] parameter as [C, 1, 1] (or with as many ones as `x` has spatial axes), to broadcast over NCHW.
    mutating func perChannel(_ name: String, channels: Int, rank: Int) -> String {
        node("Reshape", [name, ints([Int64(channels)] + Array(repeating: 1, count: max(0, rank - 2)), stem: "shape")])
    }

    /// Emits the nodes of one traced operation; `name` names its output (else a fresh name).
    mutating func emit(_ t: TracedNode, name: String?) throws {
        let opName = "\(t.op)".prefix { $0 != "(" }
        var ins: [String?] = []
        for v in t.inputs { ins.append(try v.map { try self.name(of: $0, op: String(opName)) }) }
        let x = ins.first.flatMap { $0 } ?? ""
        let shape = t.inputs.first??.shape ?? []
        let out: String
        switch t.op {
        case .convolution(let stride, let padding, let dilation):
            out = node("Conv", ins.compactMap { $0 }, output: name, [
                Self.attr("kernel_shape", ints: Array((t.inputs[1]?.shape ?? []).dropFirst(2))), Self.attr("strides", ints: stride),
                Self.attr("pads", ints: padding + padding), Self.attr("dilations", ints: dilation),
            ])
        case .convTranspose(let stride, let padding):
            out = node("ConvTranspose", ins.compactMap { $0 }, output: name, [
                Self.attr("kernel_shape", ints: Array((t.inputs[1]?.shape ?? []).dropFirst(2))), Self.attr("strides", ints: stride),
                Self.attr("pads", ints: padding + padding),
            ])
        case .maxPool(let kernel, let stride):
            out = node("MaxPool", [x], output: name, [Self.attr("kernel_shape", ints: kernel), Self.attr("strides", ints: stride)])
        case .avgPool(let kernel, let stride):
            out = node("AveragePool", [x], output: name, [Self.attr("kernel_shape", ints: kernel), Self.attr("strides", ints: stride)])
        case .resizeBilinear(let alignCorners):
            out = resize(x, from: shape, to: t.output.shape, output: name, [
                Self.attr("mode", string: "linear"),
                Self.attr("coordinate_transformation_mode", string: alignCorners ? "align_corners" : "half_pixel"),
            ])
        case .resizeNearest:
            out = resize(x, from: shape, to: t.output.shape, output: name, [
                Self.attr("mode", string: "nearest"), Self.attr("coordinate_transformation_mode", string: "asymmetric"),
                Self.attr("nearest_mode", string: "floor"),
            ])
        case .batchNorm(let mean, let variance, let eps, let relu):
            let c = shape[1]
            let scale = ins[1] ?? floats(Array(repeating: 1, count: c), shape: [c], stem: "ones")
            let bias = ins[2] ?? floats(Array(repeating: 0, count: c), shape: [c], stem: "zeros")
            let y = node("BatchNormalization", [x, scale, bias, constant(mean, stem: "mean"), constant(variance, stem: "var")],
                         output: relu ? nil : name, [Self.attr("epsilon", float: eps)])
            out = relu ? node("Relu", [y], output: name) : y
        case .groupNorm(let groups, let eps, let relu):
            let c = shape[1]
            let y: String
            if groups == c {
                let scale = ins[1] ?? floats(Array(repeating: 1, count: c), shape: [c], stem: "ones")
                let bias = ins[2] ?? floats(Array(repeating: 0, count: c), shape: [c], stem: "zeros")
                y = node("InstanceNormalization", [x, scale, bias], output: relu ? nil : name, [Self.attr("epsilon", float: eps)])
            } else {
                // Groups as instances: [N, G, C/G * spatial], normalised, back to x's shape, then the per-channel affine.
                let grouped = node("Reshape", [x, ints([0, Int64(groups), -1], stem: "shape")])
                let normed = node("InstanceNormalization", [grouped, floats(Array(repeating: 1, count: groups), shape: [groups], stem: "ones"),
                                                            floats(Array(repeating: 0, count: groups), shape: [groups], stem: "zeros")],
                                  [Self.attr("epsilon", float: eps)])
                var z = node("Reshape", [normed, node("Shape", [x])])
                if let w = ins[1] { z = node("Mul", [z, perChannel(w, channels: c, rank: shape.count)]) }
                if let b = ins[2] { z = node("Add", [z, perChannel(b, channels: c, rank: shape.count)]) }
                y = relu ? z : node("Identity", [z], output: name)
            }
            out = relu ? node("Relu", [y], output: name) : y
        case .layerNorm(let eps):
            let d = shape.last ?? 1
            let scale = ins[1] ?? floats(Array(repeating: 1, count: d), shape: [d], stem: "ones")
            var inputs = [x, scale]
            if let b = ins[2] { inputs.append(b) }
            out = node("LayerNormalization", inputs, output: name, [Self.attr("axis", int: -1), Self.attr("epsilon", float: eps)])
        case .activation(let kind):
            switch kind {
            case .relu: out = node("Relu", [x], output: name)
            case .leakyRelu(let a): out = node("LeakyRelu", [x], output: name, [Self.attr("alpha", float: a)])
            case .sigmoid: out = node("Sigmoid", [x], output: name)
            case .tanh: out = node("Tanh", [x], output: name)
            case .gelu:
                // The exact (erf) GELU, as the runtime computes it: x * (1 + erf(x / sqrt 2)) / 2.
                let e = node("Erf", [node("Mul", [x, floats([Float(1 / 2.0.squareRoot())], shape: [], stem: "rsqrt2")])])
                let half = node("Mul", [x, floats([0.5], shape: [], stem: "half")])
                out = node("Mul", [half, node("Add", [e, floats([1], shape: [], stem: "one")])], output: name)
            }
        case .softmax(let axis, let log):
            out = node(log ? "LogSoftmax" : "Softmax", [x], output: name, [Self.attr("axis", int: axis)])
        case .linear(let inputMajor):
            let w = ins[1] ?? ""
            let weight = inputMajor ? w : node("Transpose", [w], [Self.attr("perm", ints: [1, 0])])
            if let b = ins[2] {
                out = node("Add", [node("MatMul", [x, weight]), b], output: name)
            } else {
                out = node("MatMul", [x, weight], output: name)
            }
        case .bmm(let transposeB):
            let b = ins[1] ?? ""
            out = node("MatMul", [x, transposeB ? node("Transpose", [b], [Self.attr("perm", ints: [0, 2, 1])]) : b], output: name)
        case .reshape:
            shapeBound = true
            out = node("Reshape", [x, ints(t.output.shape.map(Int64.init), stem: "shape")], output: name)
        case .permute(let order):
            out = node("Transpose", [x], output: name, [Self.attr("perm", ints: order)])
        case .concat(let axis):
            out = node("Concat", ins.compactMap { $0 }, output: name, [Self.attr("axis", int: axis)])
        case .add:
            out = node("Add", [x, ins[1] ?? ""], output: name)
        case .mul:
            out = node("Mul", [x, ins[1] ?? ""], output: name)
        case .scale(let s):
            out = node("Mul", [x, floats([s], shape: [], stem: "scale")], output: name)
        case .addBroadcast:
            // b covers x's trailing dimensions: it is given exactly those, then broadcast over the leading ones.
            let count = t.inputs[1]?.value.count ?? 1
            let k = (0...shape.count).first { shape[$0...].reduce(1, *) == count } ?? shape.count
            let b = node("Reshape", [ins[1] ?? "", ints(shape[k...].map(Int64.init), stem: "shape")])
            out = node("Add", [x, b], output: name)
        case .gather(let map):
            shapeBound = true
            let flat = node("Reshape", [x, ints([-1], stem: "shape")])
            let picked = node("Gather", [flat, ints(map.map(Int64.init), stem: "indices")], [Self.attr("axis", int: 0)])
            out = node("Reshape", [picked, ints(t.output.shape.map(Int64.init), stem: "shape")], output: name)
        case .narrow(let axis, let start, let length):
            out = node("Slice", [x, ints([Int64(start)], stem: "starts"), ints([Int64(start + length)], stem: "ends"), ints([Int64(axis)], stem: "axes")],
                       output: name)
        case .prependToken:
            shapeBound = true
            let d = shape[2]
            let token = node("Expand", [ins[1] ?? "", ints([Int64(shape[0]), 1, Int64(d)], stem: "shape")])
            out = node("Concat", [token, x], output: name, [Self.attr("axis", int: 1)])
        }
        names[ObjectIdentifier(t.output)] = out
    }

    /// Resize by whole factors keeps the graph shape-agnostic; any other ratio is fixed to the traced sizes.
    mutating func resize(_ x: String, from: [Int], to: [Int], output: String?, _ attributes: [Onnx_AttributeProto]) -> String {
        let (h, w, p, q) = (from[2], from[3], to[2], to[3])
        if p % h == 0, q % w == 0 {
            let scales = floats([1, 1, Float(p / h), Float(q / w)], shape: [4], stem: "scales")
            return node("Resize", [x, "", scales], output: output, attributes)
        }
        shapeBound = true
        return node("Resize", [x, "", "", ints(to.map(Int64.init), stem: "sizes")], output: output, attributes)
    }
}
