import Foundation

/// What the data layer measures of a dataset once and the planner reads, as nnU-Net's
/// dataset fingerprint: every case's spacing and size, the box its images fill, the
/// foreground's intensities per modality and how many voxels each label value has.
/// Axes are in network order [depth, height, width], depth along the slice axis.
///
/// The planner computes 3D recipes (`auto`) from this value alone, so planning never
/// reads an image; the store keeps one per dataset and reading (`distill data inspect`).
public struct DatasetFingerprint: Codable, Hashable, Sendable {
    /// Bumped when what is measured, or how, changes: a kept fingerprint of another version is measured again.
    public static let version = 1

    public struct Case: Codable, Hashable, Sendable {
        public var id: String
        /// mm per voxel.
        public var spacing: [Double]
        /// Voxels.
        public var shape: [Int]
        /// The bounding box of the voxels that are not zero in some modality: what nnU-Net
        /// crops a case to before it measures shapes (a skull-stripped MRI is smaller than its grid).
        public var cropped: [Int]

        public init(id: String, spacing: [Double], shape: [Int], cropped: [Int]) {
            (self.id, self.spacing, self.shape, self.cropped) = (id, spacing, shape, cropped)
        }
    }

    /// One modality's intensities inside the foreground (every label value but 0).
    public struct Intensities: Codable, Hashable, Sendable {
        public var modality: String
        /// Foreground voxels measured (at most `Self.sampleLimit` over the dataset, evenly spaced in each case).
        public var voxels: Int
        public var mean: Double, sd: Double
        public var min: Double, max: Double
        /// The 0.5th, 50th and 99.5th percentiles (linear interpolation, numpy's default).
        public var p00_5: Double, median: Double, p99_5: Double

        public init(modality: String, voxels: Int, mean: Double, sd: Double, min: Double, max: Double, p00_5: Double, median: Double, p99_5: Double) {
            (self.modality, self.voxels, self.mean, self.sd, self.min, self.max) = (modality, voxels, mean, sd, min, max)
            (self.p00_5, self.median, self.p99_5) = (p00_5, median, p99_5)
        }
    }

    /// nnU-Net samples at most 10^8 foreground voxels over a dataset for its statistics.
    public static let sampleLimit = 100_000_000

    public var version: Int
    /// The data it was measured on, and how read: a store keeps it under this.
    public var identity: String
    public var axis: SliceAxis
    public var modalities: [String]
    public var cases: [Case]
    public var intensities: [Intensities]
    /// Voxels of each label value over every case, by value.
    public var labelVoxels: [String: Int]

    public init(identity: String, axis: SliceAxis, modalities: [String], cases: [Case], intensities: [Intensities], labelVoxels: [String: Int]) {
        version = Self.version
        (self.identity, self.axis, self.modalities, self.cases, self.intensities, self.labelVoxels) = (identity, axis, modalities, cases, intensities, labelVoxels)
    }

    /// The canonical JSON the store keeps (sorted keys).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> DatasetFingerprint {
        try JSONDecoder().decode(DatasetFingerprint.self, from: data)
    }

    /// The per-axis median of `values` (numpy's: the mean of the middle two of an even count).
    public static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// numpy's `percentile` with linear interpolation, of values sorted ascending.
    public static func percentile(sorted s: [Double], _ q: Double) -> Double {
        guard !s.isEmpty else { return .nan }
        let pos = q / 100 * Double(s.count - 1)
        let i = Int(pos.rounded(.down)), j = Swift.min(i + 1, s.count - 1)
        return s[i] + (pos - Double(i)) * (s[j] - s[i])
    }

    public var medianSpacing: [Double] { (0..<3).map { a in Self.median(cases.map { $0.spacing[a] }) } }
    public var medianCroppedShape: [Double] { (0..<3).map { a in Self.median(cases.map { Double($0.cropped[a]) }) } }
}

extension SliceAxis: Codable {}
