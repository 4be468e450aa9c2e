import Foundation
import Tensor

// Scalar losses, each a fused forward with its exact gradient (the formulas of
// ../shared/reference/README.md). Sums run in Double. Targets and teachers are
// constants unless they require a gradient (the parity cases check both sides).
//
// Binary targets: float 0/1 with the logits' shape. Class targets: Int32 [N, H, W].
// Backward rules reach tensors through captured values (never raw pointers of
// temporaries), so whatever a rule reads stays alive until it has run.

public enum Loss {
    /// Soft Dice on sigmoid probabilities pooled over the whole batch: 1 - (2 sum(p t) + s) / (sum p + sum t + s).
    public static func dice(_ logits: Variable, _ target: Tensor, smooth: Double) -> Variable {
        let n = logits.value.count
        let x = logits.value.pointer, t = target.pointer
        var pooled = Chunks.sums(n, 3) { range, sums in  // sum(p t), sum p, sum t
            var (pt, ps, ts) = (0.0, 0.0, 0.0)
            for i in range {
                let p = Double(Activation.sigmoid(x[i]))
                pt += p * Double(t[i]); ps += p; ts += Double(t[i])
            }
            (sums[0], sums[1], sums[2]) = (pt, ps, ts)
        }
        CrossBatch.sum(&pooled)
        let num = 2 * pooled[0] + smooth, den = pooled[1] + pooled[2] + smooth
        return Tape.output(.scalar(Float(1 - num / den)), inputs: [logits]) { out in
            let g = Double(out.gradBuffer()[0]), dx = logits.gradBuffer(), t = target.pointer
            Chunks.forEach(n) { range in
                for i in range {
                    let p = Double(Activation.sigmoid(x[i]))
                    // d/dp of -(num/den) = -(2 t den - num) / den^2; times dp/dx = p (1 - p).
                    dx[i] += Float(g * -(2 * Double(t[i]) * den - num) / (den * den) * p * (1 - p))
                }
            }
        }
    }

    /// Mean binary cross-entropy on logits.
    public static func bceWithLogits(_ logits: Variable, _ target: Tensor) -> Variable {
        let n = logits.value.count
        let x = logits.value.pointer, t = target.pointer
        let s = Chunks.sums(n, 1) { range, sums in
            var s = 0.0
            for i in range { s -= Double(t[i] * Activation.logSigmoid(x[i]) + (1 - t[i]) * Activation.logSigmoid(-x[i])) }
            sums[0] = s
        }[0]
        let (total, count) = CrossBatch.total(s, count: n)
        return Tape.output(.scalar(Float(total / count)), inputs: [logits]) { out in
            let g = out.gradBuffer()[0] / Float(count), dx = logits.gradBuffer(), t = target.pointer
            Chunks.forEach(n) { range in for i in range { dx[i] += g * (Activation.sigmoid(x[i]) - t[i]) } }
        }
    }

    /// BCE on sigmoid probabilities (logs clamped at -100, as PyTorch) plus batch Dice.
    public static func diceBCE(_ logits: Variable, _ target: Tensor, smooth: Double) -> Variable {
        F.add(bceClamped(logits, target), dice(logits, target, smooth: smooth))
    }

    static func bceClamped(_ logits: Variable, _ target: Tensor) -> Variable {
        let n = logits.value.count
        let x = logits.value.pointer, t = target.pointer
        let s = Chunks.sums(n, 1) { range, sums in
            var s = 0.0
            for i in range {
                let p = Double(Activation.sigmoid(x[i]))
                s -= Double(t[i]) * max(log(p), -100) + (1 - Double(t[i])) * max(log(1 - p), -100)
            }
            sums[0] = s
        }[0]
        let (total, count) = CrossBatch.total(s, count: n)
        return Tape.output(.scalar(Float(total / count)), inputs: [logits]) { out in
            let g = out.gradBuffer()[0] / Float(count), dx = logits.gradBuffer(), t = target.pointer
            Chunks.forEach(n) { range in for i in range { dx[i] += g * (Activation.sigmoid(x[i]) - t[i]) } }
        }
    }

