import Engine

/// k-diffusion's `sample_dpm_2_ancestral` (A1111's "DPM2 a"); A1111 drops the second-to-last sigma.
struct DPM2AncestralSampler: SamplingMethod {
    let name = "DPM2 a"
    let aliases = ["k_dpm_2_a"]
    let defaultSchedule = NoiseSchedule.Kind.karras
    let discardsPenultimateSigma = true
    let options: Set<SamplerOption> = [.eta, .sNoise, .etaNoiseSeedDelta]

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try run.denoise(x, s)
            let (down, up) = KDiffusion.ancestralStep(from: s, to: sNext, eta: run.options.eta)
            let d = try KDiffusion.derivative(x, s, denoised)
            if down == 0 {
                x = try x + d * (down - s)
            } else {
                let mid = KDiffusion.logMidpoint(s, down)
                let x2 = try x + d * (mid - s)
                x = try x + KDiffusion.derivative(x2, mid, run.denoise(x2, mid)) * (down - s)
                x = try x + run.noise(s, sNext) * (run.options.sNoise * up)
            }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
