import Foundation

/// A1111's "NV" random source (`modules/rng_philox.py`), which reproduces `torch.randn` on CUDA
/// without a GPU: Philox-4x32-10 with key = the 64-bit seed and, for element i of the c-th call,
/// counter [c, 0, i, 0]; the first two output words feed the sine branch of Box-Muller, computed
/// in double precision as numpy does there and rounded to float.
/// Codable: its state (seed and call count) is saved with a training so a resumed run continues
/// the same stream.
public struct PhiloxRandom: RandomSource, Codable, Sendable {
    public let seed: UInt64
    /// Number of `randn` calls made so far (the counter's first word).
    public private(set) var offset: UInt32 = 0

    public init(seed: UInt64) { self.seed = seed }

    static func philox(_ counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32) {
        var (c0, c1, c2, c3) = counter
        var (k0, k1) = key
        for round in 0..<10 {
            let v1 = UInt64(c0) &* 0xD251_1F53, v2 = UInt64(c2) &* 0xCD9E_8D57
            c0 = UInt32(truncatingIfNeeded: v2 >> 32) ^ c1 ^ k0
            c1 = UInt32(truncatingIfNeeded: v2)
            c2 = UInt32(truncatingIfNeeded: v1 >> 32) ^ c3 ^ k1
            c3 = UInt32(truncatingIfNeeded: v1)
            if round < 9 { k0 = k0 &+ 0x9E37_79B9; k1 = k1 &+ 0xBB67_AE85 }
        }
        return (c0, c1)
    }

    /// The float32 constants of rng_philox.py, widened as numpy widens them.
    private static let a = Double(Float(2.3283064e-10)), halfA = Double(Float(2.3283064e-10) / 2)
    private static let b = Double(Float(2.3283064e-10 * 6.2831855)), halfB = Double(Float(2.3283064e-10 * 6.2831855) / 2)

    public mutating func randn(_ count: Int) -> [Float] {
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        let c = offset
        offset &+= 1
        return (0..<count).map { i in
            let (x, y) = Self.philox((c, 0, UInt32(truncatingIfNeeded: i), 0), key: key)
            let u = Double(x) * Self.a + Self.halfA, v = Double(y) * Self.b + Self.halfB
            return Float((-2.0 * Foundation.log(u)).squareRoot() * Foundation.sin(v))
        }
    }
}
