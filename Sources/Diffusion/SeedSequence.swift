/// numpy's `np.random.SeedSequence` (numpy >= 1.19, `numpy/random/bit_generator.pyx`): the hash
/// that turns an entropy integer and a spawn key into seed words. torchsde's Brownian interval
/// seeds every `torch.randn` it draws with `SeedSequence(entropy, spawn_key=..., pool_size=24)
/// .generate_state(n)[i]`, so reproducing its noise needs this bit for bit.
///
/// The algorithm (Melissa O'Neill's `seed_seq` alternative, as numpy has it):
/// - entropy and each spawn-key integer become little-endian 32-bit words (0 is one word `[0]`);
///   when a spawn key is given, the entropy words are padded with zeros up to the pool size;
/// - the pool is filled by `hashmix` of the first words (zeros past the end), every pool word is
///   mixed into every other, and words beyond the pool are mixed into every pool word;
/// - `generateState` hashes the pool words in turn with a second multiplier sequence.
/// All arithmetic is modulo 2^32.
public struct SeedSequence: Sendable, Equatable {
    /// The mixed entropy pool.
    public let pool: [UInt32]

    private static let initA: UInt32 = 0x43B0_D7E5, multA: UInt32 = 0x931E_8875
    private static let initB: UInt32 = 0x8B51_F9DD, multB: UInt32 = 0x58F3_8DED
    private static let mixMultL: UInt32 = 0xCA01_F9DD, mixMultR: UInt32 = 0x4973_F715

    /// `SeedSequence(entropy=entropy, spawn_key=spawnKey, pool_size=poolSize)`. A pool size below
    /// numpy's minimum of 4 is raised to 4.
    public init(entropy: UInt64, spawnKey: [UInt64] = [], poolSize: Int = 4) {
        let size = max(4, poolSize)
        var words = Self.words(entropy)
        if !spawnKey.isEmpty && words.count < size {
            words += [UInt32](repeating: 0, count: size - words.count)
        }
        for k in spawnKey { words += Self.words(k) }

        var hashConst = Self.initA
        func hashmix(_ value: UInt32) -> UInt32 {
            var v = value ^ hashConst
            hashConst = hashConst &* Self.multA
            v = v &* hashConst
            return v ^ (v >> 16)
        }
        func mix(_ x: UInt32, _ y: UInt32) -> UInt32 {
            let r = Self.mixMultL &* x &- Self.mixMultR &* y
            return r ^ (r >> 16)
        }
        var mixer = (0..<size).map { hashmix($0 < words.count ? words[$0] : 0) }
        for src in 0..<size {
            for dst in 0..<size where dst != src {
                mixer[dst] = mix(mixer[dst], hashmix(mixer[src]))
            }
        }
        if words.count > size {
            for src in size..<words.count {
                for dst in 0..<size { mixer[dst] = mix(mixer[dst], hashmix(words[src])) }
            }
        }
        pool = mixer
    }

    /// `generate_state(count)` with numpy's default `dtype=np.uint32`.
    public func generateState(_ count: Int) -> [UInt32] {
        var hashConst = Self.initB
        return (0..<max(0, count)).map { i in
            var v = pool[i % pool.count] ^ hashConst
            hashConst = hashConst &* Self.multB
            v = v &* hashConst
            return v ^ (v >> 16)
        }
    }

    /// numpy's `_int_to_uint32_array`: lowest word first, at least one word.
    private static func words(_ n: UInt64) -> [UInt32] {
        let low = UInt32(truncatingIfNeeded: n), high = UInt32(truncatingIfNeeded: n >> 32)
        return high == 0 ? [low] : [low, high]
    }
}
