import Foundation

/// `torch.randn` on a CPU `torch.Generator().manual_seed(seed)` (PyTorch's CPUGeneratorImpl):
/// - mt19937 seeded with the low 32 bits of the seed (standard 1812433253 initialisation);
/// - tensors of 16 or more float elements (`normal_fill`): every element first gets a 24-bit
///   uniform `(u32 & 0xFFFFFF) / 2^24`; each block of 16 is transformed by Box-Muller pairing j
///   with j + 8 (`u1 = 1 - d[j]`, `u2 = d[j + 8]`); when the count is not a multiple of 16 the last
///   16 elements are drawn again and transformed again;
/// - fewer than 16 elements: each element is a double-precision Box-Muller sample from 53-bit
///   uniforms (`random64`: high word first), the sine branch cached in the generator for the next
///   element or call, as `at::normal_distribution<double>`.
/// Torch's vectorised path uses its own float log/sincos approximations, so results agree to
/// float rounding (about 1e-7 relative), not always bit for bit.
/// Codable: the whole generator state (mt19937 words, position, cached normal) is saved with a
/// training so a resumed run continues the same stream.
public struct TorchCPURandom: RandomSource, Codable, Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624
    private var cachedNormal: Double?

    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    /// The next 32-bit output of mt19937.
    public mutating func next32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        index = 0
    }

    private mutating func uniformFloat() -> Float { Float(next32() & 0xFF_FFFF) * (1.0 / 16_777_216.0) }

    private mutating func uniformDouble() -> Double {
        let hi = UInt64(next32()), lo = UInt64(next32())
        return Double(((hi << 32) | lo) & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    private mutating func normalDouble() -> Double {
        if let c = cachedNormal { cachedNormal = nil; return c }
        let u1 = uniformDouble(), u2 = uniformDouble()
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }

    private static let twoPi = Float(2 * Double.pi)

    private static func fill16(_ d: inout [Float], _ start: Int) {
        for j in 0..<8 {
            // u1 = 1 - d and theta = 2 pi u2 are float operations in torch (2 pi rounded to nearest;
            // Swift's Float.pi is rounded toward zero); the transcendental functions are evaluated
            // in double here (torch's own are float approximations).
            let u1 = 1 - d[start + j], theta = Self.twoPi * d[start + j + 8]
            let radius = (-2 * Foundation.log(Double(u1))).squareRoot()
            d[start + j] = Float(radius * Foundation.cos(Double(theta)))
            d[start + j + 8] = Float(radius * Foundation.sin(Double(theta)))
        }
    }

    public mutating func randn(_ count: Int) -> [Float] {
        guard count >= 16 else { return (0..<count).map { _ in Float(normalDouble()) } }
        var d = (0..<count).map { _ in uniformFloat() }
        var i = 0
        while i + 16 <= count { Self.fill16(&d, i); i += 16 }
        if count % 16 != 0 {
            for k in (count - 16)..<count { d[k] = uniformFloat() }
            Self.fill16(&d, count - 16)
        }
        return d
    }
}
