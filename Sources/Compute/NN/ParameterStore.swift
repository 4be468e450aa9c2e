import Tensor

/// A model's named parameters and buffers, in definition order, named as in
/// ../shared/reference/README.md (`encoder.0.conv0.weight`, ...).
public final class ParameterStore {
    public private(set) var names: [String] = []
    public private(set) var parameters: [String: Variable] = [:]
    public private(set) var bufferNames: [String] = []
    public private(set) var buffers: [String: Tensor] = [:]

    public init() {}

    public func add(_ name: String, _ value: Tensor) -> Variable {
        let v = Variable(value, requiresGrad: true)
        names.append(name)
        parameters[name] = v
        return v
    }

    public func addBuffer(_ name: String, _ value: Tensor) -> Tensor {
        bufferNames.append(name)
        buffers[name] = value
        return value
    }

    /// Learnable parameters in definition order.
    public var ordered: [Variable] { names.compactMap { parameters[$0] } }

    public var parameterCount: Int { ordered.reduce(0) { $0 + $1.value.count } }

    /// Every tensor by name (parameters, then buffers): a checkpoint's content.
    public var stateDict: [String: Tensor] {
        var d: [String: Tensor] = [:]
        for n in names { d[n] = parameters[n]?.value }
        for n in bufferNames { d[n] = buffers[n] }
        return d
    }

    /// Copies values in from `tensors`, checking names and shapes; every mismatch is listed.
    public func load(_ tensors: [String: Tensor], source: String, strict: Bool = true) throws {
        var problems: [String] = []
        for name in names + bufferNames {
            let target = parameters[name]?.value ?? buffers[name]
            guard let t = tensors[name], let target else {
                if strict { problems.append("missing '\(name)'") }
                continue
            }
            guard t.shape == target.shape else {
                problems.append("'\(name)' has shape \(t.shape), the model expects \(target.shape)")
                continue
            }
            target.pointer.update(from: t.pointer, count: t.count)
        }
        if strict {
            let known = Set(names + bufferNames)
            for name in tensors.keys.sorted() where !known.contains(name) { problems.append("unexpected '\(name)'") }
        }
        if !problems.isEmpty { throw CheckpointError.mismatch(source, problems) }
    }
}

public enum CheckpointError: Error, CustomStringConvertible {
    case mismatch(String, [String])

    public var description: String {
        switch self {
        case .mismatch(let source, let problems):
            let shown = problems.prefix(12).joined(separator: "; ")
            return "\(source) does not fit the model: \(shown)\(problems.count > 12 ? "; and \(problems.count - 12) more" : "")"
        }
    }
}

/// PyTorch's default initialisation: kaiming-uniform weights (a = sqrt(5), so
/// bound = 1/sqrt(fan_in)) and uniform biases with the same bound.
public enum Initializer {
    public static func uniform(_ shape: [Int], fanIn: Int, rng: inout RNG) -> Tensor {
        let bound = 1 / Float(max(1, fanIn)).squareRoot()
        return rng.uniformTensor(shape, -bound, bound)
    }
}
