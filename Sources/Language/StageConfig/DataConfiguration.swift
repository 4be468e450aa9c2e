/// How a dataset becomes training slices: where the volumes come from, how they
/// are cut and windowed, how cases are split, and which share a stage trains on.

/// Where the volumes come from: exactly one of an MSD folder or the built-in phantom.
public enum DataSource: ConfigCodable {
    /// An MSD (or nnU-Net) folder. `analyzeOrientation` opts in to ANALYZE 7.5 files,
    /// which record no orientation, by stating it; without it they are refused.
    case msd(path: String, analyzeOrientation: AxisOrientation?)
    case phantom(PhantomSettings)

    public var json: JSON {
        switch self {
        case .msd(let path, let o): return .object(["msd": .string(path), "phantom": .null, "analyze_orientation": o?.json ?? .null])
        case .phantom(let p): return .object(["msd": .null, "phantom": p.json, "analyze_orientation": .null])
        }
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let msd = try r.optional("msd") { r, k in try r.string(k) }
            let phantom = try r.optional("phantom") { r, k in try r.decode(k, as: PhantomSettings.self) }
            let orientation = try r.optional("analyze_orientation") { r, k in try r.decode(k, as: AxisOrientation.self) }
            switch (msd, phantom) {
            case (let folder?, nil): return .msd(path: folder, analyzeOrientation: orientation)
            case (nil, let p?) where orientation == nil: return .phantom(p)
            default: throw ConfigError(field: path, problem: .inconsistent("exactly one of 'msd' and 'phantom' is set, and 'analyze_orientation' only with 'msd'"), value: json)
            }
        }
    }
}

/// The direction each voxel axis of a file runs toward, as three letters: `LAS` says
/// i runs toward the patient's left, j anterior, k superior (nibabel's axis codes).
/// NIfTI files carry this in their qform/sform; ANALYZE 7.5 files do not.
public struct AxisOrientation: ConfigCodable {
    public let letters: String

    /// All 48 orientations: each of R/L, A/P, S/I once, in any order.
    public static let all: [String] = {
        let pairs = [["R", "L"], ["A", "P"], ["S", "I"]]
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        return orders.flatMap { order in
            (0..<8).map { signs in order.enumerated().map { i, axis in pairs[axis][(signs >> i) & 1] }.joined() }
        }
    }()

    public init?(_ letters: String) {
        guard Self.all.contains(letters) else { return nil }
        self.letters = letters
    }

    public var json: JSON { .string(letters) }

    public init(json: JSON, at path: String) throws {
        let s = try ConfigValue.string(json, at: path)
        guard let o = AxisOrientation(s) else {
            throw ConfigError(field: path, problem: .unknownValue(expected: ["three letters, one of R/L, A/P, S/I each (e.g. LAS)"]), value: json)
        }
        self = o
    }
}

/// The built-in synthetic abdominal CT generator (`data.source.phantom`).
public struct PhantomSettings: ConfigCodable {
    /// What the generator accepts: the spec language's schema, this reader and
    /// `distill data phantom` all read these (they once said three different things).
    public static let casesRange = 4...10_000
    public static let sizeRange = 32...1024
    public static let slicesRange = 4...1024

    public var cases: Int
    public var seed: Int
    public var size: Int
    public var slices: Int
    public var noise: Double
    public var hardCases: Double
    /// Names of the modalities written: the first is the CT, each further one an MR-like
    /// contrast of the same anatomy (a 4D image when there are several).
    public var modalities: [String]

    public init(cases: Int, seed: Int, size: Int, slices: Int, noise: Double, hardCases: Double, modalities: [String]) {
        (self.cases, self.seed, self.size, self.slices, self.noise, self.hardCases) = (cases, seed, size, slices, noise, hardCases)
        self.modalities = modalities
    }

    public var json: JSON {
        .object(["cases": .int(cases), "seed": .int(seed), "size": .int(size), "slices": .int(slices),
                 "noise": .number(noise), "hard_cases": .number(hardCases), "modalities": .array(modalities.map(JSON.string))])
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            let modalities = try r.list("modalities") { j, p in try ConfigValue.string(j, at: p) }
            guard Set(modalities).count == modalities.count else {
                throw ConfigError(field: r.child("modalities"), problem: .inconsistent("a modality is named twice"), value: .array(modalities.map(JSON.string)))
            }
            return PhantomSettings(cases: try r.int("cases"), seed: try r.int("seed"),
                                   size: try r.int("size"),
                                   slices: try r.int("slices"), noise: try r.double("noise"),
                                   hardCases: try r.double("hard_cases"), modalities: modalities)
        }
    }
}

