import Foundation
import StageConfig
import Tensor

/// Applies `AugmentationSettings` to a training batch: per image, a spatial transform
/// (flips, quarter turns, rotation, scaling and an elastic field, composed into one
/// sampling map: bilinear for the image, nearest for the label, zero outside) and
/// intensity transforms per channel. Every draw comes from an RNG seeded by `seed` and
/// the image's place in the batch, so a batch is augmented the same way on every run,
/// whatever the thread count.
public struct Augmenter: Sendable {
    public let settings: AugmentationSettings

    public init(_ settings: AugmentationSettings) { self.settings = settings }

    /// Augmented copies of `images` [B, C, H, W] and `labels` [B, 1, H, W].
    /// `first`: the place of the first image in its whole batch (a rank's share of a
    /// split batch), so that each image is drawn the same way however the batch is split.
    public func apply(images: Tensor, labels: Tensor, seed: UInt64, first: Int = 0) -> (images: Tensor, labels: Tensor) {
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let outImages = Tensor(uninitialized: images.shape), outLabels = Tensor(uninitialized: labels.shape)
        let plane = h * w
        Parallel.forEach(n) { b in
            var rng = RNG(seed: seed &+ UInt64(first + b) &* 0x9E37_79B9_7F4A_7C15)
            let src = images.pointer + b * c * plane, dst = outImages.pointer + b * c * plane
            let labelSrc = labels.pointer + b * plane, labelDst = outLabels.pointer + b * plane
            if let map = spatialMap(height: h, width: w, rng: &rng) {
                for ch in 0..<c { Self.sampleBilinear(src + ch * plane, dst + ch * plane, map: map, height: h, width: w) }
                Self.sampleNearest(labelSrc, labelDst, map: map, height: h, width: w)
            } else {
                dst.update(from: src, count: c * plane)
                labelDst.update(from: labelSrc, count: plane)
            }
            for ch in 0..<c { intensity(dst + ch * plane, height: h, width: w, rng: &rng) }
        }
        return (outImages, outLabels)
    }

    /// Where each output pixel samples the input (x then y, pixel units), or nil when no
    /// spatial transform was drawn for this image.
    func spatialMap(height h: Int, width w: Int, rng: inout RNG) -> [Float]? {
        let s = settings
        // The 2x2 matrix from output offsets (from the centre) to input offsets.
        var m: (Float, Float, Float, Float) = (1, 0, 0, 1)
        var moved = false
        func compose(_ a: (Float, Float, Float, Float)) {
            m = (m.0 * a.0 + m.1 * a.2, m.0 * a.1 + m.1 * a.3, m.2 * a.0 + m.3 * a.2, m.2 * a.1 + m.3 * a.3)
            moved = true
        }
        // Every draw is made whether or not the transform applies, so that turning one
        // transform on does not change the draws of the others.
        if let f = s.flip {
            let (dh, dv) = (rng.uniform(), rng.uniform())
            if f.horizontal, Double(dh) < f.p { compose((-1, 0, 0, 1)) }
            if f.vertical, Double(dv) < f.p { compose((1, 0, 0, -1)) }
        }
        if let p = s.rotate90 {
            let (d, k) = (rng.uniform(), 1 + rng.below(3))
            if h == w, Double(d) < p {
                for _ in 0..<k { compose((0, -1, 1, 0)) }
            }
        }
        if let r = s.rotate {
            let (d, u) = (rng.uniform(), rng.uniform())
            if Double(d) < r.p {
                let angle = Float((r.low + (r.high - r.low) * Double(u)) * Double.pi / 180)
                compose((cos(angle), -sin(angle), sin(angle), cos(angle)))
            }
        }
        if let z = s.scale {
            let (d, u) = (rng.uniform(), rng.uniform())
            if Double(d) < z.p {
                // Enlarging by f samples the input at 1/f of the distance from the centre.
                let f = Float(z.low + (z.high - z.low) * Double(u))
                compose((1 / f, 0, 0, 1 / f))
            }
        }
        var field: (dx: [Float], dy: [Float])?
        if let e = s.elastic {
            let d = rng.uniform()
            var grid = RNG(seed: rng.next())
            if Double(d) < e.p { field = Self.elasticField(height: h, width: w, alpha: Float(e.alpha), spacing: e.sigma, rng: &grid) }
        }
        guard moved || field != nil else { return nil }
        let (cy, cx) = (Float(h - 1) / 2, Float(w - 1) / 2)
        var map = [Float](repeating: 0, count: 2 * h * w)
        for y in 0..<h {
            for x in 0..<w {
                let (u, v) = (Float(x) - cx, Float(y) - cy)
                var sx = m.0 * u + m.1 * v + cx, sy = m.2 * u + m.3 * v + cy
                if let f = field { sx += f.dx[y * w + x]; sy += f.dy[y * w + x] }
                map[2 * (y * w + x)] = sx
                map[2 * (y * w + x) + 1] = sy
            }
        }
        return map
    }

