import Engine
import Foundation

/// k-diffusion's `sample_dpmpp_2s_ancestral` (A1111's "DPM++ 2S a").
struct DPMPP2SAncestralSampler: SamplingMethod {
    let name = "DPM++ 2S a"
    let aliases = ["k_dpmpp_2s_a"]
    let defaultSchedule = NoiseSchedule.Kind.karras
    let options: Set<SamplerOption> = [.eta, .sNoise, .etaNoiseSeedDelta]

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        try KDiffusion.stepping(from: start, run) { x, _, s, sNext in
            let denoised = try run.denoise(x, s)
            let (down, up) = KDiffusion.ancestralStep(from: s, to: sNext, eta: run.options.eta)
            let stepped: Tensor
            if down == 0 {
                stepped = try x + KDiffusion.derivative(x, s, denoised) * (down - s)
            } else {
                let t = KDiffusion.t(s), tNext = KDiffusion.t(down), h = tNext - t, sMid = t + 0.5 * h
                let x2 = try x * (KDiffusion.sigma(sMid) / KDiffusion.sigma(t)) - denoised * Foundation.expm1(-h * 0.5)
                let denoised2 = try run.denoise(x2, KDiffusion.sigma(sMid))
                stepped = try x * (KDiffusion.sigma(tNext) / KDiffusion.sigma(t)) - denoised2 * Foundation.expm1(-h)
            }
            return sNext > 0 ? try stepped + run.noise(s, sNext) * (run.options.sNoise * up) : stepped
        }
    }
}