    /// Multi-class cross-entropy over pixels (mean), or focal loss when gamma > 0.
    public static func crossEntropy(_ logits: Variable, _ target: [Int32], gamma: Double) -> Variable {
        let (n, c) = (logits.shape[0], logits.shape[1])
        let inner = logits.value.count / max(1, n * c)
        let x = logits.value.pointer
        let positions = n * inner
        // Per-position softmax probabilities, kept for backward.
        let probs = Tensor(zeros: logits.shape)
        Softmax.forward(x, probs.pointer, outer: n, c: c, inner: inner, log: false)
        var s = 0.0
        for pos in 0..<positions {
            let (b, i) = (pos / inner, pos % inner)
            let k = Int(target[pos])
            let pt = max(Double(probs.pointer[(b * c + k) * inner + i]), 1e-30)
            s -= pow(1 - pt, gamma) * log(pt)
        }
        let (total, count) = CrossBatch.total(s, count: positions)
        return Tape.output(.scalar(Float(total / count)), inputs: [logits]) { out in
            let g = Double(out.gradBuffer()[0]) / count, dx = logits.gradBuffer()
            for pos in 0..<positions {
                let (b, i) = (pos / inner, pos % inner)
                let k = Int(target[pos])
                let pt = max(Double(probs.pointer[(b * c + k) * inner + i]), 1e-30)
                // loss = -(1-pt)^γ log pt; dloss/dpt = γ(1-pt)^(γ-1) log pt - (1-pt)^γ / pt; dpt/dx_j = pt (δ_jk - p_j).
                let dpt = (gamma > 0 ? gamma * pow(1 - pt, gamma - 1) * log(pt) : 0) - pow(1 - pt, gamma) / pt
                for j in 0..<c {
                    let pj = Double(probs.pointer[(b * c + j) * inner + i])
                    dx[(b * c + j) * inner + i] += Float(g * dpt * pt * ((j == k ? 1 : 0) - pj))
                }
            }
        }
    }

    /// Multi-class soft Dice on softmax probabilities, pooled over the batch per class, as
    /// nnU-Net's batch Dice: 1 - mean over foreground classes k >= 1 of
    /// (2 sum(p_k t_k) + s) / (sum p_k + sum t_k + s). Background (channel 0) is left out.
    public static func softmaxDice(_ logits: Variable, _ target: [Int32], smooth: Double) -> Variable {
        let (n, c) = (logits.shape[0], logits.shape[1])
        let inner = logits.value.count / max(1, n * c)
        let probs = Tensor(zeros: logits.shape)
        Softmax.forward(logits.value.pointer, probs.pointer, outer: n, c: c, inner: inner, log: false)
        let p = probs.pointer
        var inter = [Double](repeating: 0, count: c), sp = inter, st = inter
        for b in 0..<n {
            for k in 1..<c {
                let row = p + (b * c + k) * inner
                var i0 = 0.0, s0 = 0.0, t0 = 0.0
                for i in 0..<inner {
                    let hit = Int(target[b * inner + i]) == k
                    s0 += Double(row[i])
                    if hit { i0 += Double(row[i]); t0 += 1 }
                }
                inter[k] += i0; sp[k] += s0; st[k] += t0
            }
        }
        var pooled = inter + sp + st
        CrossBatch.sum(&pooled)
        inter = Array(pooled[0..<c]); sp = Array(pooled[c..<2 * c]); st = Array(pooled[2 * c..<3 * c])
        let classes = Double(max(1, c - 1))
        var mean = 0.0
        for k in 1..<c { mean += (2 * inter[k] + smooth) / (sp[k] + st[k] + smooth) }
        mean /= classes
        return Tape.output(.scalar(Float(1 - mean)), inputs: [logits]) { out in
            let g = Double(out.gradBuffer()[0]), dx = logits.gradBuffer(), p = probs.pointer
            var dp = [Double](repeating: 0, count: c)
            for b in 0..<n {
                for i in 0..<inner {
                    let k0 = Int(target[b * inner + i])
                    // dL/dp_k = -(2 t_k den_k - num_k) / den_k^2 / K for k >= 1; background has no term.
                    var dot = 0.0
                    for k in 0..<c {
                        guard k > 0 else { dp[0] = 0; continue }
                        let num = 2 * inter[k] + smooth, den = sp[k] + st[k] + smooth
                        dp[k] = -((k == k0 ? 2 * den : 0) - num) / (den * den) / classes
                        dot += Double(p[(b * c + k) * inner + i]) * dp[k]
                    }
                    for j in 0..<c {
                        let pj = Double(p[(b * c + j) * inner + i])
                        dx[(b * c + j) * inner + i] += Float(g * pj * (dp[j] - dot))
                    }
                }
            }
        }
    }

