import Foundation

// Normalisations over groups of values: each group has its own mean and biased
// variance, y = (x - mean) * rstd * weight[c] + bias[c].
//
//   batch norm:    group = channel c over N x H x W (train), or running stats (eval)
//   group norm:    group = (n, g) over C/G x H x W
//   instance norm: group = (n, c) over H x W
//   layer norm:    group = leading index over the last dimension D (weight per d)
//
// A layout is described by `NormLayout`: values of group gi, channel c, are at
// base(gi, c) + [0, inner). Backward accumulates dx (or overwrites it: `dxAccumulates`
// false), dweight, dbias. With `relu`, y = max(0, ...), the ReLU that follows fused in:
// backward masks dy where the affine value x * a + b, recomputed from x, is not positive,
// so that neither the normalised values nor a masked copy of dy are ever stored.

/// How a normalisation walks its tensor: `groups` groups, each covering
/// `channelsPerGroup` channels of `inner` contiguous values, repeated `outer` times.
public struct NormLayout: Sendable {
    /// Tensor shape read as [outer, channels, inner] (NCHW: N, C, H*W).
    public var outer: Int, channels: Int, inner: Int
    /// Normalise over the batch as well (batch norm) or per sample.
    public var acrossBatch: Bool
    public var channelsPerGroup: Int

    public init(outer: Int, channels: Int, inner: Int, acrossBatch: Bool, channelsPerGroup: Int) {
        (self.outer, self.channels, self.inner, self.acrossBatch, self.channelsPerGroup) = (outer, channels, inner, acrossBatch, channelsPerGroup)
    }

    public var groupsPerSample: Int { channels / channelsPerGroup }
    public var groupCount: Int { acrossBatch ? groupsPerSample : outer * groupsPerSample }
    public var groupSize: Int { (acrossBatch ? outer : 1) * channelsPerGroup * inner }

    /// Calls body(offset, channel) for every contiguous run of `inner` values in group gi.
    @inline(__always) func forEachRun(_ gi: Int, _ body: (Int, Int) -> Void) {
        let samples = acrossBatch ? 0..<outer : (gi / groupsPerSample)..<(gi / groupsPerSample + 1)
        let g = gi % groupsPerSample
        for n in samples {
            for c in (g * channelsPerGroup)..<((g + 1) * channelsPerGroup) {
                body((n * channels + c) * inner, c)
            }
        }
    }
}

