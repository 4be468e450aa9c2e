import Tensor

/// One operation of a forward pass, with what another graph format needs to
/// compute it again: the network is written once, as calls to `F`, and an
/// exporter (ONNX) reads the pass back as a list of these.
public enum TracedOp {
    /// Convolution over 2 or 3 spatial axes; stride, padding and dilation per axis.
    case convolution(stride: [Int], padding: [Int], dilation: [Int])
    case convTranspose(stride: [Int], padding: [Int])
    case maxPool(kernel: [Int], stride: [Int])
    case avgPool(kernel: [Int], stride: [Int])
    case resizeBilinear(alignCorners: Bool)
    case resizeNearest
    /// Eval-mode batch norm over the running statistics (the buffers themselves).
    case batchNorm(mean: Tensor, variance: Tensor, eps: Float, relu: Bool)
    /// Group norm; instance norm is the case groups == channels.
    case groupNorm(groups: Int, eps: Float, relu: Bool)
    case layerNorm(eps: Float)
    case activation(Activation)
    case softmax(axis: Int, log: Bool)
    /// x [..., in] times weight [out, in] (or [in, out] when input-major), plus bias.
    case linear(weightIsInputMajor: Bool)
    case bmm(transposeB: Bool)
    case reshape
    case permute([Int])
    case concat(axis: Int)
    case add, mul
    case scale(Float)
    /// x [..., D...] + b broadcast over the leading dimensions.
    case addBroadcast
    /// out[i] = x.flat[map[i]], reshaped to the output's shape.
    case gather(map: [Int32])
    case narrow(axis: Int, start: Int, length: Int)
    /// A [1, 1, D] token put in front of each of the N sequences of [N, L, D].
    case prependToken
}

/// A traced operation: its inputs (nil where an optional input, a bias, was absent)
/// and its output, as the variables the pass computed.
public struct TracedNode {
    public let op: TracedOp
    public let inputs: [Variable?]
    public let output: Variable
}

/// Records the operations run inside `record`, in order. Task-local, like the tape.
public final class Trace: @unchecked Sendable {
    public private(set) var nodes: [TracedNode] = []

    @TaskLocal static var active: Trace?

    public init() {}

    public func record<T>(_ body: () throws -> T) rethrows -> T {
        try Trace.$active.withValue(self) { try body() }
    }

    /// `output`, noted as computed by `op` from `inputs` when a trace is recording.
    static func note(_ op: TracedOp, _ inputs: [Variable?], _ output: Variable) -> Variable {
        active?.nodes.append(TracedNode(op: op, inputs: inputs, output: output))
        return output
    }

    /// Runs `body` without recording: an operation built from others is noted once, as itself.
    static func unrecorded<T>(_ body: () -> T) -> T {
        guard active != nil else { return body() }
        return Trace.$active.withValue(nil) { body() }
    }
}