    /// Mean squared error.
    public static func mse(_ pred: Variable, _ target: Variable) -> Variable {
        let n = pred.value.count, a = pred.value.pointer, b = target.value.pointer
        var s = 0.0
        for i in 0..<n { let d = Double(a[i] - b[i]); s += d * d }
        let (total, count) = CrossBatch.total(s, count: n)
        return Tape.output(.scalar(Float(total / count)), inputs: [pred, target]) { out in
            let g = 2 * out.gradBuffer()[0] / Float(count)
            if let dp = pred.gradTarget { for i in 0..<n { dp[i] += g * (a[i] - b[i]) } }
            if let dt = target.gradTarget { for i in 0..<n { dt[i] -= g * (a[i] - b[i]) } }
        }
    }

    /// Mean absolute error.
    public static func l1(_ pred: Variable, _ target: Variable) -> Variable {
        let n = pred.value.count, a = pred.value.pointer, b = target.value.pointer
        var s = 0.0
        for i in 0..<n { s += Double(abs(a[i] - b[i])) }
        let (total, count) = CrossBatch.total(s, count: n)
        return Tape.output(.scalar(Float(total / count)), inputs: [pred, target]) { out in
            let g = out.gradBuffer()[0] / Float(count)
            for i in 0..<n {
                let sign: Float = a[i] > b[i] ? 1 : (a[i] < b[i] ? -1 : 0)
                pred.gradTarget?[i] += g * sign
                target.gradTarget?[i] -= g * sign
            }
        }
    }

    /// (1/N) sum_i (1 - cos(s_i, t_i)) over flattened per-image maps.
    public static func cosine(_ student: Variable, _ teacher: Variable, eps: Double = 1e-8) -> Variable {
        let n = student.shape[0], d = student.value.count / n
        let s = student.value.pointer, t = teacher.value.pointer
        var loss = 0.0
        var parts: [(dot: Double, ns: Double, nt: Double)] = []
        for i in 0..<n {
            var dot = 0.0, ss = 0.0, tt = 0.0
            for j in 0..<d { let a = Double(s[i * d + j]), b = Double(t[i * d + j]); dot += a * b; ss += a * a; tt += b * b }
            let ns = ss.squareRoot(), nt = tt.squareRoot()
            parts.append((dot, ns, nt))
            loss += 1 - dot / max(ns * nt, eps)
        }
        let (total, count) = CrossBatch.total(loss, count: n)
        return Tape.output(.scalar(Float(total / count)), inputs: [student, teacher]) { out in
            let g = Double(out.gradBuffer()[0]) / count
            for i in 0..<n {
                let (dot, ns, nt) = parts[i]
                let den = max(ns * nt, eps)
                for j in 0..<d {
                    let a = Double(s[i * d + j]), b = Double(t[i * d + j])
                    // d cos / da = b/den - dot a / (ns^2 den)
                    if let ds = student.gradTarget { ds[i * d + j] -= Float(g * (b / den - dot * a / (ns * ns * den))) }
                    if let dt = teacher.gradTarget { dt[i * d + j] -= Float(g * (a / den - dot * b / (nt * nt * den))) }
                }
            }
        }
    }

