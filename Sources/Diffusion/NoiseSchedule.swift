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

    /// Sigma spacings under A1111's (1.10) schedule types. A1111's "Automatic" is not one of
    /// these: it means the sampler's default (`Sampler.defaultSchedule`).
    public enum Kind: String, Sendable, CaseIterable {
        /// Evenly spaced timesteps (k-diffusion `get_sigmas`; A1111 "Uniform").
        case uniform
        case karras, exponential, polyexponential
        case sgmUniform = "sgm_uniform", klOptimal = "kl_optimal", alignYourSteps = "align_your_steps"
        case simple, normal, ddim, beta

        /// The label A1111 writes in infotext ("SGM Uniform").
        public var displayName: String {
            switch self {
            case .sgmUniform: return "SGM Uniform"
            case .klOptimal: return "KL Optimal"
            case .alignYourSteps: return "Align Your Steps"
            case .ddim: return "DDIM"
            default: return rawValue.prefix(1).uppercased() + rawValue.dropFirst()
            }
        }

        /// The schedule of a name or A1111 label, any letter case ("sgm_uniform", "SGM Uniform", "SGMUniform").
        public static func named(_ text: String) -> Kind? {
            let t = text.trimmingCharacters(in: .whitespaces).lowercased()
            return allCases.first { $0.rawValue == t || $0.displayName.lowercased() == t } ?? (t == "sgmuniform" ? .sgmUniform : nil)
        }

        /// The rho A1111 uses unless the "Schedule rho" setting overrides it; nil for schedules without one.
        public var defaultRho: Double? {
            switch self {
            case .karras: return 7
            case .polyexponential: return 1
            default: return nil
            }
        }
    }

    /// The settings A1111 gives every schedule (its "Schedule min sigma", "Schedule max sigma",
    /// "Schedule rho" and the Beta schedule's alpha and beta): 0 means the model's or the
    /// schedule's own value.
    public struct Options: Sendable, Equatable {
        public var sigmaMin: Double = 0
        public var sigmaMax: Double = 0
        public var rho: Double = 0
        public var betaAlpha: Double = 0.6
        public var betaBeta: Double = 0.6
        public init() {}
    }

    /// The SD 1.x noise levels of NVIDIA's Align Your Steps (A1111 `get_align_your_steps_sigmas`).
    static let alignYourStepsSD1: [Double] = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]

    /// `steps` sigmas from high to low, ending as A1111's schedule function ends them (a final 0,
    /// except KL Optimal, which ends at sigma_min; DDIM's count follows its stride).
    public func sigmas(steps n: Int, kind: Kind, options o: Options = Options()) -> [Float] {
        // A1111 passes the model's extreme sigmas as Python floats (float32 values), overridable.
        let sMin = o.sigmaMin != 0 ? o.sigmaMin : Double(sigmaMin), sMax = o.sigmaMax != 0 ? o.sigmaMax : Double(sigmaMax)
        let rho = o.rho != 0 && kind.defaultRho != nil ? o.rho : kind.defaultRho ?? 1
        let count = sigmas.count
        switch kind {
        case .uniform:
            // get_sigmas(n): timesteps linspace(999, 0, n) (float32 linspace as torch computes it).
            let tMax = Float(count - 1)
            return (0..<n).map { i in sigma(timestep: Self.linspace(tMax, 0, n, i)) } + [0]
        case .karras:
            return Self.karras(steps: n, sigmaMin: sMin, sigmaMax: sMax, rho: rho)
        case .exponential:
            return (0..<n).map { i in Foundation.exp(Self.linspace(Float(Foundation.log(sMax)), Float(Foundation.log(sMin)), n, i)) } + [0]
        case .polyexponential:
            let logMin = Float(Foundation.log(sMin)), span = Float(Foundation.log(sMax) - Foundation.log(sMin))
            return (0..<n).map { i in Foundation.exp(Foundation.pow(Self.linspace(1, 0, n, i), Float(rho)) * span + logMin) } + [0]
        case .sgmUniform, .normal:
            // Timesteps evenly from sigma_max's to sigma_min's: n + 1 of them less the last (SGM), or n.
            let start = timestep(sigma: Float(sMax)), end = timestep(sigma: Float(sMin))
            let points = kind == .sgmUniform ? n + 1 : n
            return (0..<n).map { i in sigma(timestep: Self.linspace(start, end, points, i)) } + [0]
        case .klOptimal:
            let aMin = Foundation.atan(Float(sMin)), aMax = Foundation.atan(Float(sMax))
            return (0...n).map { i in let f = Float(i) / Float(n); return Foundation.tan(f * aMin + (1 - f) * aMax) }
        case .alignYourSteps:
            let levels = Self.alignYourStepsSD1
            guard n != levels.count else { return levels.map(Float.init) + [0] }
            // Log-linear interpolation of the levels to n points (numpy, float64).
            let logs = levels.reversed().map { Foundation.log($0) }
            return (0..<n).map { i -> Float in
                let x = n > 1 ? Double(i) / Double(n - 1) : 0
                let pos = x * Double(levels.count - 1), k = min(Int(pos), levels.count - 2), w = pos - Double(k)
                return Float(Foundation.exp(logs[k] + (logs[k + 1] - logs[k]) * w))
            }.reversed() + [0]
        case .simple:
            let stride = Double(count) / Double(n)
            return (0..<n).map { x in sigmas[count - 1 - Int(Double(x) * stride)] } + [0]
        case .ddim:
            let stride = max(count / n, 1)
            return Swift.stride(from: 1, to: count, by: stride).map { sigmas[$0] }.reversed() + [0]
        case .beta:
            return (0..<n).map { i -> Float in
                let p = 1 - (n > 1 ? Double(i) / Double(n - 1) : 0)
                return Float(sMin + BetaDistribution.quantile(p, o.betaAlpha, o.betaBeta) * (sMax - sMin))
            } + [0]
        }
    }

    /// k-diffusion's `get_sigmas_karras(n, sigma_min, sigma_max, rho)`: n sigmas evenly spaced in
    /// sigma^(1/rho) (float32, the endpoints' powers taken in double as Python does), and a final 0.
    public static func karras(steps n: Int, sigmaMin: Double, sigmaMax: Double, rho: Double = 7) -> [Float] {
        let minInv = Float(Foundation.pow(sigmaMin, 1 / rho)), maxInv = Float(Foundation.pow(sigmaMax, 1 / rho))
        return (0..<n).map { i in Foundation.pow(maxInv + linspace(0, 1, n, i) * (minInv - maxInv), Float(rho)) } + [0]
    }

    /// Element i of torch.linspace(start, end, n) in float32 (torch steps from both ends).
    static func linspace(_ start: Float, _ end: Float, _ n: Int, _ i: Int) -> Float {
        guard n > 1 else { return start }
        let step = (end - start) / Float(n - 1)
        return i < n / 2 ? start + step * Float(i) : end - step * Float(n - 1 - i)
    }
}
