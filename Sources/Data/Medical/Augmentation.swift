import Foundation
import StageConfig
import Tensor

/// Applies `AugmentationSettings` to a training batch: per image, a spatial transform
/// (flips, quarter turns, rotation, scaling and an elastic field, composed into one
/// sampling map: bilinear for the image, nearest for the label, zero outside) and
/// intensity transforms per channel. Every draw comes from an RNG seeded by `seed` and
/// the image's place in the batch, so a batch is augmented the same way on every run,
/// whatever the thread count.
///
/// 3D patches [B, C, D, H, W] take the same transforms: rotations about all three axes
/// (about the depth axis alone, in the plane, for patches thinner than a third of their
/// largest side, as nnU-Net augments anisotropic patches), quarter turns in the plane, flips
/// along any of the three axes, scaling along all three, an elastic field displacing
/// along all three, trilinear sampling for images, and blur along every axis. A slice
/// is augmented exactly as before: depth is only drawn for and sampled in volumes.
public struct Augmenter: Sendable {
    public let settings: AugmentationSettings

    public init(_ settings: AugmentationSettings) { self.settings = settings }

    /// Augmented copies of `images` [B, C, H, W] (or [B, C, D, H, W]) and `labels` [B, 1, ...].
    /// `first`: the place of the first image in its whole batch (a rank's share of a
    /// split batch), so that each image is drawn the same way however the batch is split.
    public func apply(images: Tensor, labels: Tensor, seed: UInt64, first: Int = 0) -> (images: Tensor, labels: Tensor) {
        let (n, c) = (images.shape[0], images.shape[1])
        let volume = images.rank == 5
        let (d, h, w) = volume ? (images.shape[2], images.shape[3], images.shape[4]) : (1, images.shape[2], images.shape[3])
        let outImages = Tensor(uninitialized: images.shape), outLabels = Tensor(uninitialized: labels.shape)
        let plane = d * h * w
        Parallel.forEach(n) { b in
            var rng = RNG(seed: Seeds.sample(seed, index: first + b))
            let src = images.pointer + b * c * plane, dst = outImages.pointer + b * c * plane
            let labelSrc = labels.pointer + b * plane, labelDst = outLabels.pointer + b * plane
            if volume, let map = spatialMap(depth: d, height: h, width: w, rng: &rng) {
                for ch in 0..<c { Self.sampleTrilinear(src + ch * plane, dst + ch * plane, map: map, size: [d, h, w]) }
                Self.sampleNearest(labelSrc, labelDst, map: map, size: [d, h, w])
            } else if !volume, let map = spatialMap(height: h, width: w, rng: &rng) {
                for ch in 0..<c { Self.sampleBilinear(src + ch * plane, dst + ch * plane, map: map, height: h, width: w) }
                Self.sampleNearest(labelSrc, labelDst, map: map, height: h, width: w)
            } else {
                dst.update(from: src, count: c * plane)
                labelDst.update(from: labelSrc, count: plane)
            }
            for ch in 0..<c { intensity(dst + ch * plane, depth: d, height: h, width: w, rng: &rng) }
        }
        return (outImages, outLabels)
    }