    /// A smooth displacement: normal values (sd `alpha`) on control points `spacing` pixels
    /// apart, bilinearly interpolated to every pixel.
    static func elasticField(height h: Int, width w: Int, alpha: Float, spacing: Double, rng: inout RNG) -> (dx: [Float], dy: [Float]) {
        let gh = Int((Double(h) / spacing).rounded(.up)) + 2, gw = Int((Double(w) / spacing).rounded(.up)) + 2
        let gx = (0..<(gh * gw)).map { _ in rng.normal() * alpha }, gy = (0..<(gh * gw)).map { _ in rng.normal() * alpha }
        var dx = [Float](repeating: 0, count: h * w), dy = dx
        for y in 0..<h {
            let fy = Float(Double(y) / spacing), y0 = Int(fy), ty = fy - Float(y0)
            for x in 0..<w {
                let fx = Float(Double(x) / spacing), x0 = Int(fx), tx = fx - Float(x0)
                let i00 = y0 * gw + x0, i01 = i00 + 1, i10 = i00 + gw, i11 = i10 + 1
                func lerp(_ g: [Float]) -> Float {
                    let top = g[i00] + tx * (g[i01] - g[i00]), bottom = g[i10] + tx * (g[i11] - g[i10])
                    return top + ty * (bottom - top)
                }
                dx[y * w + x] = lerp(gx)
                dy[y * w + x] = lerp(gy)
            }
        }
        return (dx, dy)
    }

    static func sampleBilinear(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, map: [Float], height h: Int, width w: Int) {
        for i in 0..<(h * w) {
            let sx = map[2 * i], sy = map[2 * i + 1]
            // Far outside (or not a number, from an extreme setting): zero, without converting to Int.
            guard abs(sx) < Float(w + 2), abs(sy) < Float(h + 2) else { dst[i] = 0; continue }
            let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
            let tx = sx - Float(x0), ty = sy - Float(y0)
            func at(_ x: Int, _ y: Int) -> Float { x < 0 || y < 0 || x >= w || y >= h ? 0 : src[y * w + x] }
            let top = at(x0, y0) + tx * (at(x0 + 1, y0) - at(x0, y0))
            let bottom = at(x0, y0 + 1) + tx * (at(x0 + 1, y0 + 1) - at(x0, y0 + 1))
            dst[i] = top + ty * (bottom - top)
        }
    }

    static func sampleNearest(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, map: [Float], height h: Int, width w: Int) {
        for i in 0..<(h * w) {
            let (sx, sy) = (map[2 * i], map[2 * i + 1])
            guard abs(sx) < Float(w + 2), abs(sy) < Float(h + 2) else { dst[i] = 0; continue }
            let x = Int(sx.rounded()), y = Int(sy.rounded())
            dst[i] = x < 0 || y < 0 || x >= w || y >= h ? 0 : src[y * w + x]
        }
    }

