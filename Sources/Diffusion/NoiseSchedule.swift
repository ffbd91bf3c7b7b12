import Foundation

/// k-diffusion's discrete schedule for eps-prediction models (`CompVisDenoiser`): sigmas from the
/// model's `alphas_cumprod`, conversion between sigma and (fractional) timestep by interpolating
/// log-sigma, and the sigma schedules A1111 offers. Float32 arithmetic, as torch does it there.
public struct NoiseSchedule: Sendable {
    /// sigma_t = sqrt((1 - alphas_cumprod_t) / alphas_cumprod_t), ascending in t.
    public let sigmas: [Float]
    public let logSigmas: [Float]

    public init(alphasCumprod: [Float]) {
        sigmas = alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
        logSigmas = sigmas.map { Foundation.log($0) }
    }

    public var sigmaMin: Float { sigmas.first! }
    public var sigmaMax: Float { sigmas.last! }

    /// The (fractional) timestep of `sigma` (`DiscreteSchedule.sigma_to_t`).
    public func timestep(sigma: Float) -> Float {
        let logSigma = Foundation.log(sigma)
        // low_idx: the last index whose log-sigma is <= log(sigma), clamped to count - 2.
        var low = 0
        for (i, l) in logSigmas.enumerated() where logSigma - l >= 0 { low = i }
        low = min(low, logSigmas.count - 2)
        let lo = logSigmas[low], hi = logSigmas[low + 1]
        let w = min(max((lo - logSigma) / (lo - hi), 0), 1)
        return (1 - w) * Float(low) + w * Float(low + 1)
    }

    /// sigma at a fractional timestep (`t_to_sigma`).
    public func sigma(timestep t: Float) -> Float {
        let low = Int(t.rounded(.down)), high = Int(t.rounded(.up)), w = t - t.rounded(.down)
        return Foundation.exp((1 - w) * logSigmas[low] + w * logSigmas[high])
    }

    /// Sigma spacings. A1111's "Automatic" schedule type is not one of these: it means the
    /// sampler's default (`Sampler.defaultSchedule`).
    public enum Kind: String, Sendable, CaseIterable {
        /// Evenly spaced timesteps (k-diffusion `get_sigmas`; A1111 "Uniform").
        case uniform
        case karras, exponential

        /// The name A1111 writes in infotext.
        public var displayName: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
    }

    /// `steps` sigmas from high to low, with a final 0.
    public func sigmas(steps n: Int, kind: Kind, rho: Float = 7) -> [Float] {
        var out: [Float]
        switch kind {
        case .uniform:
            // get_sigmas(n): timesteps linspace(999, 0, n) (float32 linspace as torch computes it).
            let tMax = Float(sigmas.count - 1)
            out = (0..<n).map { i in sigma(timestep: Self.linspace(tMax, 0, n, i)) }
        case .karras:
            let minInv = Foundation.pow(sigmaMin, 1 / rho), maxInv = Foundation.pow(sigmaMax, 1 / rho)
            out = (0..<n).map { i in Foundation.pow(maxInv + Self.linspace(0, 1, n, i) * (minInv - maxInv), rho) }
        case .exponential:
            out = (0..<n).map { i in Foundation.exp(Self.linspace(Foundation.log(sigmaMax), Foundation.log(sigmaMin), n, i)) }
        }
        return out + [0]
    }

    /// Element i of torch.linspace(start, end, n) in float32 (torch steps from both ends).
    static func linspace(_ start: Float, _ end: Float, _ n: Int, _ i: Int) -> Float {
        guard n > 1 else { return start }
        let step = (end - start) / Float(n - 1)
        return i < n / 2 ? start + step * Float(i) : end - step * Float(n - 1 - i)
    }
}
