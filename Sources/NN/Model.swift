import Architecture
import Tensor

/// What a forward pass returns: every tap of the tap manifest and each head's logits.
public struct ModelOutput {
    public var taps: [String: Variable] = [:]
    public var logits: [String: Variable] = [:]
}

/// A network built from an architecture description, with its parameters.
public protocol SegmentationModel: AnyObject {
    var architecture: ModelArchitecture { get }
    var store: ParameterStore { get }
    /// `training` selects batch statistics (and updates running buffers) or running statistics.
    func forward(_ x: Variable, training: Bool) -> ModelOutput
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
