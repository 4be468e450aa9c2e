import Foundation

/// The runtime's random numbers: SplitMix64 seeding a xoshiro256** generator.
///
/// Documented so that the same seed gives the same numbers on every machine:
/// uniform floats take the top 24 bits of a 64-bit draw (`(x >> 40) * 2^-24`),
/// normal floats use Box-Muller on two uniforms in (0, 1].
public struct RNG: Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= Seeds.golden
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Standard normal.
    public mutating func normal() -> Float {
        let u1 = 1 - Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float(sqrt(-2 * log(u1)) * cos(2 * Double.pi * u2))
    }

    /// An integer in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }

    /// A random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, below(i + 1)) }
        }
        return p
    }

    public mutating func uniformTensor(_ shape: [Int], _ low: Float, _ high: Float) -> Tensor {
        let t = Tensor(zeros: shape)
        for i in 0..<t.count { t.pointer[i] = uniform(low, high) }
        return t
    }

    public mutating func normalTensor(_ shape: [Int], std: Float = 1) -> Tensor {
        let t = Tensor(zeros: shape)
        for i in 0..<t.count { t.pointer[i] = normal() * std }
        return t
    }
}
