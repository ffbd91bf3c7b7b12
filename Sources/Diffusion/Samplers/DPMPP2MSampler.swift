import Engine
import Foundation

/// k-diffusion's `sample_dpmpp_2m` (A1111's "DPM++ 2M").
struct DPMPP2MSampler: SamplingMethod {
    let name = "DPM++ 2M"
    let aliases = ["k_dpmpp_2m"]
    let defaultSchedule = NoiseSchedule.Kind.karras

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        var oldDenoised: Tensor?
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try run.denoise(x, s)
            let t = KDiffusion.t(s), tNext = KDiffusion.t(sNext), h = tNext - t
            let ratio = KDiffusion.sigma(tNext) / KDiffusion.sigma(t), c = -Foundation.expm1(-h)
            if let old = oldDenoised, sNext != 0 {
                let r = (t - KDiffusion.t(sigmas[i - 1])) / h
                let a = 1 + 1 / (2 * r), b = 1 / (2 * r)
                x = try x * ratio + (denoised * a - old * b) * c
            } else {
                x = try x * ratio + denoised * c
            }
            oldDenoised = denoised
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
