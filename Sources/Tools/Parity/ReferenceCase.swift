import Foundation
import NN
import StageConfig
import Tensor

/// One reference file of ../shared/reference (safetensors + metadata), read for a parity check.
public struct ReferenceCase {
    public let name: String
    public let op: String
    public let params: [String: Any]
    public let file: SafetensorsFile
    let atol: Float, rtol: Float
    let tolerances: [String: (Float, Float)]

    public init(path: String) throws {
        file = try SafetensorsFile(path: path)
        name = file.metadata["case"] ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        guard let op = file.metadata["op"] else { throw SafetensorsError.badHeader(path, detail: "no 'op' in __metadata__") }
        self.op = op
        params = (file.metadata["params"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]) ?? [:]
        atol = Float(file.metadata["atol"] ?? "") ?? 1e-4
        rtol = Float(file.metadata["rtol"] ?? "") ?? 1e-4
        var tol: [String: (Float, Float)] = [:]
        if let text = file.metadata["tolerances"], let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: [Double]] {
            for (k, v) in obj where v.count == 2 { tol[k] = (Float(v[0]), Float(v[1])) }
        }
        tolerances = tol
    }

    public func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }
    public func has(_ name: String) -> Bool { file.entries[name] != nil }
    public func names(prefix: String) -> [String] { file.names.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }

    func tolerance(_ tensor: String) -> (Float, Float) { tolerances[tensor] ?? (atol, rtol) }

    /// A hyperparameter of the case; absent or of another type is an error that names it.
    public func int(_ key: String) throws -> Int {
        guard let v = (params[key] as? Int) ?? (params[key] as? Double).map({ Int($0) }) else { throw ParityError.param(name, key, "an integer") }
        return v
    }

    /// A per-axis hyperparameter: a list of `count` integers ([d, h, w] for the 3D ops).
    public func ints(_ key: String, count: Int) throws -> [Int] {
        guard let v = params[key] as? [Int], v.count == count else { throw ParityError.param(name, key, "a list of \(count) integers") }
        return v
    }

    public func float(_ key: String) throws -> Float {
        guard let v = (params[key] as? Double).map({ Float($0) }) ?? (params[key] as? Int).map({ Float($0) }) else { throw ParityError.param(name, key, "a number") }
        return v
    }

    public func bool(_ key: String) throws -> Bool {
        guard let v = params[key] as? Bool else { throw ParityError.param(name, key, "true or false") }
        return v
    }

    /// A tensor of the case that must have `shape` (nil entries: any size), or an error naming it.
    func tensor(_ key: String, shape: [Int?]) throws -> Tensor {
        let t = try tensor(key)
        guard t.shape.count == shape.count, zip(t.shape, shape).allSatisfy({ $1 == nil || $0 == $1 }) else {
            throw ParityError.shape(name, key, "[" + shape.map { $0.map(String.init) ?? "_" }.joined(separator: ", ") + "]", t.shape)
        }
        return t
    }

    /// PyTorch hyperparameters the runner does not implement, per op: a case that sets one to
    /// anything but its neutral value is refused as unsupported, not run as if it were unset.
    static let unimplemented: [String: [String]] = {
        let conv = ["groups", "padding_mode"], transposed = ["output_padding", "groups", "dilation", "padding_mode"]
        let pool = ["padding", "dilation", "ceil_mode", "return_indices"]
        return ["conv2d": conv, "conv3d": conv, "conv_transpose2d": transposed, "conv_transpose3d": transposed,
                "max_pool2d": pool, "max_pool3d": pool, "avg_pool2d": pool, "avg_pool3d": pool]
    }()

    /// The unimplemented hyperparameters this case sets, as `key = value`.
    func unsupportedParams() -> [String] {
        (Self.unimplemented[op] ?? []).filter { key in params[key].map { !Self.isNeutral(key, $0) } ?? false }
            .map { "\($0) = \(params[$0].map { "\($0)" } ?? "")" }
    }

    static func isNeutral(_ key: String, _ value: Any) -> Bool {
        if value is NSNull { return true }
        if let b = value as? Bool { return !b }
        if let n = value as? Double { return n == 0 || (["dilation", "groups"].contains(key) && n == 1) }
        if let n = value as? Int { return n == 0 || (["dilation", "groups"].contains(key) && n == 1) }
        if let list = value as? [Any] { return list.allSatisfy { isNeutral(key, $0) } }
        if let text = value as? String { return key == "padding_mode" && text == "zeros" }
        return false
    }

    /// The case's params as JSON, for decoding with the runtime's own configuration types.
    public var paramsJSON: JSON {
        (file.metadata["params"].flatMap { JSON.parse(Data($0.utf8)) }) ?? .object([:])
    }
}

/// The comparison of one tensor.
public struct TensorComparison {
    public var name: String
    public var maxAbs: Float
    public var maxRel: Float
    public var passed: Bool
    public var note: String?
}

/// The outcome of one case.
public struct ParityResult {
    public var name: String
    public var op: String
    public var comparisons: [TensorComparison] = []
    public var error: String?

    public var passed: Bool { error == nil && !comparisons.isEmpty && comparisons.allSatisfy(\.passed) }
    public var maxAbs: Float { comparisons.map(\.maxAbs).max() ?? 0 }
    public var maxRel: Float { comparisons.map(\.maxRel).max() ?? 0 }
}

extension ReferenceCase {
    /// allclose per element: |got - ref| <= atol + rtol |ref|.
    func compare(_ name: String, _ got: Tensor?, into result: inout ParityResult) {
        let ref: Tensor
        do {
            ref = try tensor(name)
        } catch {
            result.comparisons.append(TensorComparison(name: name, maxAbs: .infinity, maxRel: .infinity, passed: false, note: "cannot be read: \(error)"))
            return
        }
        guard let got else {
            result.comparisons.append(TensorComparison(name: name, maxAbs: .infinity, maxRel: .infinity, passed: false, note: "not produced"))
            return
        }
        // Shapes compared exactly: the same count in another shape is another tensor.
        guard got.shape == ref.shape else {
            result.comparisons.append(TensorComparison(name: name, maxAbs: .infinity, maxRel: .infinity, passed: false,
                                                       note: "shape \(got.shape), expected \(ref.shape)"))
            return
        }
        let (atol, rtol) = tolerance(name)
        var maxAbs: Float = 0, maxRel: Float = 0, ok = true
        for i in 0..<ref.count {
            let r = ref.pointer[i], g = got.pointer[i]
            let d = abs(g - r)
            if !(d <= atol + rtol * abs(r)) { ok = false }
            maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
            if abs(r) > 0 { maxRel = max(maxRel, d / abs(r)) }
        }
        result.comparisons.append(TensorComparison(name: name, maxAbs: maxAbs, maxRel: maxRel, passed: ok))
    }
}