/// The axis slices are taken along, after reorientation to canonical RAS order.
public enum SliceAxis: String, ConfigChoice {
    case axial, coronal, sagittal
}

/// How intensities become network inputs.
public enum IntensityWindow: ConfigCodable {
    /// A HU window `[low, high]` scaled to [0, 1].
    case hounsfield(low: Double, high: Double)
    /// The study's implicit clip to [0, 255] then division by 255 (8-bit PNGs).
    case clip255

    public var json: JSON {
        switch self {
        case .hounsfield(let lo, let hi): return .array([.number(lo), .number(hi)])
        case .clip255: return .string("clip255")
        }
    }

    public init(json: JSON, at path: String) throws {
        switch json {
        case .string("clip255"): self = .clip255
        case .array(let items) where items.count == 2:
            let lo = try ConfigValue.double(items[0], at: path + "[0]"), hi = try ConfigValue.double(items[1], at: path + "[1]")
            guard lo < hi else { throw ConfigError(field: path, problem: .inconsistent("the low end must be below the high end"), value: json) }
            self = .hounsfield(low: lo, high: hi)
        default:
            throw ConfigError(field: path, problem: .wrongType(expected: "[low, high] or 'clip255'"), value: json)
        }
    }
}

/// Which voxels a per-volume z-score takes its mean and standard deviation from.
public enum ZScoreMask: String, ConfigChoice {
    /// Every voxel.
    case all
    /// Voxels that are not 0 (MRI's background, skull-stripped brains); the others stay 0 (nnU-Net's `use_mask_for_norm`).
    case nonzero
}

/// How one input channel's intensities become network inputs.
public enum Normalization: ConfigCodable {
    /// Percentiles are in [0, 100].
    public static let percentileRange = 0.0...100.0

    public enum Kind: String, CaseIterable, Sendable { case window, zscore, percentile }

    /// The preprocessing's `window` (a HU window scaled to [0, 1], or `clip255`): CT as the study did.
    case window
    /// (x - mean) / sd of each volume, over the voxels of `mask` (MRI).
    case zscore(mask: ZScoreMask)
    /// Clip to the `low` and `high` percentiles of the training cases' foreground voxels, then
    /// z-score with those voxels' mean and sd (nnU-Net's CT normalisation); statistics from the
    /// cases outside the test split.
    case percentile(low: Double, high: Double)

    public var json: JSON {
        switch self {
        case .window: return .object(["kind": .string("window")])
        case .zscore(let m): return .object(["kind": .string("zscore"), "mask": m.json])
        case .percentile(let lo, let hi): return .object(["kind": .string("percentile"), "low": .number(lo), "high": .number(hi)])
        }
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path) { r in
            switch try r.kind(as: Kind.self) {
            case .window: return .window
            case .zscore: return .zscore(mask: try r.choice("mask"))
            case .percentile:
                let range = Self.percentileRange
                let lo = try r.double("low", min: range.lowerBound, max: range.upperBound), hi = try r.double("high", min: range.lowerBound, max: range.upperBound)
                guard lo < hi else { throw ConfigError(field: path, problem: .inconsistent("the low percentile must be below the high one"), value: json) }
                return .percentile(low: lo, high: hi)
            }
        }
    }

    /// Whether it needs statistics of the training cases (computed when the data is prepared).
    public var usesDatasetStatistics: Bool {
        if case .percentile = self { return true }
        return false
    }
}

