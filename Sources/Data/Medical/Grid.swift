import Foundation

/// Where a volume's canonical voxel grid lies in the world: voxel (i, j, k) in
/// canonical RAS order is at `origin + i axes[0] + j axes[1] + k axes[2]` (mm).
/// Two files whose grids agree hold the same anatomy voxel for voxel, whatever
/// order they store it in; an image and its label must.
public struct Grid: Equatable, Sendable {
    public var dims: [Int]
    public var spacing: [Double]
    /// The world step (mm) of one voxel along each canonical axis.
    public var axes: [[Double]]
    public var origin: [Double]
    /// The file's orientation letters (`RAS`, `LPS`), to say what a mismatch most likely is.
    public var code: String

    /// Tolerances of `mismatch`: origins within this share of the smallest voxel size,
    /// directions within this cosine, spacings within this relative difference.
    public static let originTolerance = 0.1
    public static let directionTolerance = 1e-3
    public static let spacingTolerance = 1e-3

    public init(dims: [Int], spacing: [Double], orientation o: Orientation) {
        self.dims = dims
        self.spacing = spacing
        code = o.code
        let a = o.affine
        var axes: [[Double]] = [], origin = (0..<3).map { a[$0][3] }
        for canonical in 0..<3 {
            let file = o.fileAxis[canonical]
            let column = (0..<3).map { a[$0][file] * (o.flipped[canonical] ? -1 : 1) }
            axes.append(column)
            // A flipped axis starts at the file's far end.
            if o.flipped[canonical] { for r in 0..<3 { origin[r] += a[r][file] * Double(dims[canonical] - 1) } }
        }
        self.axes = axes
        self.origin = origin
    }

    /// What differs between this grid (an image's) and `other` (its label's), beyond the
    /// tolerances; nil when they agree.
    public func mismatch(_ other: Grid) -> String? {
        guard let found = difference(other) else { return nil }
        // Stored in other axis orders and yet not one grid: most likely a header written wrongly.
        if code != other.code, dims == other.dims {
            return "its header orients it \(other.code) where the image's says \(code), and the two do not describe one grid (\(found)): "
                + "in world space its voxels would be mirrored or moved against the image's"
        }
        return found
    }

    func difference(_ other: Grid) -> String? {
        func fmt(_ v: [Double]) -> String { "(" + v.map { String(format: "%.1f", $0) }.joined(separator: ", ") + ")" }
        if dims != other.dims { return "dimensions \(other.dims) against \(dims)" }
        for a in 0..<3 where abs(spacing[a] - other.spacing[a]) > Self.spacingTolerance * max(1, spacing[a]) {
            return "spacing \(other.spacing.map { String(format: "%.3g", $0) }) mm against \(spacing.map { String(format: "%.3g", $0) }) mm"
        }
        let letters = [("L", "R"), ("P", "A"), ("I", "S")]
        for a in 0..<3 {
            let u = Self.unit(axes[a]), v = Self.unit(other.axes[a])
            let cosine = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
            if cosine < 1 - Self.directionTolerance {
                let way = cosine < 0 ? "the other way (\(letters[a].1) to \(letters[a].0))" : "in another direction"
                return "its voxel axis \(a) runs \(way) where the image's runs \(letters[a].0) to \(letters[a].1): the header's orientation disagrees with the image's (a left-right flip if a is 0)"
            }
        }
        let shift = (0..<3).map { other.origin[$0] - origin[$0] }
        let distance = shift.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if distance > Self.originTolerance * (spacing.min() ?? 1) {
            return String(format: "it is shifted by %.1f mm %@ (origin %@ against %@)", distance, fmt(shift), fmt(other.origin), fmt(origin))
        }
        return nil
    }

    static func unit(_ v: [Double]) -> [Double] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return n > 0 ? v.map { $0 / n } : v
    }
}

extension Volume {
    public var grid: Grid { Grid(dims: dims, spacing: spacing, orientation: orientation) }
}
