import Foundation

/// k-diffusion's `BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=seeds)` (k_diffusion
/// 0.1.1 `sampling.py`: `BatchedBrownianTree` over torchsde's `BrownianTree`), the step noise of
/// A1111's SDE samplers (DPM++ SDE, DPM++ 2M SDE, DPM++ 2M SDE Heun, DPM++ 3M SDE).
///
/// A1111 (`sd_samplers_common.Sampler.create_noise_sampler`) builds it with
/// `sigma_min = sigmas[sigmas > 0].min()`, `sigma_max = sigmas.max()` (float32) and
/// `seed = p.all_seeds[p.iteration * p.batch_size:(p.iteration + 1) * p.batch_size]`, a list, so
/// there is one tree per image over that image's shape (`x[0]`), seeded with the image's seed, and
/// the identity transform (the tree's time is sigma itself). Calling it with (sigma, sigmaNext):
/// - (t0, t1) = the two sigmas sorted, sign = -1 if they were swapped (times the sign of the
///   tree's own sorting of sigmaMin / sigmaMax);
/// - each tree gives its increment W over [t0, t1] (clamped to the tree's interval);
/// - the result is `W * sign / sqrt(|sigmaNext - sigma|)`, all in float32.
/// So each call returns unit-variance noise, correlated across calls as a Brownian path is.
///
/// Times are used as the float32 values A1111 passes (float32 sigma tensors widened to doubles).
/// `source` picks what A1111 draws the tree's normals with (`rng.randn_local`, which A1111
/// substitutes for torchsde's own `_randn`): `.cpu` is `torch.randn` on a CPU generator (A1111's
/// "CPU", and torchsde's own draw on the CPU); `.nv` is A1111's Philox "NV" source, which A1111
/// made to reproduce its default "GPU" source on CUDA (`torch.randn` on a CUDA generator).
/// One difference remains on the CPU: torch's x86 (MKL) float32 `sqrt` of the divisor is not
/// always correctly rounded; this uses the correctly rounded one (as CUDA does), so a value can
/// differ from torch's CPU result in its last bit.
///
/// Differences from k-diffusion, on inputs it does not handle: sigma == sigmaNext or a non-finite
/// sigma gives zeros (k-diffusion divides 0 by 0), and queries whose rounded times coincide give
/// zeros (torchsde builds an empty interval there).
public final class BrownianTreeNoise {
    /// Why a noise sampler was refused.
    public enum InputError: Error, Equatable, CustomStringConvertible {
        case noSeeds, tooManySeeds(Int), negativeSeed(Int64), badShape([Int]), badSigmaRange(Float, Float)

        public var description: String {
            switch self {
            case .noSeeds: return "Brownian noise needs at least one seed"
            case .tooManySeeds(let n): return "Brownian noise for \(n) images is more than \(BrownianTreeNoise.maximumBatch)"
            case .negativeSeed(let s): return "Brownian noise seed \(s) is negative (numpy's SeedSequence takes no negative entropy)"
            case .badShape(let s): return "Brownian noise shape \(s) must have positive sizes and at most \(BrownianTreeNoise.maximumElements) elements"
            case .badSigmaRange(let a, let b):
                return "Brownian noise needs two different finite sigmas in [0, \(BrownianTree.maximumSpan)], not \(a) and \(b)"
            }
        }
    }

    public static let maximumBatch = 4096
    public static let maximumElements = 1 << 26
    static let cacheBudget = 256 << 20

    /// One image's shape (e.g. [4, h, w]).
    public let shape: [Int]
    public let seeds: [Int64]
    public let sigmaMin: Float, sigmaMax: Float
    /// Elements of one image's noise.
    public let count: Int
    let trees: [BrownianTree]
    private let treeSign: Float

    public init(shape: [Int], sigmaMin: Float, sigmaMax: Float, seeds: [Int64],
                source: RandomSourceKind = .cpu) throws {
        guard !seeds.isEmpty else { throw InputError.noSeeds }
        guard seeds.count <= Self.maximumBatch else { throw InputError.tooManySeeds(seeds.count) }
        if let bad = seeds.first(where: { $0 < 0 }) { throw InputError.negativeSeed(bad) }
        var n = 1
        for d in shape {
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            guard d > 0, !overflow, product <= Self.maximumElements else { throw InputError.badShape(shape) }
            n = product
        }
        let lo = min(sigmaMin, sigmaMax), hi = max(sigmaMin, sigmaMax)
        guard lo.isFinite, hi.isFinite, lo >= 0, lo < hi, Double(hi) <= BrownianTree.maximumSpan else {
            throw InputError.badSigmaRange(sigmaMin, sigmaMax)
        }
        // Each tree keeps its recent intervals' increments: at least a few query paths' worth
        // (a path is at most ~45 intervals deep), within about 256 MiB for the whole batch.
        let capacity = max(96, min(512, Self.cacheBudget / (MemoryLayout<Float>.stride * n * seeds.count)))
        var trees: [BrownianTree] = []
        for seed in seeds {
            guard let tree = BrownianTree(t0: Double(lo), t1: Double(hi), count: n, entropy: UInt64(seed),
                                          source: source, cacheCapacity: capacity) else {
                throw InputError.badSigmaRange(sigmaMin, sigmaMax)
            }
            trees.append(tree)
        }
        self.shape = shape
        self.seeds = seeds
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.count = n
        self.trees = trees
        treeSign = sigmaMin < sigmaMax ? 1 : -1
    }

    /// The noise for a step from `sigma` to `sigmaNext`: the B images' noise, each of `shape`,
    /// concatenated ([B, ...] row-major).
    public func callAsFunction(_ sigma: Float, _ sigmaNext: Float) -> [Float] {
        guard sigma.isFinite, sigmaNext.isFinite, sigma != sigmaNext else {
            return [Float](repeating: 0, count: count * trees.count)
        }
        let (t0, t1, sign): (Float, Float, Float) = sigma < sigmaNext ? (sigma, sigmaNext, 1) : (sigmaNext, sigma, -1)
        let scale = treeSign * sign
        let divisor = abs(sigmaNext - sigma).squareRoot()
        var out: [Float] = []
        out.reserveCapacity(count * trees.count)
        for tree in trees {
            let w = tree.increment(Double(t0), Double(t1)) ?? [Float](repeating: 0, count: count)
            for v in w { out.append(v * scale / divisor) }
        }
        return out
    }
}
