import Foundation
import Storage
import StageConfig
import Tensor

/// The built-in synthetic abdominal CT: a real MSD folder (NIfTI + dataset.json)
/// so that phantom and real data share one code path.
///
/// Each patient is an axial stack in Hounsfield units: air, a body ellipse with
/// a fat layer and a muscle wall, liver (patient's right), spleen (patient's
/// left, posterior), kidneys, spine and ribs, bowel gas, all with shapes and
/// contrasts that vary per patient; then partial-volume blur and noise. The
/// label map names spleen (1), liver (2) and kidneys (3). A share
/// of patients (`hardCases`) get a small or low-contrast spleen. Odd cases are
/// stored in LPS order (as DICOM converters write them) so that readers must
/// reorient. Seeded: the same settings give the same files.
public enum Phantom {
    /// Writes `imagesTr/`, `labelsTr/` and `dataset.json` under `folder`.
    /// Every case's canonical dimensions and spacing: a 400 mm field of view (512 voxels of
    /// 0.78 mm at full size) and 240 mm of slices (48 of 5 mm).
    public static func geometry(_ s: PhantomSettings) -> (dims: [Int], spacing: [Double]) {
        let spacing = 0.78 * 512 / Double(s.size), zSpacing = 5.0 * 48 / Double(s.slices)
        return ([s.size, s.size, s.slices], [spacing, spacing, zSpacing])
    }

