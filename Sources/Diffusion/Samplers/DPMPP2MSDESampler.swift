import Engine
import Foundation

/// k-diffusion's `sample_dpmpp_2m_sde`: A1111's "DPM++ 2M SDE" (the midpoint solver) and "DPM++
/// 2M SDE Heun" (`solver_type="heun"`). Its noise comes from the run's `noise` (the image RNG;
/// A1111 uses a Brownian tree there).
struct DPMPP2MSDESampler: SamplingMethod {
    /// How the second-order correction is taken.
    enum Solver: Sendable { case midpoint, heun }

    let solver: Solver
    var name: String { solver == .heun ? "DPM++ 2M SDE Heun" : "DPM++ 2M SDE" }
    var aliases: [String] { solver == .heun ? ["k_dpmpp_2m_sde_heun"] : ["k_dpmpp_2m_sde", "k_dpmpp_2m_sde_ka"] }
    let defaultSchedule = NoiseSchedule.Kind.exponential
    let options: Set<SamplerOption> = [.eta, .sNoise]
    let usesBrownianNoise = true

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1, eta = run.options.eta
        var oldDenoised: Tensor?
        var hLast: Float?
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try run.denoise(x, s)
            var h: Float?
            if sNext == 0 {
                x = denoised
            } else {
                let t = -Foundation.log(s), sT = -Foundation.log(sNext), hh = sT - t, etaH = eta * hh
                h = hh
                let decay = sNext / s * Foundation.exp(-etaH), c = -Foundation.expm1(-hh - etaH)
                x = try x * decay + denoised * c
                if let old = oldDenoised, let hl = hLast {
                    let r = hl / hh
                    // Heun: (c / (-h - eta h) + 1) / r; midpoint: c / 2 / r.
                    let weight = solver == .heun ? (c / (-hh - etaH) + 1) * (1 / r) : 0.5 * c * (1 / r)
                    x = try x + (denoised - old) * weight
                }
                if eta != 0 {
                    x = try x + run.noise(s, sNext) * (sNext * (-Foundation.expm1(-2 * etaH)).squareRoot() * run.options.sNoise)
                }
            }
            oldDenoised = denoised
            hLast = h
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
