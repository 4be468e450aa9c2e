import StageConfig

/// Settings the data tests start from, every value explicit (the spec schema's
/// defaults are not visible at this layer, and a test says what it uses).
enum TestSettings {
    static func phantom(cases: Int = 8, seed: Int = 0, size: Int, slices: Int, modalities: [String] = ["CT"]) -> PhantomSettings {
        PhantomSettings(cases: cases, seed: seed, size: size, slices: slices, noise: 20, hardCases: 0.25, modalities: modalities)
    }

    static func preprocessing(height: Int, width: Int, window: IntensityWindow = .hounsfield(low: -160, high: 240),
                              modalities: [String]? = nil, normalize: [Normalization] = [.window],
                              channels: Int = 1, keepEmpty: Double = 1) -> Preprocessing {
        Preprocessing(sliceAxis: .axial, window: window, modalities: modalities, normalize: normalize, height: height, width: width,
                      channels: channels, keepEmpty: keepEmpty)
    }

    static func split(unit: SplitUnit = .patient, test: Double, val: Double, seed: Int, folds: Int? = nil, fold: Int? = nil, patient: String? = nil) -> SplitSettings {
        SplitSettings(unit: unit, test: test, val: val, seed: seed, folds: folds, fold: fold, patient: patient)
    }

    static func level(_ fraction: Double, stratify: Bool = false) -> SubsetLevel {
        SubsetLevel(fraction: fraction, part: .train, stratify: stratify)
    }
}