    /// T^2 * mean over N*H*W of KL(softmax(t/T) || softmax(s/T)) over channels.
    public static func klLogits(_ student: Variable, _ teacher: Variable, temperature T: Float) -> Variable {
        let (n, c) = (student.shape[0], student.shape[1])
        let inner = student.value.count / max(1, n * c)
        let st = F.scale(student, 1 / T), tt = F.scale(teacher, 1 / T)
        let logPs = F.softmax(st, axis: 1, log: true), logPt = F.softmax(tt, axis: 1, log: true)
        // sum p_t (log p_t - log p_s) = sum exp(logPt) * (logPt - logPs)
        let pt = Tensor(zeros: logPt.shape)
        for i in 0..<pt.count { pt.pointer[i] = exp(logPt.value.pointer[i]) }
        var loss = 0.0
        for i in 0..<pt.count { loss += Double(pt.pointer[i]) * Double(logPt.value.pointer[i] - logPs.value.pointer[i]) }
        let (total, count) = CrossBatch.total(loss, count: n * inner)
        let scale = Double(T * T) / count
        return Tape.output(.scalar(Float(total * scale)), inputs: [logPs, logPt]) { out in
            let g = Float(Double(out.gradBuffer()[0]) * scale)
            if let ds = logPs.gradTarget { for i in 0..<pt.count { ds[i] -= g * pt.pointer[i] } }
            if let dt = logPt.gradTarget {
                for i in 0..<pt.count { dt[i] += g * pt.pointer[i] * (logPt.value.pointer[i] - logPs.value.pointer[i] + 1) }
            }
        }
    }

    /// T^2 * mean of the Bernoulli KL between sigmoid(t/T) and sigmoid(s/T).
    public static func binaryKL(_ student: Variable, _ teacher: Variable, temperature T: Float) -> Variable {
        let n = student.value.count, s = student.value.pointer, t = teacher.value.pointer
        var loss = 0.0
        for i in 0..<n {
            let zs = s[i] / T, zt = t[i] / T
            let pt = Double(Activation.sigmoid(zt))
            loss += pt * Double(Activation.logSigmoid(zt) - Activation.logSigmoid(zs))
                + (1 - pt) * Double(Activation.logSigmoid(-zt) - Activation.logSigmoid(-zs))
        }
        let (total, count) = CrossBatch.total(loss, count: n)
        let scale = Double(T * T) / count
        return Tape.output(.scalar(Float(total * scale)), inputs: [student, teacher]) { out in
            let g = Double(out.gradBuffer()[0])
            for i in 0..<n {
                let zs = s[i] / T, zt = t[i] / T
                let ps = Double(Activation.sigmoid(zs)), pt = Double(Activation.sigmoid(zt))
                // d/dzs = pt - ... = ps - pt; chain 1/T.
                if let ds = student.gradTarget { ds[i] += Float(g * scale * (ps - pt) / Double(T)) }
                // d/dzt = pt (1 - pt) (zt - zs) after simplification: dKL/dpt = logit(pt) - logit(ps) = zt - zs.
                if let dt = teacher.gradTarget { dt[i] += Float(g * scale * pt * (1 - pt) * Double(zt - zs) / Double(T)) }
            }
        }
    }