    public static func write(_ s: PhantomSettings, to folder: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: folder + "/imagesTr", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: folder + "/labelsTr", withIntermediateDirectories: true)
        var training: [[String: String]] = []
        let hard = hardCases(s)
        for i in 0..<s.cases {
            let (images, label) = patient(s, index: i, hard: hard.contains(i))
            let name = caseName(i) + ".nii.gz"
            try NIfTI.write(channels: images, to: "\(folder)/imagesTr/\(name)", datatype: 4)
            try NIfTI.write(label, to: "\(folder)/labelsTr/\(name)", datatype: 2)
            training.append(["image": "./imagesTr/\(name)", "label": "./labelsTr/\(name)"])
        }
        let manifest: [String: Any] = [
            "name": "PhantomAbdomen", "description": "Distillery's synthetic abdominal CT with labelled spleen, liver and kidneys (seed \(s.seed))",
            "tensorImageSize": s.modalities.count > 1 ? "4D" : "3D",
            "modality": Dictionary(uniqueKeysWithValues: s.modalities.enumerated().map { ("\($0.offset)", $0.element) }),
            "labels": ["0": "background", "\(Label.spleen)": "spleen", "\(Label.liver)": "liver", "\(Label.kidney)": "kidney"],
            "numTraining": s.cases, "numTest": 0, "training": training, "test": [String](),
        ]
        let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: folder + "/dataset.json")
    }

    /// The cases given a small or low-contrast spleen.
    public static func hardCases(_ s: PhantomSettings) -> Set<Int> {
        Set((0..<s.cases).filter { Double($0 % 100) / 100 < s.hardCases || s.hardCases >= 1 }.prefix(Int((Double(s.cases) * s.hardCases).rounded())))
    }

    /// Case `index`'s name (its files' names without `.nii.gz`).
    public static func caseName(_ index: Int) -> String { "spleen_\(index + 1)" }

    /// The label values of the organs: `foreground: [1]` segments the spleen alone (the
    /// study's task), `foreground: {spleen: 1, liver: 2, kidney: 3}` all three.
    public enum Label {
        public static let spleen = 1, liver = 2, kidney = 3
    }

    /// One patient: the images (the CT in HU, then any MR-like contrasts) and the organ labels,
    /// in canonical order, with the geometry to store them in.
    public static func patient(_ s: PhantomSettings, index: Int, hard: Bool) -> ([Volume], Volume) {
        var rng = RNG(seed: Seeds.phantomPatient(s.seed, index: index))
        let n = s.size, depth = s.slices
        let fn = Float(n)
        var hu = [Float](repeating: -1000, count: n * n * depth)
        var mask = [Float](repeating: 0, count: n * n * depth)
        // Body and organs, in fractions of the in-plane size; z in fractions of the stack.
        let bodyA = (0.40 + 0.05 * rng.uniform()) * fn, bodyB = (0.29 + 0.04 * rng.uniform()) * fn
        let cx = fn / 2 + (rng.uniform() - 0.5) * 0.04 * fn, cy = fn / 2 + (rng.uniform() - 0.5) * 0.04 * fn
        let fat = 0.035 * fn + 0.03 * fn * rng.uniform()
        let liver = (x: cx + 0.18 * fn, y: cy + 0.02 * fn, a: 0.17 * fn * (0.9 + 0.2 * rng.uniform()), b: 0.15 * fn, z0: Float(0.15), z1: Float(0.95))
        let liverHU = 55 + 25 * rng.uniform()
        // The spleen: position, size, contrast and shape vary; hard cases are small or faint.
        let small: Float = hard && rng.uniform() < 0.5 ? 0.55 : 1
        let faint = hard && small == 1
        let spleen = (x: cx - (0.2 + 0.05 * rng.uniform()) * fn, y: cy - (0.08 + 0.06 * rng.uniform()) * fn,
                      a: (0.07 + 0.05 * rng.uniform()) * fn * small, b: (0.045 + 0.035 * rng.uniform()) * fn * small,
                      zc: 0.45 + 0.2 * rng.uniform(), zr: (0.12 + 0.1 * rng.uniform()) * small, angle: (rng.uniform() - 0.5) * 1.4)
        let spleenHU = faint ? liverHU - 4 + 8 * rng.uniform() : liverHU + 6 + 30 * rng.uniform()
        let lobes = (k: Float(2 + rng.below(3)), phase: rng.uniform() * 6.28, amp: 0.1 + 0.15 * rng.uniform())
        let kidneyHU = 120 + 80 * rng.uniform()
        var gas: [(Float, Float, Float, Float)] = []
        for _ in 0..<(3 + rng.below(5)) {
            gas.append((cx + (rng.uniform() - 0.5) * 0.4 * fn, cy + (0.05 + 0.15 * rng.uniform()) * fn, (0.02 + 0.03 * rng.uniform()) * fn, rng.uniform()))
        }
        for z in 0..<depth {
            let fz = Float(z) / Float(max(1, depth - 1))
            for y in 0..<n {
                for x in 0..<n {
                    let fx = Float(x), fy = Float(y)
                    let i = (z * n + y) * n + x
                    let bx = (fx - cx) / bodyA, by = (fy - cy) / bodyB
                    let rBody = (bx * bx + by * by).squareRoot()
                    guard rBody <= 1 else { continue }
                    var v: Float = -95  // subcutaneous fat
                    var organ: Float = 0  // the label: what was painted last
                    let depthIn = (1 - rBody) * min(bodyA, bodyB)
                    if depthIn > fat { v = 45 }  // muscle wall
                    if depthIn > fat + 0.03 * fn { v = -20 + 30 * sin(fx * 0.3 + fy * 0.2) }  // visceral fat and bowel wall texture
                    // Spine and ribs.
                    let sx = fx - cx, sy = fy - (cy - bodyB * 0.62)
                    if sx * sx + sy * sy < pow(0.07 * fn, 2) { v = sx * sx + sy * sy < pow(0.05 * fn, 2) ? 250 : 700 }
                    if abs(depthIn - fat - 0.01 * fn) < 0.012 * fn, Int(fz * 10) % 3 == 0, abs(sin(atan2(by, bx) * 9)) > 0.7 { v = 600 }
                    // Kidneys, posterior on both sides.
                    if fz > 0.15 && fz < 0.6 {
                        for side: Float in [-1, 1] {
                            let kx = (fx - (cx + side * 0.17 * fn)) / (0.055 * fn), ky = (fy - (cy - 0.16 * fn)) / (0.075 * fn)
                            if kx * kx + ky * ky < 1 { v = kx * kx + ky * ky > 0.45 ? kidneyHU : 30; organ = Float(Label.kidney) }
                        }
                    }
                    // Liver.
                    if fz > liver.z0 && fz < liver.z1 {
                        let lx = (fx - liver.x) / liver.a, ly = (fy - liver.y) / liver.b
                        if lx * lx + ly * ly < 1 - 0.3 * pow(fz - 0.55, 2) { v = liverHU + 8 * sin(fx * 0.5) * cos(fy * 0.4); organ = Float(Label.liver) }
                    }
                    // Bowel gas (distractors).
                    for g in gas where fz > g.3 * 0.5 {
                        let dx = fx - g.0, dy = fy - g.1
                        if dx * dx + dy * dy < g.2 * g.2 { v = -650; organ = 0 }
                    }
                    // Spleen: a rotated ellipse with lobulated edge, tapering in z.
                    let dz = (fz - spleen.zc) / max(0.02, spleen.zr)
                    if abs(dz) < 1 {
                        let taper = (1 - dz * dz).squareRoot()
                        let rx = fx - spleen.x, ry = fy - spleen.y
                        let u = rx * cos(spleen.angle) + ry * sin(spleen.angle), w = -rx * sin(spleen.angle) + ry * cos(spleen.angle)
                        let theta = atan2(w, u)
                        let edge = taper * (1 + lobes.amp * sin(lobes.k * theta + lobes.phase))
                        let e = (u / spleen.a) * (u / spleen.a) + (w / spleen.b) * (w / spleen.b)
                        if e < edge * edge {
                            v = spleenHU + 6 * sin(fx * 0.7 + fz * 3)
                            organ = Float(Label.spleen)
                        }
                    }
                    hu[i] = v
                    mask[i] = organ
                }
            }
        }
        // Further modalities from the sharp anatomy, with their own contrasts and noise.
        var contrasts: [[Float]] = []
        for m in 1..<max(1, s.modalities.count) { contrasts.append(contrast(hu, mask, modality: m, s, index: index)) }
        blur(&hu, n: n, depth: depth)
        for i in 0..<hu.count { hu[i] = (hu[i] + Float(s.noise) * rng.normal()).rounded() }
        let (spacing, zSpacing) = (geometry(s).spacing[0], geometry(s).spacing[2])
        // Odd cases are stored LPS (x and y reversed), as DICOM converters write them.
        let lps = index % 2 == 1
        let affine: [[Double]] = [[lps ? -spacing : spacing, 0, 0, 0], [0, lps ? -spacing : spacing, 0, 0], [0, 0, zSpacing, 0], [0, 0, 0, 1]]
        let orientation = Orientation(fileAxis: [0, 1, 2], flipped: [lps, lps, false], code: lps ? "LPS" : "RAS",
                                      affine: affine, qformCode: 1, sformCode: 1)
        let dims = [n, n, depth], sp = [spacing, spacing, zSpacing]
        let images = [hu] + contrasts
        return (images.map { Volume(dims: dims, spacing: sp, data: $0, datatype: "INT16", orientation: orientation) },
                Volume(dims: dims, spacing: sp, data: mask, datatype: "UINT8", orientation: orientation))
    }

    /// An MR-like image of the anatomy (`hu`, sharp, and the organ labels): zero in air,
    /// fat bright or dark and organs brighter or darker by amounts drawn per modality
    /// and patient, so that each modality tells the organs apart differently; then the
    /// same blur, and noise.
    static func contrast(_ hu: [Float], _ organs: [Float], modality m: Int, _ s: PhantomSettings, index: Int) -> [Float] {
        var rng = RNG(seed: Seeds.phantomModality(s.seed, index: index, modality: m))
        let fat: Float = m % 2 == 1 ? 900 : 150, water: Float = m % 2 == 1 ? 250 : 700
        let offsets: [Float] = [0] + (1...3).map { _ in (rng.uniform() - 0.5) * 400 }
        let gain = 0.6 + 0.8 * rng.uniform()
        var out = [Float](repeating: 0, count: hu.count)
        for i in 0..<hu.count where hu[i] > -900 {
            let v = hu[i]
            var level: Float = v < -50 ? fat : (v > 200 ? 60 : water + gain * v)
            if v < -500 { level = 20 }  // bowel gas: near-black, but inside the body
            level += offsets[min(3, Int(organs[i]))]
            out[i] = max(1, level)
        }
        let n = s.size
        blur(&out, n: n, depth: s.slices)
        for i in 0..<out.count where out[i] > 0 { out[i] = max(1, (out[i] + Float(s.noise) * 2 * rng.normal()).rounded()) }
        return out
    }

    /// Partial-volume blur: [1 2 1]/4 along x and y twice, and once along z.
    static func blur(_ v: inout [Float], n: Int, depth: Int) {
        var tmp = v
        for _ in 0..<2 {
            for z in 0..<depth { for y in 0..<n { for x in 1..<(n - 1) {
                let i = (z * n + y) * n + x
                tmp[i] = 0.25 * v[i - 1] + 0.5 * v[i] + 0.25 * v[i + 1]
            } } }
            for z in 0..<depth { for y in 1..<(n - 1) { for x in 0..<n {
                let i = (z * n + y) * n + x
                v[i] = 0.25 * tmp[i - n] + 0.5 * tmp[i] + 0.25 * tmp[i + n]
            } } }
        }
        tmp = v
        for z in 1..<max(1, depth - 1) { for j in 0..<(n * n) {
            let i = z * n * n + j
            v[i] = 0.25 * tmp[i - n * n] + 0.5 * tmp[i] + 0.25 * tmp[i + n * n]
        } }
    }
}
