import Foundation
import StageConfig
import Tensor

/// Optimisers with PyTorch's semantics (torch.optim, foreach off): the same update
/// rules and state, step counter t starting at 1. The hyperparameters are the
/// stage's `OptimizerAlgorithm`, each explicit; arithmetic is in float32.
public final class Optimizer {
    public let kind: OptimizerAlgorithm
    public var lr: Float
    public private(set) var step = 0
    /// Named state tensors per parameter (PyTorch's names: exp_avg, square_avg, ...).
    public private(set) var state: [ObjectIdentifier: [String: Tensor]] = [:]
    let parameters: [Variable]

    public init(_ kind: OptimizerAlgorithm, lr: Float, parameters: [Variable]) {
        self.kind = kind
        self.lr = lr
        self.parameters = parameters
    }

    /// The optimiser a stage's settings describe.
    public convenience init(_ settings: OptimizerSettings, parameters: [Variable]) {
        self.init(settings.algorithm, lr: Float(settings.lr), parameters: parameters)
    }

    public func state(of p: Variable) -> [String: Tensor] { state[ObjectIdentifier(p)] ?? [:] }

    public func setState(of p: Variable, _ s: [String: Tensor]) { state[ObjectIdentifier(p)] = s }

    public func setStep(_ t: Int) { step = t }

    private func buffer(_ p: Variable, _ name: String, initial: Float = 0) -> Tensor {
        if let t = state[ObjectIdentifier(p)]?[name] { return t }
        let t = Tensor(shape: p.shape, repeating: initial)
        state[ObjectIdentifier(p), default: [:]][name] = t
        return t
    }

    /// One update of every parameter that has a gradient.
    public func update() {
        step += 1
        let t = Float(step)
        for p in parameters {
            guard let grad = p.grad else { continue }
            let w = p.value.pointer, g0 = grad.pointer, n = p.value.count
            switch kind {
            case .sgd(let momentumD, let dampeningD, let nesterov, let wdD):
                let (momentum, dampening, wd) = (Float(momentumD), Float(dampeningD), Float(wdD))
                let buf = momentum != 0 ? buffer(p, "momentum_buffer") : nil
                for i in 0..<n {
                    var g = g0[i] + wd * w[i]
                    if let b = buf?.pointer {
                        b[i] = step == 1 ? g : momentum * b[i] + (1 - dampening) * g
                        g = nesterov ? g + momentum * b[i] : b[i]
                    }
                    w[i] -= lr * g
                }
            case .adam(let b1D, let b2D, let epsD, let wdD), .adamw(let b1D, let b2D, let epsD, let wdD):
                let (b1, b2, eps, wd) = (Float(b1D), Float(b2D), Float(epsD), Float(wdD))
                let decoupled: Bool
                if case .adamw = kind { decoupled = true } else { decoupled = false }
                let m = buffer(p, "exp_avg").pointer, v = buffer(p, "exp_avg_sq").pointer
                let c1 = 1 - pow(b1, t), c2 = (1 - pow(b2, t)).squareRoot()
                for i in 0..<n {
                    var g = g0[i]
                    if decoupled { w[i] *= 1 - lr * wd } else { g += wd * w[i] }
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    w[i] -= lr * (m[i] / c1) / (v[i].squareRoot() / c2 + eps)
                }
            case .rmsprop(let alphaD, let epsD, let momentumD, let centered, let wdD):
                let (alpha, eps, momentum, wd) = (Float(alphaD), Float(epsD), Float(momentumD), Float(wdD))
                let sq = buffer(p, "square_avg").pointer
                let ga = centered ? buffer(p, "grad_avg").pointer : nil
                let mb = momentum > 0 ? buffer(p, "momentum_buffer").pointer : nil
                for i in 0..<n {
                    let g = g0[i] + wd * w[i]
                    sq[i] = alpha * sq[i] + (1 - alpha) * g * g
                    var avg = sq[i]
                    if let ga {
                        ga[i] = alpha * ga[i] + (1 - alpha) * g
                        avg -= ga[i] * ga[i]
                    }
                    let denom = avg.squareRoot() + eps
                    if let mb {
                        mb[i] = momentum * mb[i] + g / denom
                        w[i] -= lr * mb[i]
                    } else {
                        w[i] -= lr * g / denom
                    }
                }
            case .adagrad(let lrDecayD, let epsD, let initialD, let wdD):
                let (lrDecay, eps, initial, wd) = (Float(lrDecayD), Float(epsD), Float(initialD), Float(wdD))
                let sum = buffer(p, "sum", initial: initial).pointer
                let clr = lr / (1 + (t - 1) * lrDecay)
                for i in 0..<n {
                    let g = g0[i] + wd * w[i]
                    sum[i] += g * g
                    w[i] -= clr * g / (sum[i].squareRoot() + eps)
                }
            }
        }
    }

    public func zeroGrad() { for p in parameters { p.grad = nil } }

    /// Scales all gradients so that their global L2 norm is at most `maxNorm`; returns the norm before.
    @discardableResult
    public func clipGradNorm(_ maxNorm: Float) -> Float {
        var total = 0.0
        for p in parameters { if let g = p.grad { for i in 0..<g.count { total += Double(g.pointer[i]) * Double(g.pointer[i]) } } }
        let norm = Float(total.squareRoot())
        if norm > maxNorm {
            let s = maxNorm / (norm + 1e-6)
            for p in parameters { if let g = p.grad { for i in 0..<g.count { g.pointer[i] *= s } } }
        }
        return norm
    }
}

extension LearningRateSchedule {
    /// The rate for `epoch` (0-based) of `epochs`, with linear warm-up.
    public func rate(base: Float, epoch: Int, epochs: Int) -> Float {
        let warmup = warmupEpochs
        if epoch < warmup { return base * Float(epoch + 1) / Float(warmup + 1) }
        let e = Float(epoch - warmup), total = Float(max(1, epochs - warmup))
        switch curve {
        case .constant: return base
        case .cosine(let minLR): return Float(minLR) + (base - Float(minLR)) * 0.5 * (1 + cos(Float.pi * e / total))
        case .poly(let power): return base * pow(max(0, 1 - e / total), Float(power))
        case .step(let size, let gamma): return base * pow(Float(gamma), Float((epoch - warmup) / max(1, size)))
        }
    }
}
