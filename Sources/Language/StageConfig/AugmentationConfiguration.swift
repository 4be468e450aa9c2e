/// Data augmentation of training batches (the spec's `data.augment`): each transform
/// optional, each with the probability that it is applied to an image. Part of every
/// training stage's identity; validation, test and teacher caches never see it.
public struct AugmentationSettings: ConfigCodable {
    /// A transform drawn with probability `p` and one parameter range.
    public struct Ranged: Hashable, Sendable {
        public var p: Double
        public var low: Double, high: Double
        public init(p: Double, low: Double, high: Double) { (self.p, self.low, self.high) = (p, low, high) }
    }

    public struct Flip: Hashable, Sendable {
        public var p: Double
        public var horizontal: Bool, vertical: Bool
        /// Along the depth of a 3D patch (the slice axis).
        public var depth: Bool
        public init(p: Double, horizontal: Bool, vertical: Bool, depth: Bool = false) {
            (self.p, self.horizontal, self.vertical, self.depth) = (p, horizontal, vertical, depth)
        }
    }

    public struct Elastic: Hashable, Sendable {
        public var p: Double
        /// Standard deviation of the displacement at the control points, in pixels.
        public var alpha: Double
        /// Spacing of the control points, in pixels: the deformation's smoothness.
        public var sigma: Double
        public init(p: Double, alpha: Double, sigma: Double) { (self.p, self.alpha, self.sigma) = (p, alpha, sigma) }
    }

    /// Mirror along each chosen axis, each with probability p.
    public var flip: Flip?
    /// A quarter turn k = 1, 2 or 3 (square slices only).
    public var rotate90: Double?
    /// A rotation by an angle uniform in [-degrees, +degrees]: `low` = -degrees, `high` = +degrees.
    public var rotate: Ranged?
    /// Zoom by a factor uniform in [low, high] (above 1 enlarges).
    public var scale: Ranged?
    public var elastic: Elastic?
    /// Multiply intensities by a factor uniform in [low, high].
    public var brightness: Ranged?
    /// Scale intensities about their mean by a factor uniform in [low, high].
    public var contrast: Ranged?
    /// x -> x^gamma on the image's own [min, max], gamma uniform in [low, high].
    public var gamma: Ranged?
    /// Near-Gaussian noise (the sum of four uniforms) with a standard deviation uniform in [low, high] (normalised units).
    public var noise: Ranged?
    /// Gaussian blur with sigma uniform in [low, high] pixels.
    public var blur: Ranged?

    public init(flip: Flip? = nil, rotate90: Double? = nil, rotate: Ranged? = nil, scale: Ranged? = nil, elastic: Elastic? = nil,
                brightness: Ranged? = nil, contrast: Ranged? = nil, gamma: Ranged? = nil, noise: Ranged? = nil, blur: Ranged? = nil) {
        (self.flip, self.rotate90, self.rotate, self.scale, self.elastic) = (flip, rotate90, rotate, scale, elastic)
        (self.brightness, self.contrast, self.gamma, self.noise, self.blur) = (brightness, contrast, gamma, noise, blur)
    }

    /// Whether any transform moves pixels (so labels move too).
    public var isSpatial: Bool { flip != nil || rotate90 != nil || rotate != nil || scale != nil || elastic != nil }

    /// The transforms with a range (and their settings' properties): reading, writing and the schema list them once.
    public static var rangedTransforms: [(key: String, property: WritableKeyPath<AugmentationSettings, Ranged?>)] {
        [("rotate", \.rotate), ("scale", \.scale), ("brightness", \.brightness), ("contrast", \.contrast), ("gamma", \.gamma), ("noise", \.noise), ("blur", \.blur)]
    }
    static var rangedKeys: [String] { rangedTransforms.map(\.key) }

    var ranged: [String: Ranged?] {
        Dictionary(uniqueKeysWithValues: Self.rangedTransforms.map { ($0.key, self[keyPath: $0.property]) })
    }

    public var json: JSON {
        var o: [String: JSON] = [:]
        o["flip"] = flip.map { f in .object(["p": .number(f.p), "axes": .array((f.horizontal ? ["horizontal"] : []).map(JSON.string) + (f.vertical ? ["vertical"] : []).map(JSON.string) + (f.depth ? ["depth"] : []).map(JSON.string))]) } ?? .null
        o["rotate90"] = rotate90.map { .object(["p": .number($0)]) } ?? .null
        o["elastic"] = elastic.map { .object(["p": .number($0.p), "alpha": .number($0.alpha), "sigma": .number($0.sigma)]) } ?? .null
        for (key, r) in ranged {
            o[key] = r.map { r in
                key == "rotate" ? .object(["p": .number(r.p), "degrees": .number(r.high)])
                    : .object(["p": .number(r.p), "range": .array([.number(r.low), .number(r.high)])])
            } ?? .null
        }
        return .object(o)
    }

    public init(json: JSON, at path: String) throws {
        self = try ConfigReader.read(json, at: path, declaration: Self.declaration) { r in
            func chance(_ r: inout ConfigReader) throws -> Double { try r.double("p") }
            var s = AugmentationSettings()
            s.flip = try r.optional("flip") { r, k in
                try ConfigReader.read(try r.value(k), at: r.child(k)) { f in
                    let p = try chance(&f)
                    let axes = try f.list("axes") { j, jp in try ConfigValue.string(j, at: jp) }
                    return Flip(p: p, horizontal: axes.contains("horizontal"), vertical: axes.contains("vertical"), depth: axes.contains("depth"))
                }
            }
            s.rotate90 = try r.optional("rotate90") { r, k in try ConfigReader.read(try r.value(k), at: r.child(k)) { try chance(&$0) } }
            s.elastic = try r.optional("elastic") { r, k in
                try ConfigReader.read(try r.value(k), at: r.child(k)) { e in
                    Elastic(p: try chance(&e), alpha: try e.double("alpha"), sigma: try e.double("sigma"))
                }
            }
            for (key, property) in Self.rangedTransforms {
                let value: Ranged? = try r.optional(key) { r, k in
                    try ConfigReader.read(try r.value(k), at: r.child(k)) { e in
                        let p = try chance(&e)
                        if key == "rotate" {
                            let d = try e.double("degrees")
                            return Ranged(p: p, low: -d, high: d)
                        }
                        let range = try e.list("range") { j, jp in try ConfigValue.double(j, at: jp) }
                        guard range.count == 2, range[0] <= range[1], !["scale", "gamma"].contains(key) || range[0] > 0 else {
                            throw ConfigError(field: e.child("range"), problem: .inconsistent("[low, high] with low <= high\(["scale", "gamma"].contains(key) ? " and low > 0" : "")"),
                                              value: .array(range.map(JSON.number)))
                        }
                        return Ranged(p: p, low: range[0], high: range[1])
                    }
                }
                s[keyPath: property] = value
            }
            return s
        }
    }
}
