import Architecture
import Tensor

/// Convolution with its parameters, registered in a store under `name`: 2D (a k x k
/// kernel) or 3D (a kernel per axis, "same" padding k / 2).
struct ConvLayer {
    let weight: Variable
    let bias: Variable?
    let stride: Int, padding: Int, dilation: Int
    /// The 3D layer's padding per axis; nil for a 2D layer.
    let volumePadding: [Int]?

    init(_ store: ParameterStore, _ name: String, cin: Int, cout: Int, k: Int, stride: Int = 1, padding: Int = 0,
         dilation: Int = 1, bias: Bool = true, rng: inout RNG) {
        (weight, self.bias) = Self.parameters(store, name, cin: cin, cout: cout, kernel: [k, k], bias: bias, rng: &rng)
        (self.stride, self.padding, self.dilation, volumePadding) = (stride, padding, dilation, nil)
    }

    /// A 3D convolution, stride 1, padding kernel / 2 on each axis.
    init(_ store: ParameterStore, _ name: String, cin: Int, cout: Int, volumeKernel kernel: [Int], rng: inout RNG) {
        (weight, bias) = Self.parameters(store, name, cin: cin, cout: cout, kernel: kernel, bias: true, rng: &rng)
        (stride, padding, dilation, volumePadding) = (1, 0, 1, kernel.map { $0 / 2 })
    }

    private static func parameters(_ store: ParameterStore, _ name: String, cin: Int, cout: Int, kernel: [Int], bias: Bool,
                                   rng: inout RNG) -> (Variable, Variable?) {
        let fanIn = cin * kernel.reduce(1, *)
        let weight = store.add("\(name).weight", Initializer.uniform([cout, cin] + kernel, fanIn: fanIn, rng: &rng))
        return (weight, bias ? store.add("\(name).bias", Initializer.uniform([cout], fanIn: fanIn, rng: &rng)) : nil)
    }

    func callAsFunction(_ x: Variable) -> Variable {
        if let volumePadding { return F.conv3d(x, weight, bias, padding: volumePadding) }
        return F.conv2d(x, weight, bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// Transposed convolution whose kernel equals its stride (U-Net up-sampling): 2x2 in 2D,
/// the level's pooling window per axis in 3D; weight [Cin, Cout, kernel...].
struct UpLayer {
    let weight: Variable, bias: Variable, kernel: [Int]

    init(_ store: ParameterStore, _ name: String, cin: Int, cout: Int, kernel: [Int] = [2, 2], rng: inout RNG) {
        // PyTorch computes fan_in of a transposed conv from weight dim 1 (Cout) times the kernel area.
        let fanIn = cout * kernel.reduce(1, *)
        weight = store.add("\(name).weight", Initializer.uniform([cin, cout] + kernel, fanIn: fanIn, rng: &rng))
        bias = store.add("\(name).bias", Initializer.uniform([cout], fanIn: fanIn, rng: &rng))
        self.kernel = kernel
    }

    func callAsFunction(_ x: Variable) -> Variable {
        kernel.count == 3 ? F.convTranspose3d(x, weight, bias, stride: kernel) : F.convTranspose2d(x, weight, bias, stride: kernel[0])
    }

    /// [up-sampled x, skip] along channels. In 2D the up-sampled map is never a tensor of its own. Over
    /// volumes it lives only inside this call: without a tape it is freed before the next convolutions
    /// run, and with one its values are (the transposed convolution's backward reads its input, the
    /// concatenation's reads gradients only), so training keeps one map per level less until backward.
    func joined(_ x: Variable, _ skip: Variable) -> Variable {
        guard kernel.count == 3 else { return F.convTranspose2dJoined(x, weight, bias, stride: kernel[0], skip: skip) }
        let upsampled = self(x)
        let joined = F.concat([upsampled, skip])
        if upsampled.requiresGrad { upsampled.releaseValue() }
        return joined
    }
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
