import StageConfig

/// A 3D scalar volume in canonical RAS+ voxel order: index 0 runs from the
/// patient's left to right, index 1 from posterior to anterior, index 2 from
/// inferior to superior. "Axial slice k" therefore means the same thing for
/// every file, whatever order its voxels were stored in.
public struct Volume: Sendable {
    /// Voxels along x (L->R), y (P->A), z (I->S).
    public var dims: [Int]
    /// Millimetres per voxel along each canonical axis.
    public var spacing: [Double]
    /// Values with scl_slope/scl_inter applied, x fastest.
    public var data: [Float]
    /// The stored datatype's name (INT16, FLOAT32, ...).
    public var datatype: String
    /// How the file's axes map onto the canonical ones, to write results back in the file's geometry.
    public var orientation: Orientation

    public init(dims: [Int], spacing: [Double], data: [Float], datatype: String, orientation: Orientation = .identity) {
        self.dims = dims
        self.spacing = spacing
        self.data = data
        self.datatype = datatype
        self.orientation = orientation
    }

    public var count: Int { dims.reduce(1, *) }

    public subscript(x: Int, y: Int, z: Int) -> Float {
        get { data[(z * dims[1] + y) * dims[0] + x] }
        set { data[(z * dims[1] + y) * dims[0] + x] = newValue }
    }

    /// Minimum and maximum value.
    public var range: (Float, Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for v in data { lo = min(lo, v); hi = max(hi, v) }
        return (lo, hi)
    }
}

/// The permutation and flips from a file's voxel axes to canonical RAS+ axes.
public struct Orientation: Hashable, Sendable {
    /// For canonical axis a: the file axis that runs along it.
    public var fileAxis: [Int]
    /// For canonical axis a: whether the file axis runs against it.
    public var flipped: [Bool]
    /// The file's own orientation letters, e.g. "RAS" or "LPS" (to which side each axis runs).
    public var code: String
    /// The file's voxel-to-world matrix (rows of 4), kept for writing results back.
    public var affine: [[Double]]
    public var qformCode: Int32
    public var sformCode: Int32

    public static let identity = Orientation(fileAxis: [0, 1, 2], flipped: [false, false, false], code: "RAS",
                                             affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], qformCode: 0, sformCode: 0)

    /// From the orientation codes of the file's i, j, k axes (NIFTI_L2R = 1 ... NIFTI_S2I = 6).
    public static func from(codes: [Int32], affine: [[Double]], qformCode: Int32, sformCode: Int32) -> Orientation? {
        var fileAxis = [Int](repeating: -1, count: 3), flipped = [false, false, false]
        let letters: [Int32: Character] = [1: "R", 2: "L", 3: "A", 4: "P", 5: "S", 6: "I"]
        for (axis, code) in codes.enumerated() {
            guard (1...6).contains(code) else { return nil }
            let canonical = Int((code - 1) / 2)
            guard fileAxis[canonical] == -1 else { return nil }
            fileAxis[canonical] = axis
            flipped[canonical] = code % 2 == 0
        }
        return Orientation(fileAxis: fileAxis, flipped: flipped, code: String(codes.compactMap { letters[$0] }),
                           affine: affine, qformCode: qformCode, sformCode: sformCode)
    }

    /// The orientation a user states for a file that records none (ANALYZE 7.5):
    /// letters like `LAS`, voxel sizes from the header, a diagonal affine.
    public static func stated(_ o: AxisOrientation, spacing: [Double]) -> Orientation {
        let codes: [Character: Int32] = ["R": 1, "L": 2, "A": 3, "P": 4, "S": 5, "I": 6]
        var affine: [[Double]] = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
        let letters = Array(o.letters)
        for (axis, letter) in letters.enumerated() {
            let code = codes[letter] ?? 1
            affine[Int((code - 1) / 2)][axis] = (code % 2 == 1 ? 1 : -1) * (axis < spacing.count && spacing[axis] > 0 ? spacing[axis] : 1)
        }
        // A stated orientation is a valid permutation (AxisOrientation checks), so `from` succeeds.
        return from(codes: letters.map { codes[$0] ?? 1 }, affine: affine, qformCode: 0, sformCode: 0) ?? .identity
    }

    /// Calls `body(canonicalIndex, fileIndex)` for every voxel of a volume whose
    /// canonical dimensions are `dims`, in canonical order.
    private func forEachVoxel(canonicalDims dims: [Int], _ body: (Int, Int) -> Void) {
        var fileDims = [0, 0, 0]
        for a in 0..<3 { fileDims[fileAxis[a]] = dims[a] }
        let strides = [1, fileDims[0], fileDims[0] * fileDims[1]]
        var fileIndex = [0, 0, 0]
        var o = 0
        for z in 0..<dims[2] {
            for y in 0..<dims[1] {
                for x in 0..<dims[0] {
                    for (a, c) in [x, y, z].enumerated() { fileIndex[fileAxis[a]] = flipped[a] ? dims[a] - 1 - c : c }
                    body(o, fileIndex[0] * strides[0] + fileIndex[1] * strides[1] + fileIndex[2] * strides[2])
                    o += 1
                }
            }
        }
    }

    private var isIdentity: Bool { fileAxis == [0, 1, 2] && flipped == [false, false, false] }

    /// The file's own dimensions of a volume whose canonical dimensions are `dims`.
    public func fileDims(_ dims: [Int]) -> [Int] {
        guard dims.count == 3 else { return dims }
        var out = [0, 0, 0]
        for a in 0..<3 { out[fileAxis[a]] = dims[a] }
        return out
    }

    /// Reorders file-order voxels (i fastest) into canonical order.
    func canonical(_ values: [Float], fileDims: [Int]) -> (dims: [Int], values: [Float]) {
        let dims = fileAxis.map { fileDims[$0] }
        if isIdentity { return (dims, values) }
        var out = [Float](repeating: 0, count: values.count)
        forEachVoxel(canonicalDims: dims) { o, f in out[o] = values[f] }
        return (dims, out)
    }

    /// The inverse of `canonical`: canonical-order voxels back into the file's order.
    public func fileOrder(_ values: [Float], canonicalDims dims: [Int]) -> (dims: [Int], values: [Float]) {
        var fileDims = [0, 0, 0]
        for a in 0..<3 { fileDims[fileAxis[a]] = dims[a] }
        if isIdentity { return (fileDims, values) }
        var out = [Float](repeating: 0, count: values.count)
        forEachVoxel(canonicalDims: dims) { o, f in out[f] = values[o] }
        return (fileDims, out)
    }
}