public enum Normalization {
    /// Computes mean and rstd per group (in Double), then y. `stats` is [mean, rstd] per group.
    public static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ stats: UnsafeMutablePointer<Float>, _ L: NormLayout, eps: Float,
                               relu: Bool = false) {
        if L.acrossBatch, let group = CrossBatch.group {
            return forwardAcross(group, x, weight, bias, y, stats, L, eps: eps, relu: relu)
        }
        Parallel.forEach(L.groupCount) { gi in
            // One pass over x for both moments, taken about a value of the group (its first), so that
            // a mean far from zero does not cancel the variance's digits: var = E[d^2] - E[d]^2, d = x - shift.
            var shift = 0.0, first = true, sum = 0.0, sq = 0.0
            L.forEachRun(gi) { off, _ in
                if first { (shift, first) = (Double(x[off]), false) }
                let (s1, s2) = Sums.shiftedMoments(x + off, count: L.inner, shift: shift)
                sum += s1
                sq += s2
            }
            let size = Double(L.groupSize), d = sum / size, mean = shift + d
            // Rounding can take the difference below zero; NaN stays NaN.
            let variance = sq / size - d * d
            let rstd = 1 / ((variance < 0 ? 0 : variance) + Double(eps)).squareRoot()
            stats[2 * gi] = Float(mean)
            stats[2 * gi + 1] = Float(rstd)
            apply(gi, mean: Float(mean), rstd: Float(rstd), x, weight, bias, y, L, relu: relu)
        }
    }

    /// The affine map of channel c, y = x * a + b, as forward applies it (and backward recomputes it for the ReLU's mask).
    @inline(__always) static func affine(_ c: Int, mean m: Float, rstd r: Float, _ weight: UnsafePointer<Float>?,
                                         _ bias: UnsafePointer<Float>?) -> (a: Float, b: Float) {
        let a = r * (weight?[c] ?? 1)
        return (a, (bias?[c] ?? 0) - m * a)
    }

    /// y = (x - mean) * rstd * w + b over the runs of group gi (max(0, ...) with `relu`).
    @inline(__always) static func apply(_ gi: Int, mean m: Float, rstd r: Float, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?,
                                        _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ L: NormLayout, relu: Bool) {
        L.forEachRun(gi) { off, c in
            let (a, b) = affine(c, mean: m, rstd: r, weight, bias)
            if relu {
                for i in 0..<L.inner { y[off + i] = max(x[off + i] * a + b, 0) }
            } else {
                for i in 0..<L.inner { y[off + i] = x[off + i] * a + b }
            }
        }
    }

    /// dx (+)= rstd * (w g - m1 - xhat m2) over the runs of group gi, per element in Float, for g = dy, or, with
    /// `relu`, dy masked where the forward's affine value (from `bias` too) was not positive.
    @inline(__always) static func inputGradient(_ gi: Int, mean: Float, rstd: Float, m1: Float, m2: Float, _ x: UnsafePointer<Float>,
                                                _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?, relu: Bool,
                                                _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, accumulate: Bool, _ L: NormLayout) {
        L.forEachRun(gi) { off, c in
            let w = weight?[c] ?? 1
            let gate = relu ? affine(c, mean: mean, rstd: rstd, weight, bias) : nil
            let (xs, dys, dxs) = (x + off, dy + off, dx + off)
            // 16 lanes at a time (the mask as a select, not a branch), then the tail.
            var i = 0
            while i + 16 <= L.inner {
                let xv = Lanes.load(xs + i)
                var g = Lanes.load(dys + i)
                if let gate { g = Lanes.gated(g, xv, gate) }
                var v = rstd * (w * g - m1 - (xv - mean) * rstd * m2)
                if accumulate { v += Lanes.load(dxs + i) }
                Lanes.store(v, dxs + i)
                i += 16
            }
            while i < L.inner {
                var g = dys[i]
                if let gate, !(xs[i] * gate.a + gate.b > 0) { g = 0 }
                let v = rstd * (w * g - m1 - (xs[i] - mean) * rstd * m2)
                dxs[i] = accumulate ? dxs[i] + v : v
                i += 1
            }
        }
    }

    /// The sums of g and g * xhat over channel c's run at `off` (g = dy, or dy masked by the fused ReLU).
    @inline(__always) static func gradientSums(_ off: Int, _ c: Int, mean: Float, rstd: Float, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?,
                                               _ bias: UnsafePointer<Float>?, relu: Bool, _ dy: UnsafePointer<Float>, _ L: NormLayout) -> (Double, Double) {
        guard relu else { return Sums.gradientSums(dy + off, x + off, count: L.inner, mean: mean, rstd: rstd) }
        return Sums.gatedGradientSums(dy + off, x + off, count: L.inner, mean: mean, rstd: rstd, gate: affine(c, mean: mean, rstd: rstd, weight, bias))
    }

    /// Batch statistics over a batch split across processes (SyncBN): two passes (the
    /// mean, then squared deviations from it), each summed over the group. (The one pass
    /// of `forward` takes its moments about a value of the group, which every process
    /// would first have to agree on.)
    static func forwardAcross(_ group: BatchGroup, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
                              _ y: UnsafeMutablePointer<Float>, _ stats: UnsafeMutablePointer<Float>, _ L: NormLayout, eps: Float, relu: Bool) {
        let groups = L.groupCount
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: groups + 1)
        defer { sums.deallocate() }
        Parallel.forEach(groups) { gi in
            var sum = 0.0
            L.forEachRun(gi) { off, _ in sum += Sums.sum(x + off, count: L.inner) }
            sums[gi] = sum
        }
        sums[groups] = Double(L.groupSize)
        group.sum(sums, groups + 1)
        let size = sums[groups]
        let means = (0..<groups).map { sums[$0] / size }
        Parallel.forEach(groups) { gi in
            var sq = 0.0
            L.forEachRun(gi) { off, _ in sq += Sums.squaredDeviations(x + off, count: L.inner, from: means[gi]) }
            sums[gi] = sq
        }
        group.sum(sums, groups)
        Parallel.forEach(groups) { gi in
            let rstd = 1 / (sums[gi] / size + Double(eps)).squareRoot()
            stats[2 * gi] = Float(means[gi])
            stats[2 * gi + 1] = Float(rstd)
            apply(gi, mean: Float(means[gi]), rstd: Float(rstd), x, weight, bias, y, L, relu: relu)
        }
    }

    /// Applies fixed statistics (batch norm in eval mode): y = (x - mean[c]) / sqrt(var[c] + eps) * w + b.
    public static func forwardFixed(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
                                    mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                    outer: Int, channels: Int, inner: Int, eps: Float) {
        Parallel.forEach(outer * channels) { plane in
            let c = plane % channels
            let r = 1 / (variance[c] + eps).squareRoot()
            let a = r * (weight?[c] ?? 1), b = (bias?[c] ?? 0) - mean[c] * a
            let off = plane * inner
            for i in 0..<inner { y[off + i] = x[off + i] * a + b }
        }
    }

    /// Backward through batch statistics:
    /// dx = rstd * w * (dy - mean(dy) - xhat * mean(dy * xhat)) per group; dw += sum(dy * xhat); db += sum(dy).
    /// With `relu` (the forward pass's), dy is the gradient of the rectified output, masked here; the mask
    /// needs the forward's bias.
    public static func backward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?, _ stats: UnsafePointer<Float>,
                                _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, _ dweight: UnsafeMutablePointer<Float>?,
                                _ dbias: UnsafeMutablePointer<Float>?, _ L: NormLayout, relu: Bool = false, dxAccumulates: Bool = true) {
        // Per-channel sums of dy and dy * xhat within each group.
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: L.groupCount * L.channels * 2)
        sums.initialize(repeating: 0, count: L.groupCount * L.channels * 2)
        defer { sums.deallocate() }
        if L.acrossBatch, let group = CrossBatch.group {
            return backwardAcross(group, x, weight, bias, stats, dy, dx, dweight, dbias, L, sums, relu: relu, dxAccumulates: dxAccumulates)
        }
        Parallel.forEach(L.groupCount) { gi in
            let mean = stats[2 * gi], rstd = stats[2 * gi + 1]
            let s = sums + gi * L.channels * 2
            L.forEachRun(gi) { off, c in
                let (a, b) = gradientSums(off, c, mean: mean, rstd: rstd, x, weight, bias, relu: relu, dy, L)
                s[2 * c] += a
                s[2 * c + 1] += b
            }
            guard let dx else { return }
            // Group means of w*dy and w*dy*xhat.
            var m1 = 0.0, m2 = 0.0
            for c in 0..<L.channels {
                let w = Double(weight?[c] ?? 1)
                m1 += w * s[2 * c]
                m2 += w * s[2 * c + 1]
            }
            // Runs of other samples' groups were not visited, so channel sums belong to this group only.
            m1 /= Double(L.groupSize)
            m2 /= Double(L.groupSize)
            // The means above are Double; the per-element arithmetic is Float.
            inputGradient(gi, mean: mean, rstd: rstd, m1: Float(m1), m2: Float(m2), x, weight, bias, relu: relu, dy, dx, accumulate: dxAccumulates, L)
        }
        for gi in 0..<L.groupCount {
            for c in 0..<L.channels {
                dbias?[c] += Float(sums[(gi * L.channels + c) * 2])
                dweight?[c] += Float(sums[(gi * L.channels + c) * 2 + 1])
            }
        }
    }

    /// Backward through statistics of a batch split across processes: dx needs the
    /// group's sums of dy and dy * xhat; the weight and bias gradients keep this
    /// process's part (the gradient allreduce adds the others').
    static func backwardAcross(_ group: BatchGroup, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
                               _ stats: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                               _ dweight: UnsafeMutablePointer<Float>?, _ dbias: UnsafeMutablePointer<Float>?, _ L: NormLayout,
                               _ sums: UnsafeMutablePointer<Double>, relu: Bool, dxAccumulates: Bool) {
        let n = L.groupCount * L.channels * 2
        Parallel.forEach(L.groupCount) { gi in
            let s = sums + gi * L.channels * 2
            L.forEachRun(gi) { off, c in
                let (a, b) = gradientSums(off, c, mean: stats[2 * gi], rstd: stats[2 * gi + 1], x, weight, bias, relu: relu, dy, L)
                s[2 * c] += a
                s[2 * c + 1] += b
            }
        }
        for gi in 0..<L.groupCount {
            for c in 0..<L.channels {
                dbias?[c] += Float(sums[(gi * L.channels + c) * 2])
                dweight?[c] += Float(sums[(gi * L.channels + c) * 2 + 1])
            }
        }
        guard let dx else { return }
        let global = UnsafeMutablePointer<Double>.allocate(capacity: n + 1)
        defer { global.deallocate() }
        global.update(from: sums, count: n)
        global[n] = Double(L.groupSize)
        group.sum(global, n + 1)
        let size = global[n]
        Parallel.forEach(L.groupCount) { gi in
            let s = global + gi * L.channels * 2
            var m1 = 0.0, m2 = 0.0
            for c in 0..<L.channels {
                let w = Double(weight?[c] ?? 1)
                m1 += w * s[2 * c]
                m2 += w * s[2 * c + 1]
            }
            inputGradient(gi, mean: stats[2 * gi], rstd: stats[2 * gi + 1], m1: Float(m1 / size), m2: Float(m2 / size), x, weight, bias,
                          relu: relu, dy, dx, accumulate: dxAccumulates, L)
        }
    }

    /// Backward with fixed statistics (eval mode): dx = dy * w * rstd; dw += sum(dy * xhat); db += sum(dy).
    public static func backwardFixed(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                                     variance: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                                     _ dweight: UnsafeMutablePointer<Float>?, _ dbias: UnsafeMutablePointer<Float>?,
                                     outer: Int, channels: Int, inner: Int, eps: Float) {
        for c in 0..<channels {
            let r = 1 / (variance[c] + eps).squareRoot()
            var a: Float = 0, b: Float = 0
            for n in 0..<outer {
                let off = (n * channels + c) * inner
                for i in 0..<inner {
                    a += dy[off + i]
                    b += dy[off + i] * (x[off + i] - mean[c]) * r
                    dx?[off + i] += dy[off + i] * (weight?[c] ?? 1) * r
                }
            }
            dbias?[c] += a
            dweight?[c] += b
        }
    }
}