    /// Where each output pixel samples the input (x then y, pixel units), or nil when no
    /// spatial transform was drawn for this image.
    func spatialMap(height h: Int, width w: Int, rng: inout RNG) -> [Float]? {
        guard let t = transform(depth: 1, height: h, width: w, rng: &rng) else { return nil }
        let m = t.plane, field = t.field
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

    /// Where each output voxel of a volume samples the input (z, y, x per voxel), or nil
    /// when no spatial transform was drawn.
    func spatialMap(depth d: Int, height h: Int, width w: Int, rng: inout RNG) -> [Float]? {
        guard let t = transform(depth: d, height: h, width: w, rng: &rng) else { return nil }
        let m = t.plane
        let (cz, cy, cx) = (Float(d - 1) / 2, Float(h - 1) / 2, Float(w - 1) / 2)
        let (ca, sa, cb, sb) = (cos(t.tilt.0), sin(t.tilt.0), cos(t.tilt.1), sin(t.tilt.1))
        var map = [Float](repeating: 0, count: 3 * d * h * w)
        var i = 0
        for z in 0..<d {
            let oz = t.depth * (Float(z) - cz)
            for y in 0..<h {
                for x in 0..<w {
                    let (u, v) = (Float(x) - cx, Float(y) - cy)
                    // In the plane, then about the width axis (depth and height turn), then about the height axis.
                    let (py, px) = (m.2 * u + m.3 * v, m.0 * u + m.1 * v)
                    let (qz, qy) = (ca * oz - sa * py, sa * oz + ca * py)
                    let (rz, rx) = (cb * qz - sb * px, sb * qz + cb * px)
                    var p = (rz + cz, qy + cy, rx + cx)
                    if let f = t.field {
                        p.0 += f.dz[i]; p.1 += f.dy[i]; p.2 += f.dx[i]
                    }
                    map[3 * i] = p.0
                    map[3 * i + 1] = p.1
                    map[3 * i + 2] = p.2
                    i += 1
                }
            }
        }
        return map
    }

    /// One image's spatial draws: the in-plane 2x2 matrix from output offsets (from the
    /// centre) to input offsets, the factor along depth (a volume's flip and scale), a
    /// volume's rotations about its width and height axes, and an elastic field; nil when
    /// nothing moves.
    func transform(depth d: Int, height h: Int, width w: Int, rng: inout RNG)
        -> (plane: (Float, Float, Float, Float), depth: Float, tilt: (Float, Float), field: (dx: [Float], dy: [Float], dz: [Float])?)? {
        let s = settings
        var m: (Float, Float, Float, Float) = (1, 0, 0, 1)
        var mz: Float = 1
        var moved = false
        func compose(_ a: (Float, Float, Float, Float)) {
            m = (m.0 * a.0 + m.1 * a.2, m.0 * a.1 + m.1 * a.3, m.2 * a.0 + m.3 * a.2, m.2 * a.1 + m.3 * a.3)
            moved = true
        }
        // Every draw is made whether or not the transform applies, so that turning one
        // transform on does not change the draws of the others. Depth draws only in volumes.
        if let f = s.flip {
            let (dh, dv) = (rng.uniform(), rng.uniform())
            if f.horizontal, Double(dh) < f.p { compose((-1, 0, 0, 1)) }
            if f.vertical, Double(dv) < f.p { compose((1, 0, 0, -1)) }
            if d > 1, f.depth {
                if Double(rng.uniform()) < f.p { mz = -mz; moved = true }
            }
        }
        if let p = s.rotate90 {
            let (d, k) = (rng.uniform(), 1 + rng.below(3))
            if h == w, Double(d) < p {
                for _ in 0..<k { compose((0, -1, 1, 0)) }
            }
        }
        var tilt: (Float, Float) = (0, 0)
        if let r = s.rotate {
            let (draw, u) = (rng.uniform(), rng.uniform())
            // Volumes draw two more angles: about the width and the height axes. As nnU-Net, they apply
            // only to patches whose depth is at least a third of their largest side (thicker slabs turn
            // in the plane alone, nnU-Net's "dummy 2D" augmentation).
            let (a, b) = d > 1 ? (rng.uniform(), rng.uniform()) : (0, 0)
            if Double(draw) < r.p {
                let angle = Float((r.low + (r.high - r.low) * Double(u)) * Double.pi / 180)
                compose((cos(angle), -sin(angle), sin(angle), cos(angle)))
                if d > 1, 3 * d >= max(h, w) {
                    func degrees(_ t: Float) -> Float { Float((r.low + (r.high - r.low) * Double(t)) * Double.pi / 180) }
                    tilt = (degrees(a), degrees(b))
                    moved = true
                }
            }
        }
        if let z = s.scale {
            let (d, u) = (rng.uniform(), rng.uniform())
            if Double(d) < z.p {
                // Enlarging by f samples the input at 1/f of the distance from the centre.
                let f = Float(z.low + (z.high - z.low) * Double(u))
                compose((1 / f, 0, 0, 1 / f))
                mz /= f
            }
        }
        var field: (dx: [Float], dy: [Float], dz: [Float])?
        if let e = s.elastic {
            let draw = rng.uniform()
            var grid = RNG(seed: rng.next())
            if Double(draw) < e.p {
                if d > 1 {
                    field = Self.elasticField(size: [d, h, w], alpha: Float(e.alpha), spacing: e.sigma, rng: &grid)
                } else {
                    let f = Self.elasticField(height: h, width: w, alpha: Float(e.alpha), spacing: e.sigma, rng: &grid)
                    field = (f.dx, f.dy, [])
                }
            }
        }
        guard moved || field != nil else { return nil }
        return (m, mz, tilt, field)
    }

    /// A smooth displacement of a volume along its three axes: normal values (sd `alpha`) on
    /// control points `spacing` voxels apart, trilinearly interpolated to every voxel.
    static func elasticField(size: [Int], alpha: Float, spacing: Double, rng: inout RNG) -> (dx: [Float], dy: [Float], dz: [Float]) {
        let g = size.map { Int((Double($0) / spacing).rounded(.up)) + 2 }
        let points = g.reduce(1, *)
        let grids = (0..<3).map { _ in (0..<points).map { _ in rng.normal() * alpha } }
        let count = size.reduce(1, *)
        var out = [[Float]](repeating: [Float](repeating: 0, count: count), count: 3)
        var i = 0
        for z in 0..<size[0] {
            let fz = Float(Double(z) / spacing), z0 = Int(fz), tz = fz - Float(z0)
            for y in 0..<size[1] {
                let fy = Float(Double(y) / spacing), y0 = Int(fy), ty = fy - Float(y0)
                for x in 0..<size[2] {
                    let fx = Float(Double(x) / spacing), x0 = Int(fx), tx = fx - Float(x0)
                    let base = (z0 * g[1] + y0) * g[2] + x0
                    for a in 0..<3 {
                        let v = grids[a]
                        func plane(_ o: Int) -> Float {
                            let top = v[o] + tx * (v[o + 1] - v[o]), bottom = v[o + g[2]] + tx * (v[o + g[2] + 1] - v[o + g[2]])
                            return top + ty * (bottom - top)
                        }
                        let near = plane(base), far = plane(base + g[1] * g[2])
                        out[a][i] = near + tz * (far - near)
                    }
                    i += 1
                }
            }
        }
        return (out[2], out[1], out[0])
    }

    /// Trilinear sampling of a volume at `map` (z, y, x per output voxel), zero outside.
    static func sampleTrilinear(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, map: [Float], size: [Int]) {
        let (d, h, w) = (size[0], size[1], size[2])
        func at(_ z: Int, _ y: Int, _ x: Int) -> Float {
            z < 0 || y < 0 || x < 0 || z >= d || y >= h || x >= w ? 0 : src[(z * h + y) * w + x]
        }
        for i in 0..<(d * h * w) {
            let (sz, sy, sx) = (map[3 * i], map[3 * i + 1], map[3 * i + 2])
            guard abs(sz) < Float(d + 2), abs(sy) < Float(h + 2), abs(sx) < Float(w + 2) else { dst[i] = 0; continue }
            let z0 = Int(sz.rounded(.down)), y0 = Int(sy.rounded(.down)), x0 = Int(sx.rounded(.down))
            let (tz, ty, tx) = (sz - Float(z0), sy - Float(y0), sx - Float(x0))
            func plane(_ z: Int) -> Float {
                let top = at(z, y0, x0) + tx * (at(z, y0, x0 + 1) - at(z, y0, x0))
                let bottom = at(z, y0 + 1, x0) + tx * (at(z, y0 + 1, x0 + 1) - at(z, y0 + 1, x0))
                return top + ty * (bottom - top)
            }
            let near = plane(z0), far = plane(z0 + 1)
            dst[i] = near + tz * (far - near)
        }
    }

    /// Nearest-voxel sampling of a label volume at `map`, zero (background) outside.
    static func sampleNearest(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, map: [Float], size: [Int]) {
        let (d, h, w) = (size[0], size[1], size[2])
        for i in 0..<(d * h * w) {
            let (sz, sy, sx) = (map[3 * i], map[3 * i + 1], map[3 * i + 2])
            guard abs(sz) < Float(d + 2), abs(sy) < Float(h + 2), abs(sx) < Float(w + 2) else { dst[i] = 0; continue }
            let z = Int(sz.rounded()), y = Int(sy.rounded()), x = Int(sx.rounded())
            dst[i] = z < 0 || y < 0 || x < 0 || z >= d || y >= h || x >= w ? 0 : src[(z * h + y) * w + x]
        }
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

    /// Brightness, contrast, gamma, noise and blur on one channel of one image (or volume), in place.
    func intensity(_ x: UnsafeMutablePointer<Float>, depth d: Int = 1, height h: Int, width w: Int, rng: inout RNG) {
        let s = settings, n = d * h * w
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
        if let sigma = draw(s.blur), sigma > 0 {
            for z in 0..<d { Self.gaussianBlur(x + z * h * w, height: h, width: w, sigma: sigma) }
            // Along depth: the plane's rows are the slices, its columns every in-plane voxel.
            if d > 1 { Self.blurColumns(x, height: d, width: h * w, sigma: sigma) }
        }
    }

    /// The Gaussian kernel of radius ceil(3 sigma) (at most `limit`), normalised.
    static func gaussianKernel(sigma: Float, limit: Int) -> (radius: Int, weights: [Float]) {
        let r = min(Int((3 * min(sigma, 1e6)).rounded(.up)), limit)
        let k = (-r...r).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = k.reduce(0, +)
        return (r, k.map { $0 / total })
    }

    /// Blur along the rows' direction of an h x w plane (each column blurred), edges clamped.
    static func blurColumns(_ x: UnsafeMutablePointer<Float>, height h: Int, width w: Int, sigma: Float, radiusLimit: Int? = nil) {
        let (r, k) = gaussianKernel(sigma: sigma, limit: radiusLimit ?? h)
        let copy = [Float](UnsafeBufferPointer(start: x, count: h * w))
        copy.withUnsafeBufferPointer { t in
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

    /// Separable Gaussian blur, radius ceil(3 sigma), edges clamped. Rows are padded
    /// once and columns are summed row by row, so that the inner loops are plain
    /// multiply-adds over contiguous memory.
    static func gaussianBlur(_ x: UnsafeMutablePointer<Float>, height h: Int, width w: Int, sigma: Float) {
        // A radius beyond the image adds nothing but clamped edge values.
        let (r, k) = gaussianKernel(sigma: sigma, limit: max(h, w))
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
        x.update(from: tmp, count: h * w)
        blurColumns(x, height: h, width: w, sigma: sigma, radiusLimit: max(h, w))
    }
}