/// The spec's `data.preprocess`: slicing, modalities, normalisation, size and channels.
public struct Preprocessing: ConfigCodable {
    public var sliceAxis: SliceAxis
    public var window: IntensityWindow
    /// Modality names (dataset.json's `modality`) in input-channel order; nil: the dataset's only one.
    public var modalities: [String]?
    /// One normalisation per modality (one entry for a single-modality dataset).
    public var normalize: [Normalization]
    public var height: Int
    public var width: Int
    /// The model's input channels: the number of modalities, or 3 for one modality
    /// replicated (as the study's RGB PNGs).
    public var channels: Int
    /// Share of slices without foreground that are kept.
    public var keepEmpty: Double
    /// nil: volumes become slices (`height` x `width`); otherwise they are resampled
    /// whole and 3D networks train on patches of them.
    public var volume: VolumeSampling?

    public init(sliceAxis: SliceAxis, window: IntensityWindow, modalities: [String]?, normalize: [Normalization],
                height: Int, width: Int, channels: Int, keepEmpty: Double, volume: VolumeSampling? = nil) {
        (self.sliceAxis, self.window, self.modalities, self.normalize) = (sliceAxis, window, modalities, normalize)
        (self.height, self.width, self.channels, self.keepEmpty, self.volume) = (height, width, channels, keepEmpty, volume)
    }

    /// 2 when networks see slices, 3 when they see patches of volumes.
    public var spatialDimensions: Int { volume == nil ? 2 : 3 }

    /// What a network's input measures per spatial axis: [height, width] of a slice, or
    /// [depth, height, width] of a patch.
    public var inputExtent: [Int] { volume?.patch ?? [height, width] }

    /// Planes stored per slice: one per modality.
    public var planes: Int { modalities?.count ?? 1 }

    /// What is wrong with the combination of modalities, normalisations and channels, if anything.
    public var problem: String? {
        if let m = modalities, Set(m).count != m.count { return "a modality is listed twice in \(m)" }
        if normalize.count != planes {
            return "\(normalize.count) normalisation\(normalize.count == 1 ? "" : "s") for \(planes) modalit\(planes == 1 ? "y" : "ies")"
        }
        if channels != planes && !(planes == 1 && channels == 3) {
            return planes == 1 ? "channels must be 1, or 3 (the grey value replicated), found \(channels)"
                : "\(planes) modalities give \(planes) input channels, but channels is \(channels)"
        }
        return nil
    }

    public var json: JSON {
        var o: [String: JSON] = ["slice_axis": sliceAxis.json, "window": window.json, "size": .array([.int(height), .int(width)]),
                                 "modalities": modalities.map { .array($0.map(JSON.string)) } ?? .null, "normalize": .array(normalize.map(\.json)),
                                 "channels": .int(channels), "keep_empty": .number(keepEmpty)]
        // Written only for volumes: the canonical form of slice data, and so its hashes, stay as they were.
        if let volume {
            o["patch"] = .array(volume.patch.map(JSON.int))
            o["spacing"] = volume.spacing.json
        }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            // The spec may write one side for a square; the canonical form is [height, width].
            let sizePath = r.child("size")
            let size = try r.value("size")
            let (h, w): (Int, Int)
            if case .array(let items) = size {
                guard items.count == 2 else { throw ConfigError(field: sizePath, problem: .wrongType(expected: "[height, width]"), value: size) }
                (h, w) = (try ConfigValue.int(items[0], at: sizePath + "[0]"), try ConfigValue.int(items[1], at: sizePath + "[1]"))
            } else {
                h = try ConfigValue.int(size, at: sizePath)
                w = h
            }
            let p = Preprocessing(sliceAxis: try r.choice("slice_axis"), window: try r.decode("window"),
                                  modalities: try r.optional("modalities") { r, k in try r.list(k) { j, p in try ConfigValue.string(j, at: p) } },
                                  normalize: try r.list("normalize") { j, p in try Normalization(json: j, at: p) },
                                  height: h, width: w, channels: try r.int("channels"), keepEmpty: try r.double("keep_empty"),
                                  volume: try r.ifPresent("patch") { r, k in
                                      let patch = try r.list(k) { j, p in try ConfigValue.int(j, at: p) }
                                      let spacing = try r.ifPresent("spacing") { r, k in try TargetSpacing(json: try r.value(k), at: r.child(k)) } ?? .median
                                      return VolumeSampling(patch: patch, spacing: spacing)
                                  })
            if p.volume == nil, try r.ifPresent("spacing", { r, k in try r.value(k) }) != nil {
                throw ConfigError(field: r.child("spacing"), problem: .inconsistent("'spacing' applies to volumes cut into patches ('patch')"), value: json)
            }
            if let problem = p.problem { throw ConfigError(field: path, problem: .inconsistent(problem), value: json) }
            return p
        }
    }
}