/// Layer norm over the last dimension has a weight per position of that dimension,
/// not per channel: it is its own kernel.
public enum LayerNorm {
    public static func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>, _ stats: UnsafeMutablePointer<Float>, rows: Int, d: Int, eps: Float) {
        for r in 0..<rows {
            let xr = x + r * d, yr = y + r * d
            var sum = 0.0
            for i in 0..<d { sum += Double(xr[i]) }
            let mean = sum / Double(d)
            var sq = 0.0
            for i in 0..<d { let t = Double(xr[i]) - mean; sq += t * t }
            let rstd = 1 / (sq / Double(d) + Double(eps)).squareRoot()
            stats[2 * r] = Float(mean)
            stats[2 * r + 1] = Float(rstd)
            for i in 0..<d { yr[i] = Float((Double(xr[i]) - mean) * rstd) * (weight?[i] ?? 1) + (bias?[i] ?? 0) }
        }
    }

    public static func backward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?, _ stats: UnsafePointer<Float>,
                                _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, _ dweight: UnsafeMutablePointer<Float>?,
                                _ dbias: UnsafeMutablePointer<Float>?, rows: Int, d: Int) {
        for r in 0..<rows {
            let xr = x + r * d, dyr = dy + r * d
            let mean = stats[2 * r], rstd = stats[2 * r + 1]
            var m1 = 0.0, m2 = 0.0
            for i in 0..<d {
                let xhat = (xr[i] - mean) * rstd
                let g = dyr[i] * (weight?[i] ?? 1)
                m1 += Double(g)
                m2 += Double(g * xhat)
                dweight?[i] += dyr[i] * xhat
                dbias?[i] += dyr[i]
            }
            m1 /= Double(d)
            m2 /= Double(d)
            if let dx {
                for i in 0..<d {
                    let xhat = Double((xr[i] - mean) * rstd)
                    dx[r * d + i] += Float(Double(rstd) * (Double(dyr[i] * (weight?[i] ?? 1)) - m1 - xhat * m2))
                }
            }
        }
    }
}

