// Regions of volumes: index arithmetic over the trailing three (spatial) axes
// of [..., D, H, W] tensors, for the patches of 3D training (Medical's
// PatchSampler) and the windows of sliding-window inference (NN).

public enum VolumeRegion {
    /// Calls body(offset in the window, offset in the volume, run length) for every
    /// W-run of the part of a window of `window` voxels, placed at `origin` (possibly
    /// reaching outside), that lies inside a volume of `volume` voxels.
    public static func forEachRow(of window: [Int], in volume: [Int], at origin: [Int], _ body: (Int, Int, Int) -> Void) {
        let lo = (0..<3).map { max(0, -origin[$0]) }, hi = (0..<3).map { min(window[$0], volume[$0] - origin[$0]) }
        guard (0..<3).allSatisfy({ lo[$0] < hi[$0] }) else { return }
        for a in lo[0]..<hi[0] {
            for b in lo[1]..<hi[1] {
                body((a * window[1] + b) * window[2] + lo[2], ((origin[0] + a) * volume[1] + origin[1] + b) * volume[2] + origin[2] + lo[2],
                     hi[2] - lo[2])
            }
        }
    }

    /// The region of `x` of `size` voxels at `origin`, for every leading index, zero where
    /// it reaches outside x: a crop, or (with a negative origin and a larger size) a zero padding.
    public static func crop(_ x: Tensor, origin: [Int], size: [Int]) -> Tensor {
        let spatial = Array(x.shape.suffix(3)), lead = Array(x.shape.dropLast(3))
        let (inCount, outCount) = (spatial.reduce(1, *), size.reduce(1, *))
        let y = Tensor(zeros: lead + size)
        for p in 0..<lead.reduce(1, *) {
            forEachRow(of: size, in: spatial, at: origin) { w, v, n in
                (y.pointer + p * outCount + w).update(from: x.pointer + p * inCount + v, count: n)
            }
        }
        return y
    }
}
