import Engine
import Foundation

/// The options of the stochastic samplers under A1111's names; each sampler reads only the
/// ones in its `options` (A1111's `sampler_extra_params` and `eta`), as A1111 passes them.
public struct SamplerOptions: Sendable, Equatable {
    /// Ancestral noise multiplier (A1111's `eta_ancestral`).
    public var eta: Float = 1
    public var sNoise: Float = 1
    /// Karras et al.'s churn: noise added before each step whose sigma lies in [sTmin, sTmax].
    public var sChurn: Float = 0
    public var sTmin: Float = 0
    /// 0 means infinity (A1111's convention for the "Sigma tmax" setting).
    public var sTmax: Float = 0
    /// UniPC's settings.
    public var uniPC = UniPCOptions()

    public init() {}

    /// The upper end of the churn range.
    public var sTmaxOrInfinity: Float { sTmax == 0 ? .infinity : sTmax }
}

/// One of `SamplerOptions`'s options.
public enum SamplerOption: Sendable, Hashable {
    case eta, sNoise, sChurn, sTmin, sTmax
    /// A1111's `uses_ensd`: the sampler's step noise follows the eta noise seed delta, so the
    /// infotext records "ENSD" for it.
    case etaNoiseSeedDelta
    /// UniPC's variant, skip type, order and lower-order-final settings.
    case uniPC

    /// Euler, Heun and DPM2 take Karras's churn options (A1111's `sampler_extra_params`).
    static let churn: Set<SamplerOption> = [.sChurn, .sTmin, .sTmax, .sNoise]
}

/// One sampling run: the sampler calls the denoiser, draws step noise and reports steps through
/// it. Latents stay `Tensor`s on the backend's device from the initial noise to the final latent.
public struct SamplingRun {
    /// The noise levels of k-diffusion's samplers, ending in 0 (timestep samplers ignore them).
    public var sigmas: [Float]
    /// Sampling steps as set (timestep samplers derive their timesteps from it).
    public var steps: Int
    /// The model's DDPM schedule (timestep samplers).
    public var alphasCumprod: [Float]
    public var options = SamplerOptions()
    /// k-diffusion samplers start from noise x sqrt(1 + sigma_max^2) instead of x sigma_max
    /// (A1111's "SGM noise multiplier").
    public var sgmNoiseMultiplier = false
    /// The model's estimate of the clean latent at a noise level (k-diffusion's denoiser).
    public var denoise: (_ x: Tensor, _ sigma: Float) throws -> Tensor
    /// The model's noise prediction at an integer timestep, unscaled (A1111's timestep samplers).
    public var predictNoise: (_ x: Tensor, _ timestep: Float) throws -> Tensor
    /// The noise prediction with the guidance scale times a multiplier, and the unconditional
    /// prediction of the same model call (DDIM CFG++).
    public var predictNoiseAndUncond: (_ x: Tensor, _ timestep: Float, _ scaleMultiplier: Float) throws -> (guided: Tensor, uncond: Tensor) = { _, _, _ in
        throw GenerationError.invalid("this denoiser has no unconditional prediction")
    }
    /// The fresh noise of a step from `sigma` to `sigmaNext` (A1111: the image RNG's next draw
    /// per image; a test may inject reference noise).
    public var noise: (_ sigma: Float, _ sigmaNext: Float) throws -> Tensor
    /// Called after step `done` of `total`; throwing from it stops sampling (cancellation).
    public var afterStep: (_ done: Int, _ total: Int) throws -> Void = { _, _ in }

    public init(sigmas: [Float], steps: Int, alphasCumprod: [Float], options: SamplerOptions = SamplerOptions(), sgmNoiseMultiplier: Bool = false,
                denoise: @escaping (Tensor, Float) throws -> Tensor,
                predictNoise: @escaping (Tensor, Float) throws -> Tensor = { _, _ in throw GenerationError.invalid("this denoiser has no noise prediction") },
                noise: @escaping (Float, Float) throws -> Tensor) {
        self.sigmas = sigmas; self.steps = steps; self.alphasCumprod = alphasCumprod; self.options = options
        self.sgmNoiseMultiplier = sgmNoiseMultiplier
        self.denoise = denoise; self.predictNoise = predictNoise; self.noise = noise
    }
}

