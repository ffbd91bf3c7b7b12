import Foundation

/// Everything that determines a txt2img result (what infotext records). Scripts, pasted
/// infotext and the command line fill it through `GenerationParameters`, whose rows say how each
/// setting is named, checked, defaulted and written.
public struct GenerationSettings: Sendable, Equatable {
    public var prompt = ""
    public var negativePrompt = ""
    public var steps = 20
    public var sampler = Sampler.eulerAncestral
    /// nil: A1111's "Automatic", the sampler's default schedule.
    public var schedule: NoiseSchedule.Kind? = nil
    public var cfgScale: Float = 7
    /// -1 picks a random seed (reported in the result).
    public var seed: Int64 = -1
    public var subseed: Int64 = -1
    public var subseedStrength: Float = 0
    /// A1111's "Seed resize from": the seed's noise made for this size in pixels (0: not resized).
    public var seedResizeFromWidth = 0, seedResizeFromHeight = 0
    /// A1111's "ENSD" (eta noise seed delta): the step noise comes from `seed + delta`.
    public var etaNoiseSeedDelta: Int64 = 0
    public var width = 512
    public var height = 512
    public var batchSize = 1
    /// Batches per statement (A1111's "Batch count", `n_iter`): the front end runs them one by one.
    public var batchCount = 1
    /// NV reproduces A1111's default ("GPU" on NVIDIA cards) without a GPU.
    public var rng = RandomSourceKind.nv
    public var clipSkip = 1
    /// Decode in tiles (diffusers' `enable_tiling()`) when the latent is larger than the model's
    /// native size, so the VAE's memory follows the tile (`AutoencoderKL.decodeTiled`).
    public var vaeTiling = false
    /// The schedule's settings (A1111's sigma min/max override, rho, the Beta schedule's alpha and beta).
    public var scheduleOptions = NoiseSchedule.Options()
    /// A1111's "Always discard next-to-last sigma" (infotext "Discard penultimate sigma"), for
    /// samplers that do not already do it.
    public var discardPenultimateSigma = false
    /// A1111's "SGM noise multiplier": the initial noise scaled by sqrt(1 + sigma_max^2), as SGM
    /// (SDXL's reference code) does, instead of sigma_max.
    public var sgmNoiseMultiplier = false
    /// The stochastic samplers' options (A1111's eta, s_noise, s_churn, s_tmin, s_tmax).
    public var samplerOptions = SamplerOptions()
    /// A1111's hires fix (off unless its scale or size is set).
    public var hires = HiresFix()

    public init() {}

    /// The schedule actually used.
    public var resolvedSchedule: NoiseSchedule.Kind { schedule ?? sampler.defaultSchedule }

    // MARK: seeds: the one rule for random seeds, per-image seeds, batches and variation seeds

    /// A random seed as A1111 draws one (for a seed of -1).
    public static func randomSeed() -> Int64 { Int64.random(in: 0..<4_294_967_294) }

    /// These settings with `seed` drawn when it is -1, and `subseed` drawn when it is -1 and a
    /// variation strength uses it (otherwise it stays -1, unused), so what is recorded is what was made.
    public func withSeedsDrawn() -> GenerationSettings {
        var s = self
        if s.seed == -1 { s.seed = Self.randomSeed() }
        if s.subseed == -1, s.subseedStrength > 0 { s.subseed = Self.randomSeed() }
        return s
    }

    /// The seeds of image `k` of a statement (counting across its batches): A1111's rule, the seed
    /// advancing by one per image unless a variation strength is set, the variation seed always.
    /// Wraps rather than traps; `checkSeeds(images:)` refuses a range that would wrap.
    public func seeds(ofImage k: Int) -> (seed: Int64, subseed: Int64) {
        (seed &+ (subseedStrength > 0 ? 0 : Int64(k)), subseed &+ Int64(k))
    }

    /// The settings of batch `index` (0-based) of a statement that makes several batches: its
    /// own seeds, one batch.
    public func batch(_ index: Int) -> GenerationSettings {
        var s = self
        (s.seed, s.subseed) = seeds(ofImage: index &* batchSize)
        s.batchCount = 1
        return s
    }

    /// The settings as image `k` of the batch records them (its own seed and variation seed).
    public func image(_ k: Int) -> GenerationSettings {
        var s = self
        (s.seed, s.subseed) = seeds(ofImage: k)
        return s
    }

    /// Refuses seeds whose per-image increments for `images` images would pass `Int64.max`.
    public func checkSeeds(images: Int) throws {
        for (name, value) in [("seed", seed), ("subseed", subseed)] where value >= 0 {
            let (_, overflow) = value.addingReportingOverflow(Int64(max(images, 1) - 1))
            guard !overflow else {
                throw GenerationError.invalid("\(name) \(value) with \(images) images would pass the largest seed \(Int64.max); use a smaller seed")
            }
        }
    }
}