    /// InfoNCE: query = student, key = teacher, flattened per image, L2-normalised; labels 0..N-1.
    /// A batch split over processes is contrasted whole: every process gathers the global rows.
    public static func infoNCE(_ student: Variable, _ teacher: Variable, temperature tau: Float) -> Variable {
        let local = student.shape[0], d = student.value.count / local
        let q = F.batchRows(F.l2Normalize(F.reshape(student, [local, d]))), k = F.batchRows(F.l2Normalize(F.reshape(teacher, [local, d])))
        let n = q.shape[0]
        let logits = F.scale(F.bmm(F.reshape(q, [1, n, d]), F.reshape(k, [1, n, d]), transposeB: true), 1 / tau)
        let logp = F.softmax(F.reshape(logits, [n, n]), axis: 1, log: true)
        var loss = 0.0
        for i in 0..<n { loss -= Double(logp.value.pointer[i * n + i]) }
        return Tape.output(.scalar(Float(loss / Double(n))), inputs: [logp]) { out in
            let g = out.gradBuffer()[0] / Float(n), dl = logp.gradBuffer()
            for i in 0..<n { dl[i * n + i] -= g }
        }
    }

    /// Attention transfer: (1/N) sum_n || a(s)_n - a(t)_n ||^2, a = L2-normalised channel mean of |x|^p.
    public static func attentionTransfer(_ student: Variable, _ teacher: Variable, p: Float) -> Variable {
        func attention(_ x: Variable) -> Variable {
            let (n, c) = (x.shape[0], x.shape[1]), hw = x.value.count / (n * c)
            let y = Tensor(zeros: [n, hw])
            for b in 0..<n { for ch in 0..<c { for i in 0..<hw {
                y.pointer[b * hw + i] += pow(abs(x.value.pointer[(b * c + ch) * hw + i]), p) / Float(c)
            } } }
            let pooled = Tape.output(y, inputs: [x]) { out in
                let dy = out.gradBuffer(), dx = x.gradBuffer()
                for b in 0..<n { for ch in 0..<c { for i in 0..<hw {
                    let v = x.value.pointer[(b * c + ch) * hw + i]
                    let sign: Float = v > 0 ? 1 : (v < 0 ? -1 : 0)
                    dx[(b * c + ch) * hw + i] += dy[b * hw + i] * p * pow(abs(v), p - 1) * sign / Float(c)
                } } }
            }
            return F.l2Normalize(pooled)
        }
        let a = attention(student), b = attention(teacher)
        let n = student.shape[0]
        var loss = 0.0
        for i in 0..<a.value.count { let d = Double(a.value.pointer[i] - b.value.pointer[i]); loss += d * d }
        let (total, count) = CrossBatch.total(loss, count: n)
        return Tape.output(.scalar(Float(total / count)), inputs: [a, b]) { out in
            let g = 2 * out.gradBuffer()[0] / Float(count)
            for i in 0..<a.value.count {
                let d = a.value.pointer[i] - b.value.pointer[i]
                a.gradTarget?[i] += g * d
                b.gradTarget?[i] -= g * d
            }
        }
    }

    /// Channel-wise distillation: tau^2/(N C) sum over (n, c) of KL over positions of spatial softmaxes.
    public static func channelWise(_ student: Variable, _ teacher: Variable, tau: Float) -> Variable {
        let (n, c) = (student.shape[0], student.shape[1]), hw = student.value.count / (n * c)
        let s = F.reshape(student, [n * c, hw]), t = F.reshape(teacher, [n * c, hw])
        // As [n*c, hw, 1, 1] the "channels" are the positions and klLogits averages over the n*c maps.
        return klLogits(F.reshape(s, [n * c, hw, 1, 1]), F.reshape(t, [n * c, hw, 1, 1]), temperature: tau)
    }

