/// Every seed the program derives from another, in one place: each named stream is a fixed
/// function of the seed it starts from and its indices, so that two streams never meet by
/// accident and a reader sees all of them together. A formula here is part of every result
/// made with it (the golden tests hold them): a new stream gets a new name, never an old
/// stream a new formula.
public enum Seeds {
    /// 2^64 / golden ratio, splitmix64's increment: spreads consecutive indices far apart.
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    // MARK: a training stage's seed

    /// The adapters' initial weights.
    public static func adapters(_ seed: UInt64) -> UInt64 { seed &+ 0xADA }

    /// The order of an epoch's samples.
    public static func epochOrder(_ seed: UInt64, epoch: Int) -> UInt64 { seed &+ UInt64(epoch) &* 7919 }

    /// What batch `b` of an epoch draws while it is sampled (its 3D patches).
    public static func batchSampling(_ seed: UInt64, epoch: Int, batch b: Int) -> UInt64 {
        seed &+ 0xB47C &+ UInt64(epoch) &* 1_000_003 &+ UInt64(b)
    }

    /// The augmentation of batch `b` of an epoch.
    public static func batchAugmentation(_ seed: UInt64, epoch: Int, batch b: Int) -> UInt64 {
        seed &+ 0xA06 &+ UInt64(epoch) &* 1_000_003 &+ UInt64(b)
    }

    /// A step's own draws (the objective's sampling), `done` samples into epoch `epoch`.
    public static func step(_ seed: UInt64, epoch: Int, done: Int) -> UInt64 { seed &+ UInt64(epoch * 100_003 + done) }

    /// Sample `index` of a batch (its augmentation, its patch), from the batch's seed.
    public static func sample(_ seed: UInt64, index: Int) -> UInt64 { seed &+ UInt64(index) &* golden }

    // MARK: data

    /// The anatomy of phantom patient `index` (`data.source.phantom.seed`).
    public static func phantomPatient(_ seed: Int, index: Int) -> UInt64 { UInt64(seed) &* 1_000_003 &+ UInt64(index) &+ 17 }

    /// The extra modality `m` of phantom patient `index`.
    public static func phantomModality(_ seed: Int, index: Int, modality m: Int) -> UInt64 {
        UInt64(seed) &* 7_919 &+ UInt64(index) &* 131 &+ UInt64(m) &+ 5
    }

    /// Level `depth` of a chain of subsets (`fraction` of the level above), from the split's seed.
    public static func subset(_ seed: UInt64, depth: Int, fraction: Double) -> UInt64 {
        seed &+ UInt64(depth + 1) &* 0x9E37_79B9 &+ UInt64(fraction * 1e6)
    }

    /// Draw `draw` of an augmentation preview, for its sample `sample`.
    public static func preview(draw: Int, sample: Int) -> UInt64 { UInt64(draw) &* 7_919 &+ UInt64(sample) }
}