/// How volumes become the input of 3D networks: resampled whole to a spacing, then
/// cut into patches of `patch` voxels [depth, height, width] (depth along `slice_axis`).
public struct VolumeSampling: Hashable, Sendable {
    public static let patchRange = 4...1024

    public var patch: [Int]
    public var spacing: TargetSpacing

    public init(patch: [Int], spacing: TargetSpacing) {
        (self.patch, self.spacing) = (patch, spacing)
    }
}

/// The voxel spacing volumes are resampled to, in mm per axis [depth, height, width].
public enum TargetSpacing: Hashable, Sendable, ConfigCodable {
    /// The training cases' median spacing per axis (nnU-Net's default).
    case median
    case millimetres([Double])

    public var json: JSON {
        switch self {
        case .median: return .string("median")
        case .millimetres(let mm): return .array(mm.map(JSON.number))
        }
    }

    public init(json: JSON, at path: String) throws {
        if case .string("median") = json { self = .median; return }
        let mm = try ConfigValue.list(json, at: path, minCount: 3) { j, p in try ConfigValue.double(j, at: p, min: 0, exclusiveMin: true) }
        guard mm.count == 3 else { throw ConfigError(field: path, problem: .wrongType(expected: "'median' or [depth, height, width] in mm"), value: json) }
        self = .millimetres(mm)
    }
}

/// What is split: patients (no leak) or slices (the study's leak).
public enum SplitUnit: String, ConfigChoice {
    case patient, slice
}

/// The spec's `data.split`: train, validation and test parts.
public struct SplitSettings: ConfigCodable {
    /// k of k-fold cross-validation.
    public static let foldsRange = 2...100

    public var unit: SplitUnit
    public var test: Double
    public var val: Double
    public var seed: Int
    /// k-fold cross-validation: the test part is fold `fold` of `folds`.
    public var folds: Int?
    public var fold: Int?
    /// A regular expression over case ids whose first group (or whole match) names the
    /// patient: one patient's scans form one unit of a split by patient. nil: a case is a patient.
    public var patient: String?

    public init(unit: SplitUnit, test: Double, val: Double, seed: Int, folds: Int?, fold: Int?, patient: String? = nil) {
        (self.unit, self.test, self.val, self.seed, self.folds, self.fold, self.patient) = (unit, test, val, seed, folds, fold, patient)
    }

    public var json: JSON {
        var o: [String: JSON] = ["unit": unit.json, "test": .number(test), "val": .number(val), "seed": .int(seed),
                                 "folds": folds.map(JSON.int) ?? .null, "fold": fold.map(JSON.int) ?? .null]
        // Written only when set: splits without a patient key keep their hashes.
        if let patient { o["patient"] = .string(patient) }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            SplitSettings(unit: try r.choice("unit"), test: try r.double("test"), val: try r.double("val"),
                          seed: try r.int("seed"),
                          folds: try r.optional("folds") { r, k in try r.int(k) },
                          fold: try r.optional("fold") { r, k in try r.int(k) },
                          patient: try r.ifPresent("patient") { r, k in try r.string(k) })
        }
    }
}

/// A part of the split a subset is drawn from.
public enum SplitPart: String, ConfigChoice {
    case train, trainval, val, test
}

/// One level of a subset chain, root first: a share of its parent (or of a split part).
public struct SubsetLevel: ConfigCodable {
    public var fraction: Double
    public var part: SplitPart
    public var stratify: Bool

    public init(fraction: Double, part: SplitPart, stratify: Bool) {
        (self.fraction, self.part, self.stratify) = (fraction, part, stratify)
    }

    public var json: JSON { .object(["fraction": .number(fraction), "part": part.json, "stratify": .bool(stratify)]) }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            SubsetLevel(fraction: try r.double("fraction"), part: try r.choice("part"), stratify: try r.bool("stratify"))
        }
    }
}

/// A subset chain (what a stage trains on), root first.
public struct SubsetChain: ConfigCodable {
    public var levels: [SubsetLevel]