/// A sampling algorithm under its A1111 name, with the properties A1111 gives it. Each sampler
/// is one file; `Sampler.all` lists them.
public protocol SamplingMethod: Sendable {
    /// A1111's display name ("DPM++ 2M").
    var name: String { get }
    /// Other names it is known by (k-diffusion's `k_...` names).
    var aliases: [String] { get }
    /// The schedule A1111 (1.9+) uses when the schedule type is "Automatic".
    var defaultSchedule: NoiseSchedule.Kind { get }
    /// A1111 drops the second-to-last sigma (`discard_next_to_last_sigma`).
    var discardsPenultimateSigma: Bool { get }
    /// The options it reads, as A1111 passes them.
    var options: Set<SamplerOption> { get }
    /// A1111's `brownian_noise`: its step noise comes from a Brownian tree seeded with the image
    /// seeds (`BrownianTreeNoise`), not from the image RNG.
    var usesBrownianNoise: Bool { get }
    /// A1111's timestep samplers (DDIM, PLMS): they call the model on integer timesteps for its
    /// noise prediction and start from the unscaled noise.
    var usesTimesteps: Bool { get }
    /// Whether it samples over `run.sigmas` as given (k-diffusion's list samplers); DPM fast and
    /// DPM adaptive take the model's own sigma range instead, so img2img cannot start them midway yet.
    var takesSigmaList: Bool { get }
    /// The alphas_cumprod its denoiser discretises, which its sigma schedules are made from (the
    /// model's; LCM's 50 original timesteps of them).
    func scheduleAlphasCumprod(_ alphasCumprod: [Float]) -> [Float]
    /// The latent sampling starts from, given unit-variance noise (k-diffusion: scaled by the first sigma).
    func start(_ noise: Tensor, _ run: SamplingRun) throws -> Tensor
    /// Samples from `x` to the final latent.
    func sample(_ x: Tensor, _ run: SamplingRun) throws -> Tensor
}

extension SamplingMethod {
    public var aliases: [String] { [] }
    public var discardsPenultimateSigma: Bool { false }
    public var options: Set<SamplerOption> { [] }
    public var usesBrownianNoise: Bool { false }
    public var usesTimesteps: Bool { false }
    public var takesSigmaList: Bool { true }
    public func scheduleAlphasCumprod(_ alphasCumprod: [Float]) -> [Float] { alphasCumprod }
    public func start(_ noise: Tensor, _ run: SamplingRun) throws -> Tensor {
        let s = run.sigmas[0]
        return try noise * (run.sgmNoiseMultiplier ? (1 + s * s).squareRoot() : s)
    }
}

/// The steps k-diffusion's samplers share.
enum KDiffusion {
    /// k-diffusion's loop over the sigmas: `step` takes x from `sigma` (sigmas[i]) to `next`
    /// (sigmas[i + 1]); each finished step is reported to `run.afterStep`.
    static func stepping(from start: Tensor, _ run: SamplingRun,
                         _ step: (_ x: Tensor, _ i: Int, _ sigma: Float, _ next: Float) throws -> Tensor) throws -> Tensor {
        var x = start
        let steps = run.sigmas.count - 1
        for i in 0..<steps {
            x = try step(x, i, run.sigmas[i], run.sigmas[i + 1])
            try run.afterStep(i + 1, steps)
        }
        return x
    }

    /// The derivative dx/dsigma: (x - denoised) / sigma.
    static func derivative(_ x: Tensor, _ sigma: Float, _ denoised: Tensor) throws -> Tensor { try (x - denoised) * (1 / sigma) }

    /// `get_ancestral_step`: the sigma to step down to and the noise to add, for `eta`.
    static func ancestralStep(from: Float, to: Float, eta: Float) -> (down: Float, up: Float) {
        guard eta != 0 else { return (to, 0) }
        let up = min(to, eta * (to * to * (from * from - to * to) / (from * from)).squareRoot())
        return ((to * to - up * up).squareRoot(), up)
    }

    /// Karras's churn before step `i` (Euler, Heun, DPM2): raises sigma to sigma_hat and adds
    /// the matching noise. As in A1111's k-diffusion, a step draws its noise whether or not it is
    /// in the churn range (so the image RNG advances once a step); with no churn at all nothing
    /// is drawn, which leaves the result the same since these samplers draw nothing else.
    static func churn(_ x: Tensor, step i: Int, _ run: SamplingRun) throws -> (x: Tensor, sigmaHat: Float) {
        let o = run.options, sigma = run.sigmas[i], steps = run.sigmas.count - 1
        guard o.sChurn > 0 else { return (x, sigma) }
        let gamma: Float = (o.sTmin <= sigma && sigma <= o.sTmaxOrInfinity) ? min(o.sChurn / Float(steps), Float(2).squareRoot() - 1) : 0
        let eps = try run.noise(sigma, run.sigmas[i + 1]) * o.sNoise
        let sigmaHat = sigma * (gamma + 1)
        guard gamma > 0 else { return (x, sigmaHat) }
        return (try x + eps * (sigmaHat * sigmaHat - sigma * sigma).squareRoot(), sigmaHat)
    }

    /// One Heun step from `sigma` to `next` (an Euler step when `next` is 0): Heun and Restart.
    static func heunStep(_ x: Tensor, from sigma: Float, to next: Float, _ run: SamplingRun) throws -> Tensor {
        let dt = next - sigma
        let d = try derivative(x, sigma, run.denoise(x, sigma))
        if next == 0 { return try x + d * dt }
        let x2 = try x + d * dt
        let d2 = try derivative(x2, next, run.denoise(x2, next))
        return try x + (d + d2) * (dt / 2)
    }

    /// A point between two sigmas, halfway in log sigma (DPM2's midpoint).
    static func logMidpoint(_ a: Float, _ b: Float) -> Float { Foundation.exp(Foundation.log(a) + 0.5 * (Foundation.log(b) - Foundation.log(a))) }

    static func t(_ sigma: Float) -> Float { -Foundation.log(sigma) }
    static func sigma(_ t: Float) -> Float { Foundation.exp(-t) }
}
