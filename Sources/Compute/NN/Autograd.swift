import Tensor

/// A value in a computation, with the gradient that flows back to it.
public final class Variable: @unchecked Sendable {
    public var value: Tensor
    /// Accumulated gradient (same shape as value); nil until something flows back.
    public var grad: Tensor?
    public let requiresGrad: Bool

    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
    }

    /// The value's shape, also after `releaseValue`.
    public var shape: [Int] { releasedShape ?? value.shape }
    private var releasedShape: [Int]?

    /// The gradient buffer, created zero-filled on first use; backward rules add into it.
    public func gradBuffer() -> UnsafeMutablePointer<Float> {
        if grad == nil { grad = Tensor(zeros: shape) }
        return grad.unsafelyUnwrapped.pointer
    }

    /// Frees the value of an intermediate that nothing will read again (no backward rule
    /// reads it, no caller holds it), keeping its shape and its place on the tape, so that
    /// it does not wait for backward in memory. A U-Net's up-sampled map, copied into the
    /// concatenation with its skip, is one: PyTorch frees it there too.
    public func releaseValue() {
        releasedShape = value.shape
        value = Tensor(zeros: [0])
    }

    /// `gradBuffer()` when this variable wants a gradient, else nil.
    public var gradTarget: UnsafeMutablePointer<Float>? { requiresGrad ? gradBuffer() : nil }

    /// Where a backward rule that writes every element of this variable's gradient puts it,
    /// or nil when the variable wants none. The first such write gets the buffer uninitialised
    /// (`accumulate` false: the rule overwrites it, with no zero-fill and no read before the
    /// write); a later one (the variable feeds several ops) adds into it. Call once per rule
    /// and write the whole gradient before another rule runs.
    public var gradDestination: (pointer: UnsafeMutablePointer<Float>, accumulate: Bool)? {
        guard requiresGrad else { return nil }
        if let grad { return (grad.pointer, true) }
        let fresh = Tensor(uninitialized: shape)
        grad = fresh
        return (fresh.pointer, false)
    }

    public func zeroGrad() { grad = nil }
}

/// Reverse-mode automatic differentiation over a tape.
///
/// Operations record a node (output plus a backward rule) while a tape is
/// recording and one of their inputs requires a gradient. `backward` walks the
/// tape in reverse and frees each node as soon as it has run, so intermediates
/// live no longer than backward needs them. Under `noGrad` nothing is recorded
/// and no closure is allocated.
public final class Tape: @unchecked Sendable {
    struct Node {
        let output: Variable
        let rule: () -> Void
    }

    private var nodes: [Node] = []

    /// The recording tape and the no-grad switch are task-local: concurrent
    /// computations (tests, parallel stages) each see their own.
    @TaskLocal static var active: Tape?
    @TaskLocal static var gradEnabled = true

    public init() {}

    /// Records every differentiable operation run inside `body` on this tape.
    public func record<T>(_ body: () throws -> T) rethrows -> T {
        try Tape.$active.withValue(self) { try body() }
    }

    /// Evaluation without a tape: no nodes, no saved tensors.
    public static func noGrad<T>(_ body: () throws -> T) rethrows -> T {
        try Tape.$gradEnabled.withValue(false) { try body() }
    }

    static var isRecording: Bool { gradEnabled && active != nil }

    /// The output variable of an operation; `rule` is kept only when a gradient can flow.
    static func output(_ value: Tensor, inputs: [Variable?], rule: @escaping (Variable) -> Void) -> Variable {
        guard isRecording, let tape = active, inputs.contains(where: { $0?.requiresGrad == true }) else {
            return Variable(value)
        }
        let out = Variable(value, requiresGrad: true)
        tape.nodes.append(Node(output: out) { rule(out) })
        return out
    }

    /// Back-propagates from a scalar: d(loss)/d(loss) = 1 (or `seed`), then every rule in reverse.
    public func backward(_ loss: Variable, seed: Tensor? = nil) {
        backward([(loss, seed ?? Tensor(shape: loss.shape, repeating: 1))])
    }

    /// Back-propagates L = sum over outputs of <output, seed> (a vector-Jacobian product).
    public func backward(_ seeds: [(Variable, Tensor)]) {
        for (v, s) in seeds { v.grad = s.copy() }
        let roots = Set(seeds.map { ObjectIdentifier($0.0) })
        while let node = nodes.popLast() {
            if node.output.grad != nil { node.rule() }
            // The output is an intermediate: its gradient is no longer needed.
            if !roots.contains(ObjectIdentifier(node.output)) { node.output.grad = nil }
        }
    }

    public var nodeCount: Int { nodes.count }
}
