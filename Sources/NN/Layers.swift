import Architecture
import Tensor

/// Convolution with its parameters, registered in a store under `name`.
struct ConvLayer {
    let weight: Variable
    let bias: Variable?
    let stride: Int, padding: Int, dilation: Int

    init(_ store: ParameterStore, _ name: String, cin: Int, cout: Int, k: Int, stride: Int = 1, padding: Int = 0,
         dilation: Int = 1, bias: Bool = true, rng: inout RNG) {
        weight = store.add("\(name).weight", Initializer.uniform([cout, cin, k, k], fanIn: cin * k * k, rng: &rng))
        self.bias = bias ? store.add("\(name).bias", Initializer.uniform([cout], fanIn: cin * k * k, rng: &rng)) : nil
        (self.stride, self.padding, self.dilation) = (stride, padding, dilation)
    }

    func callAsFunction(_ x: Variable) -> Variable {
        F.conv2d(x, weight, bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// Transposed convolution k x k, stride k (U-Net up-sampling); weight [Cin, Cout, k, k].
struct UpLayer {
    let weight: Variable, bias: Variable, k: Int

    init(_ store: ParameterStore, _ name: String, cin: Int, cout: Int, k: Int = 2, rng: inout RNG) {
        // PyTorch computes fan_in of a transposed conv from weight dim 1 (Cout) times the kernel area.
        weight = store.add("\(name).weight", Initializer.uniform([cin, cout, k, k], fanIn: cout * k * k, rng: &rng))
        bias = store.add("\(name).bias", Initializer.uniform([cout], fanIn: cout * k * k, rng: &rng))
        self.k = k
    }

    func callAsFunction(_ x: Variable) -> Variable { F.convTranspose2d(x, weight, bias, stride: k) }
}

/// A normalisation after a convolution: batch (running statistics), group or instance.
struct NormLayer {
    let kind: NormKind, groups: Int
    let weight: Variable, bias: Variable
    let runningMean: Tensor?, runningVar: Tensor?

    init(_ store: ParameterStore, _ name: String, channels: Int, kind: NormKind, groups: Int = 8) {
        self.kind = kind
        self.groups = max(1, min(groups, channels))
        weight = store.add("\(name).weight", Tensor(shape: [channels], repeating: 1))
        bias = store.add("\(name).bias", Tensor(zeros: [channels]))
        if kind == .batch {
            runningMean = store.addBuffer("\(name).running_mean", Tensor(zeros: [channels]))
            runningVar = store.addBuffer("\(name).running_var", Tensor(shape: [channels], repeating: 1))
        } else {
            (runningMean, runningVar) = (nil, nil)
        }
    }

    /// `relu` fuses the ReLU that follows the normalisation.
    func callAsFunction(_ x: Variable, training: Bool, relu: Bool = false) -> Variable {
        switch kind {
        case .batch:
            if training { return F.batchNormTrain(x, weight, bias, runningMean: runningMean, runningVar: runningVar, relu: relu) }
            return F.batchNormEval(x, weight, bias, runningMean: runningMean ?? Tensor(zeros: [x.shape[1]]),
                                   runningVar: runningVar ?? Tensor(shape: [x.shape[1]], repeating: 1), relu: relu)
        case .group: return F.groupNorm(x, groups: channelsDividing(x.shape[1]), weight, bias, relu: relu)
        case .instance: return F.instanceNorm(x, weight, bias, relu: relu)
        }
    }

    /// The largest group count <= `groups` that divides the channels.
    private func channelsDividing(_ c: Int) -> Int {
        var g = groups
        while g > 1, c % g != 0 { g -= 1 }
        return g
    }
}

/// Linear layer in nn.Linear layout: weight [out, in].
struct LinearLayer {
    let weight: Variable, bias: Variable?

    init(_ store: ParameterStore, _ name: String, din: Int, dout: Int, bias: Bool = true, rng: inout RNG) {
        weight = store.add("\(name).weight", Initializer.uniform([dout, din], fanIn: din, rng: &rng))
        self.bias = bias ? store.add("\(name).bias", Initializer.uniform([dout], fanIn: din, rng: &rng)) : nil
    }

    func callAsFunction(_ x: Variable) -> Variable { F.linear(x, weight, bias) }
}