    /// Brightness, contrast, gamma, noise and blur on one channel of one image, in place.
    func intensity(_ x: UnsafeMutablePointer<Float>, height h: Int, width w: Int, rng: inout RNG) {
        let s = settings, n = h * w
        func draw(_ r: AugmentationSettings.Ranged?) -> Float? {
            guard let r else { return nil }
            let (d, u) = (rng.uniform(), rng.uniform())
            return Double(d) < r.p ? Float(r.low + (r.high - r.low) * Double(u)) : nil
        }
        if let f = draw(s.brightness) { for i in 0..<n { x[i] *= f } }
        if let f = draw(s.contrast) {
            var mean: Float = 0
            for i in 0..<n { mean += x[i] }
            mean /= Float(n)
            for i in 0..<n { x[i] = (x[i] - mean) * f + mean }
        }
        if let g = draw(s.gamma) {
            var lo = Float.infinity, hi = -Float.infinity
            for i in 0..<n { lo = min(lo, x[i]); hi = max(hi, x[i]) }
            if hi > lo {
                // t^gamma from a table of 1025 points, linearly interpolated (error below 1e-3): pow per pixel cost more than the rest.
                let steps = 1024
                let table = (0...steps).map { pow(Float($0) / Float(steps), g) }
                let scale = Float(steps) / (hi - lo)
                table.withUnsafeBufferPointer { t in
                    for i in 0..<n {
                        let u = (x[i] - lo) * scale, k = min(steps - 1, Int(u))
                        x[i] = lo + (hi - lo) * (t[k] + (u - Float(k)) * (t[k + 1] - t[k]))
                    }
                }
            }
        }
        if let sd = draw(s.noise) {
            // Near-Gaussian noise as the centred sum of four uniforms, scaled to the drawn sd
            // (tails end at 3.46 sd): a logarithm and a cosine per pixel cost more than the
            // rest of the augmentation together.
            var noise = RNG(seed: rng.next())
            let scale = sd * Float(3.0.squareRoot()), unit: Float = 1.0 / 65536
            for i in 0..<n {
                let r = noise.next()
                let sum = Float(r & 0xFFFF) + Float((r >> 16) & 0xFFFF) + Float((r >> 32) & 0xFFFF) + Float(r >> 48)
                x[i] += (sum * unit - 2) * scale
            }
        }
        if let sigma = draw(s.blur), sigma > 0 { Self.gaussianBlur(x, height: h, width: w, sigma: sigma) }
    }

    /// Separable Gaussian blur, radius ceil(3 sigma), edges clamped. Rows are padded
    /// once and columns are summed row by row, so that the inner loops are plain
    /// multiply-adds over contiguous memory.
    static func gaussianBlur(_ x: UnsafeMutablePointer<Float>, height h: Int, width w: Int, sigma: Float) {
        // A radius beyond the image adds nothing but clamped edge values.
        let r = min(Int((3 * min(sigma, 1e6)).rounded(.up)), max(h, w))
        var k = (-r...r).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = k.reduce(0, +)
        k = k.map { $0 / total }
        var padded = [Float](repeating: 0, count: w + 2 * r)
        var tmp = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            let row = x + y * w
            for i in 0..<(w + 2 * r) { padded[i] = row[min(w - 1, max(0, i - r))] }
            padded.withUnsafeBufferPointer { p in
                tmp.withUnsafeMutableBufferPointer { t in
                    let out = t.baseAddress! + y * w
                    for i in 0..<w { out[i] = 0 }
                    for j in 0..<(2 * r + 1) {
                        let kj = k[j], src = p.baseAddress! + j
                        for i in 0..<w { out[i] += kj * src[i] }
                    }
                }
            }
        }
        tmp.withUnsafeBufferPointer { t in
            for y in 0..<h {
                let out = x + y * w
                for i in 0..<w { out[i] = 0 }
                for j in -r...r {
                    let kj = k[j + r], src = t.baseAddress! + min(h - 1, max(0, y + j)) * w
                    for i in 0..<w { out[i] += kj * src[i] }
                }
            }
        }
    }
}