/// Sums in Double over eight independent accumulators: one accumulator is a chain of
/// dependent additions (four cycles each), eight let the adds overlap and vectorise.
/// The order differs from a left-to-right sum by rounding in Double only.
public enum Sums {
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0, a6 = 0.0, a7 = 0.0
        var i = 0
        while i + 8 <= count {
            a0 += Double(x[i]); a1 += Double(x[i + 1]); a2 += Double(x[i + 2]); a3 += Double(x[i + 3])
            a4 += Double(x[i + 4]); a5 += Double(x[i + 5]); a6 += Double(x[i + 6]); a7 += Double(x[i + 7])
            i += 8
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        while i < count { s += Double(x[i]); i += 1 }
        return s
    }

    /// (sum of x - shift, sum of (x - shift)^2), in one pass.
    public static func shiftedMoments(_ x: UnsafePointer<Float>, count: Int, shift: Double) -> (Double, Double) {
        var s = SIMD8<Double>.zero, q = SIMD8<Double>.zero, s2 = SIMD8<Double>.zero, q2 = SIMD8<Double>.zero
        let k = SIMD8<Double>(repeating: shift)
        let raw = UnsafeRawPointer(x)
        var i = 0
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let lo = SIMD8<Double>(v.lowHalf) - k, hi = SIMD8<Double>(v.highHalf) - k
            s += lo
            q += lo * lo
            s2 += hi
            q2 += hi * hi
            i += 16
        }
        var sum = (s + s2).sum(), squares = (q + q2).sum()
        while i < count {
            let d = Double(x[i]) - shift
            sum += d
            squares += d * d
            i += 1
        }
        return (sum, squares)
    }

    /// sum of (x - mean)^2.
    public static func squaredDeviations(_ x: UnsafePointer<Float>, count: Int, from mean: Double) -> Double {
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0, a6 = 0.0, a7 = 0.0
        var i = 0
        @inline(__always) func sq(_ v: Float) -> Double { let d = Double(v) - mean; return d * d }
        while i + 8 <= count {
            a0 += sq(x[i]); a1 += sq(x[i + 1]); a2 += sq(x[i + 2]); a3 += sq(x[i + 3])
            a4 += sq(x[i + 4]); a5 += sq(x[i + 5]); a6 += sq(x[i + 6]); a7 += sq(x[i + 7])
            i += 8
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        while i < count { s += sq(x[i]); i += 1 }
        return s
    }

    /// (sum of dy, sum of dy * xhat) with xhat = (x - mean) * rstd, as batch norm's backward needs.
    public static func gradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int, mean: Float, rstd: Float) -> (Double, Double) {
        var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0
        var i = 0
        @inline(__always) func term(_ k: Int) -> (Double, Double) {
            let d = Double(dy[k])
            return (d, d * Double((x[k] - mean) * rstd))
        }
        while i + 4 <= count {
            let t0 = term(i), t1 = term(i + 1), t2 = term(i + 2), t3 = term(i + 3)
            a0 += t0.0; a1 += t1.0; a2 += t2.0; a3 += t3.0
            b0 += t0.1; b1 += t1.1; b2 += t2.1; b3 += t3.1
            i += 4
        }
        var a = (a0 + a1) + (a2 + a3), b = (b0 + b1) + (b2 + b3)
        while i < count { let t = term(i); a += t.0; b += t.1; i += 1 }
        return (a, b)
    }

    /// `gradientSums` of dy masked where x * a + b is not positive (the fused ReLU's mask), 16 lanes
    /// at a time, each lane's products summed in Double.
    public static func gatedGradientSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int, mean: Float, rstd: Float,
                                         gate: (a: Float, b: Float)) -> (Double, Double) {
        var (a0, a1, b0, b1) = (SIMD8<Double>(), SIMD8<Double>(), SIMD8<Double>(), SIMD8<Double>())
        var i = 0
        while i + 16 <= count {
            let xv = Lanes.load(x + i)
            let g = Lanes.gated(Lanes.load(dy + i), xv, gate), gx = g * ((xv - mean) * rstd)
            a0 += SIMD8<Double>(g.lowHalf); a1 += SIMD8<Double>(g.highHalf)
            b0 += SIMD8<Double>(gx.lowHalf); b1 += SIMD8<Double>(gx.highHalf)
            i += 16
        }
        var a = (a0 + a1).sum(), b = (b0 + b1).sum()
        while i < count {
            if x[i] * gate.a + gate.b > 0 { a += Double(dy[i]); b += Double(dy[i]) * Double((x[i] - mean) * rstd) }
            i += 1
        }
        return (a, b)
    }
}

/// 16 floats as one vector: loads and stores at any alignment, and the fused ReLU's mask as a select.
enum Lanes {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { load(UnsafePointer(p)) }

    @inline(__always) static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// g where x * a + b > 0, else 0.
    @inline(__always) static func gated(_ g: SIMD16<Float>, _ x: SIMD16<Float>, _ gate: (a: Float, b: Float)) -> SIMD16<Float> {
        g.replacing(with: 0, where: .!(x * gate.a + gate.b .> 0))
    }
}
