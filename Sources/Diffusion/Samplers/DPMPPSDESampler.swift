import Engine
import Foundation

/// k-diffusion's `sample_dpmpp_sde` (A1111's "DPM++ SDE"), r = 1/2. Its noise comes from the
/// run's `noise` (the image RNG; A1111 uses a Brownian tree there).
struct DPMPPSDESampler: SamplingMethod {
    let name = "DPM++ SDE"
    let aliases = ["k_dpmpp_sde"]
    let defaultSchedule = NoiseSchedule.Kind.karras
    let options: Set<SamplerOption> = [.eta, .sNoise]
    let usesBrownianNoise = true

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1, eta = run.options.eta, sNoise = run.options.sNoise
        func sigma(_ t: Float) -> Float { KDiffusion.sigma(t) }
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try run.denoise(x, s)
            if sNext == 0 {
                x = try x + KDiffusion.derivative(x, s, denoised) * (sNext - s)
            } else {
                let t = KDiffusion.t(s), tNext = KDiffusion.t(sNext), h = tNext - t, r: Float = 0.5, sMid = t + h * r, fac = 1 / (2 * r)
                var (sd, su) = KDiffusion.ancestralStep(from: sigma(t), to: sigma(sMid), eta: eta)
                let s_ = KDiffusion.t(sd)
                var x2 = try x * (sigma(s_) / sigma(t)) - denoised * Foundation.expm1(t - s_)
                x2 = try x2 + run.noise(sigma(t), sigma(sMid)) * (sNoise * su)
                let denoised2 = try run.denoise(x2, sigma(sMid))
                (sd, su) = KDiffusion.ancestralStep(from: sigma(t), to: sigma(tNext), eta: eta)
                let tNext_ = KDiffusion.t(sd)
                let blended = try denoised * (1 - fac) + denoised2 * fac
                x = try x * (sigma(tNext_) / sigma(t)) - blended * Foundation.expm1(t - tNext_)
                x = try x + run.noise(sigma(t), sigma(tNext)) * (sNoise * su)
            }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
