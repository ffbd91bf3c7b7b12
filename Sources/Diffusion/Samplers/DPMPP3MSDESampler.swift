import Engine
import Foundation

/// k-diffusion's `sample_dpmpp_3m_sde` (A1111's "DPM++ 3M SDE": exponential schedule, the
/// second-to-last sigma dropped). Its step noise is A1111's Brownian
/// tree (`BrownianTreeNoise`, through the run's `noise`).
struct DPMPP3MSDESampler: SamplingMethod {
    let name = "DPM++ 3M SDE"
    let aliases = ["k_dpmpp_3m_sde"]
    let defaultSchedule = NoiseSchedule.Kind.exponential
    let discardsPenultimateSigma = true
    let options: Set<SamplerOption> = [.eta, .sNoise]
    let usesBrownianNoise = true

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1, eta = run.options.eta
        var denoised1: Tensor?, denoised2: Tensor?
        var h1: Float?, h2: Float?
        var h: Float = 0
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try run.denoise(x, s)
            if sNext == 0 {
                x = denoised
            } else {
                h = Foundation.log(s) - Foundation.log(sNext)
                let hEta = h * (eta + 1)
                x = try x * Foundation.exp(-hEta) + denoised * -Foundation.expm1(-hEta)
                let phi2 = Foundation.expm1(-hEta) / hEta + 1
                if let d1p = denoised1, let d2p = denoised2, let a = h1, let b = h2 {
                    let r0 = a / h, r1 = b / h
                    let d10 = try (denoised - d1p) * (1 / r0), d11 = try (d1p - d2p) * (1 / r1)
                    let d1 = try d10 + (d10 - d11) * (r0 / (r0 + r1))
                    let d2 = try (d10 - d11) * (1 / (r0 + r1))
                    let phi3 = phi2 / hEta - 0.5
                    x = try x + d1 * phi2 - d2 * phi3
                } else if let d1p = denoised1, let a = h1 {
                    x = try x + (denoised - d1p) * (phi2 / (a / h))
                }
                if eta != 0 {
                    x = try x + run.noise(s, sNext) * (sNext * (-Foundation.expm1(-2 * h * eta)).squareRoot() * run.options.sNoise)
                }
            }
            (denoised2, denoised1) = (denoised1, denoised)
            (h2, h1) = (h1, h)
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
