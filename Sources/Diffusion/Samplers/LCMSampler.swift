import Engine
import Foundation

/// A1111's LCM (`sd_samplers_lcm.py`: `sample_lcm` through its `LCMCompVisDenoiser`, for latent
/// consistency models). Its denoiser discretises the schedule at LCM's 50 original timesteps
/// (19, 39, ..., 999: every 20th of 1000), so its sigma schedules are made from those 50 noise
/// levels; the model is called at the timestep of the nearest of them (in log sigma), and its
/// denoised estimate is the consistency model's c_out (x - sigma eps) + c_skip x with
/// sigma_data 0.5 and the timestep x 10. Each step jumps to that estimate and, unless the next
/// sigma is 0, adds fresh noise at the next sigma (the image RNG, as A1111's randn_like).
struct LCMSampler: SamplingMethod {
    let name = "LCM"
    let aliases = ["k_lcm"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    /// LCM's original timesteps ("LCM Original Timesteps", 50 in A1111).
    static let originalTimesteps = 50

    func scheduleAlphasCumprod(_ ac: [Float]) -> [Float] {
        let skip = ac.count / Self.originalTimesteps
        return (0..<Self.originalTimesteps).map { j in ac[ac.count - 1 - (Self.originalTimesteps - 1 - j) * skip] }
    }

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        let skip = run.alphasCumprod.count / Self.originalTimesteps
        let logSigmas = NoiseSchedule(alphasCumprod: scheduleAlphasCumprod(run.alphasCumprod)).logSigmas
        return try KDiffusion.stepping(from: start, run) { x, _, sigma, next in
            // sigma_to_t: the nearest of the 50 levels (the first of equals), on the 1000-step scale.
            let logSigma = Foundation.log(sigma)
            let nearest = logSigmas.indices.min { abs(logSigma - logSigmas[$0]) < abs(logSigma - logSigmas[$1]) } ?? 0
            let t = Float(nearest * skip + skip - 1)
            let cIn = 1 / (sigma * sigma + 1).squareRoot()
            let eps = try run.predictNoise(x * cIn, t)
            let scaled = t * 10
            let cSkip = 0.25 / (scaled * scaled + 0.25), cOut = scaled / (scaled * scaled + 0.25).squareRoot()
            let denoised = try (x - eps * sigma) * cOut + x * cSkip
            return next > 0 ? try denoised + run.noise(sigma, next) * next : denoised
        }
    }
}
