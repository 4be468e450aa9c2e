import Foundation

/// Where sliding windows go over a volume, as nnU-Net places them: the one geometry the
/// runtime's sliding window predicts with (NN's `SlidingWindow`) and the plan counts windows with.
public enum WindowPlacement {
    /// Windows overlap by at least half a patch (nnU-Net's step 0.5).
    public static let step = 0.5

    /// Window starts along one axis of `size` voxels (size >= patch): n = ceil((size - patch) /
    /// (patch * step)) + 1 windows spread evenly from the first voxel to the last.
    public static func positions(size: Int, patch: Int, step: Double = step) -> [Int] {
        let count = Int((Double(size - patch) / (Double(patch) * step)).rounded(.up)) + 1
        guard count > 1 else { return [0] }
        let actual = Double(size - patch) / Double(count - 1)
        return (0..<count).map { Int((actual * Double($0)).rounded(.toNearestOrEven)) }
    }
}