    public init(_ levels: [SubsetLevel]) { self.levels = levels }

    public var json: JSON { .array(levels.map(\.json)) }

    public init(json: JSON, at path: String) throws {
        levels = try ConfigValue.list(json, at: path, minCount: 1) { j, p in try SubsetLevel(json: j, at: p) }
    }
}

/// One segmentation class: its name and the label values that form it (several
/// values may form one class, as the regions of a tumour do).
public struct SegmentationClass: Hashable, Sendable {
    public var name: String
    public var values: [Int]

    public init(name: String, values: [Int]) { (self.name, self.values) = (name, values) }
}

/// What a label map means: the foreground classes in order, class `k` (1-based) being
/// channel `k` of a softmax head, background 0. The spec's `data.foreground` is either
/// a list of values merged into one class (`[1]`, binary segmentation as the study did)
/// or a mapping that names classes (`{liver: 1, tumour: 2}`). Label values named by
/// no class are background.
public enum LabelClasses: ConfigCodable {
    /// One class, the listed values merged: a 1-channel sigmoid head or a 2-channel softmax head.
    case merged([Int])
    /// Named classes, in the spec's order.
    case named([SegmentationClass])

    /// The foreground classes, in channel order.
    public var classes: [SegmentationClass] {
        switch self {
        case .merged(let values): return [SegmentationClass(name: "foreground", values: values)]
        case .named(let classes): return classes
        }
    }

    public var count: Int { classes.count }

    /// Class index (0 = background) of each label value that belongs to a class.
    public var indexOfValue: [Int: UInt8] {
        var out: [Int: UInt8] = [:]
        for (k, c) in classes.enumerated() { for v in c.values { out[v] = UInt8(k + 1) } }
        return out
    }

    /// The label value a predicted class is written as: the class's first value.
    public func labelValue(ofClass k: Int) -> Int { k == 0 ? 0 : classes[k - 1].values[0] }

    /// The largest label value a class or the background may name (a 16-bit label map's).
    public static let largestValue = 65_535

    /// Head widths a segmentation head over these classes may have: 1 (sigmoid) when
    /// there is one class, and always one channel per class plus background (softmax).
    public var headChannels: [Int] { count == 1 ? [1, 2] : [count + 1] }

    /// A problem with the classes themselves: a value in two classes, or a class twice.
    public var problem: String? {
        var owner: [Int: String] = [:]
        var names = Set<String>()
        for c in classes {
            if !names.insert(c.name).inserted { return "class '\(c.name)' is named twice" }
            if c.values.isEmpty { return "class '\(c.name)' has no label values" }
            for v in c.values {
                if let other = owner[v] { return "label value \(v) is in both '\(other)' and '\(c.name)'" }
                guard v >= 1, v <= Self.largestValue else { return "label value \(v) of class '\(c.name)' is outside 1...\(Self.largestValue)" }
                owner[v] = c.name
            }
        }
        if count > 254 { return "\(count) classes is more than a label byte holds" }
        return nil
    }

    public var json: JSON {
        switch self {
        case .merged(let values): return .array(values.map(JSON.int))
        case .named(let classes):
            return .array(classes.map { .object(["name": .string($0.name), "values": .array($0.values.map(JSON.int))]) })
        }
    }

    /// Reads the encoding: a list of values, or a list of `{name, values}` objects.
    public init(json: JSON, at path: String) throws {
        guard case .array(let items) = json, let first = items.first else {
            throw ConfigError(field: path, problem: .wrongType(expected: "a non-empty list of label values or of {name, values}"), value: json)
        }
        if case .object = first {
            self = .named(try ConfigValue.list(json, at: path, minCount: 1) { j, p in
                try ConfigReader.read(j, at: p) { r in
                    SegmentationClass(name: try r.string("name"), values: try r.list("values", minCount: 1) { v, vp in try ConfigValue.int(v, at: vp, min: 1, max: Self.largestValue) })
                }
            })
        } else {
            self = .merged(try ConfigValue.list(json, at: path, minCount: 1) { j, p in try ConfigValue.int(j, at: p, min: 1, max: Self.largestValue) })
        }
        if let problem { throw ConfigError(field: path, problem: .inconsistent(problem), value: json) }
    }
}
