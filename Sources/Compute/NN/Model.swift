import Architecture
import Tensor

/// What a forward pass returns: every tap of the tap manifest and each head's logits.
public struct ModelOutput {
    public var taps: [String: Variable] = [:]
    public var logits: [String: Variable] = [:]
    /// The taps kept; nil keeps every one. A map not kept is freed as soon as the
    /// network has used it (an evaluation needs only the logits).
    public var keep: Set<String>?

    public init(keep: Set<String>? = nil) { self.keep = keep }

    mutating func record(_ name: String, _ v: Variable?) {
        if let v, keep?.contains(name) ?? true { taps[name] = v }
    }
}

/// A network built from an architecture description, with its parameters.
public protocol SegmentationModel: AnyObject {
    var architecture: ModelArchitecture { get }
    var store: ParameterStore { get }
    /// `training` selects batch statistics (and updates running buffers) or running
    /// statistics; `taps` names the taps to return (nil: all of them).
    func forward(_ x: Variable, training: Bool, taps: Set<String>?) -> ModelOutput
}

extension SegmentationModel {
    /// Every tap and each head's logits.
    public func forward(_ x: Variable, training: Bool) -> ModelOutput { forward(x, training: training, taps: nil) }
}

public enum ModelBuilder {
    /// Builds the model an architecture describes for inputs of `height` x `width`,
    /// initialised as PyTorch would from `seed`. The input size fixes the hybrid's
    /// number of ViT tokens (its position embedding).
    public static func build(_ architecture: ModelArchitecture, height: Int, width: Int, seed: UInt64) -> SegmentationModel {
        var rng = RNG(seed: seed)
        switch architecture {
        case .unet(let u): return UNetModel(u, rng: &rng)
        case .transunet(let t): return TransUNetModel(t, height: height, width: width, rng: &rng)
        }
    }
}