    /// Supervised contrastive loss (L_out) over embeddings z [M, D] with labels.
    public static func supCon(_ z: Variable, labels: [Int32], temperature tau: Float) -> Variable {
        let m = z.shape[0], d = z.value.count / m
        let zn = F.l2Normalize(F.reshape(z, [m, d]))
        let sim = F.scale(F.bmm(F.reshape(zn, [1, m, d]), F.reshape(zn, [1, m, d]), transposeB: true), 1 / tau)
        let s = sim.value.pointer
        var loss = 0.0, anchors = 0
        // Per anchor: log-sum-exp over a != i, then mean over positives.
        var lse = [Double](repeating: 0, count: m)
        var positives = [Int](repeating: 0, count: m)
        for i in 0..<m {
            var mx = -Double.infinity
            for a in 0..<m where a != i { mx = max(mx, Double(s[i * m + a])) }
            var sum = 0.0
            for a in 0..<m where a != i { sum += exp(Double(s[i * m + a]) - mx) }
            lse[i] = mx + log(sum)
            for p in 0..<m where p != i && labels[p] == labels[i] { positives[i] += 1 }
            guard positives[i] > 0 else { continue }
            anchors += 1
            var li = 0.0
            for p in 0..<m where p != i && labels[p] == labels[i] { li += Double(s[i * m + p]) - lse[i] }
            loss -= li / Double(positives[i])
        }
        let count = max(1, anchors)
        return Tape.output(.scalar(Float(loss / Double(count))), inputs: [sim]) { out in
            let g = Double(out.gradBuffer()[0]) / Double(count), ds = sim.gradBuffer()
            for i in 0..<m where positives[i] > 0 {
                let k = Double(positives[i])
                for a in 0..<m where a != i {
                    let softmax = exp(Double(s[i * m + a]) - lse[i])
                    let isPositive = labels[a] == labels[i] ? 1.0 : 0.0
                    ds[i * m + a] += Float(g * (softmax - isPositive / k))
                }
            }
        }
    }
}

extension F {
    /// Rows of a [R, D] matrix divided by max(||row||, 1e-12).
    public static func l2Normalize(_ x: Variable, eps: Float = 1e-12) -> Variable {
        let d = x.shape.last ?? 1, rows = x.value.count / max(1, d)
        let y = Tensor(zeros: x.shape)
        var norms = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var s = 0.0
            for j in 0..<d { s += Double(x.value.pointer[r * d + j]) * Double(x.value.pointer[r * d + j]) }
            norms[r] = max(Float(s.squareRoot()), eps)
            for j in 0..<d { y.pointer[r * d + j] = x.value.pointer[r * d + j] / norms[r] }
        }
        return Tape.output(y, inputs: [x]) { out in
            let dy = out.gradBuffer(), dx = x.gradBuffer()
            for r in 0..<rows {
                var dot: Float = 0
                for j in 0..<d { dot += dy[r * d + j] * y.pointer[r * d + j] }
                for j in 0..<d { dx[r * d + j] += (dy[r * d + j] - y.pointer[r * d + j] * dot) / norms[r] }
            }
        }
    }
}

/// Element-wise loss work over fixed chunks of the elements, in parallel. Each chunk's sums
/// are taken in order, then the chunks' in order, so a loss does not depend on the thread
/// count; it differs from one serial pass by Double roundings only.
enum Chunks {
    static let size = 1 << 14

    /// Per-element work over [0, n) in chunks.
    static func forEach(_ n: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forEach((n + size - 1) / size) { c in body((c * size)..<min(n, (c + 1) * size)) }
    }

    /// `width` sums over [0, n): `body` writes a chunk's into its buffer.
    static func sums(_ n: Int, _ width: Int, _ body: (Range<Int>, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
        let chunks = (n + size - 1) / size
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: max(1, chunks * width))
        defer { partial.deallocate() }
        partial.initialize(repeating: 0, count: max(1, chunks * width))
        Parallel.forEach(chunks) { c in body((c * size)..<min(n, (c + 1) * size), partial + c * width) }
        var total = [Double](repeating: 0, count: width)
        for c in 0..<chunks { for j in 0..<width { total[j] += partial[c * width + j] } }
        return total
    }
}
