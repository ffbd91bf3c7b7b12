import Engine

/// k-diffusion's `sample_dpm_2_ancestral` (A1111's "DPM2 a"); A1111 drops the second-to-last sigma.
struct DPM2AncestralSampler: SamplingMethod {
    let name = "DPM2 a"
    let aliases = ["k_dpm_2_a"]
    let defaultSchedule = NoiseSchedule.Kind.karras
    let discardsPenultimateSigma = true
    let options: Set<SamplerOption> = [.eta, .sNoise, .etaNoiseSeedDelta]

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        try KDiffusion.stepping(from: start, run) { x, _, s, sNext in
            let denoised = try run.denoise(x, s)
            let (down, up) = KDiffusion.ancestralStep(from: s, to: sNext, eta: run.options.eta)
            let d = try KDiffusion.derivative(x, s, denoised)
            guard down != 0 else { return try x + d * (down - s) }
            let mid = KDiffusion.logMidpoint(s, down)
            let x2 = try x + d * (mid - s)
            let stepped = try x + KDiffusion.derivative(x2, mid, run.denoise(x2, mid)) * (down - s)
            return try stepped + run.noise(s, sNext) * (run.options.sNoise * up)
        }
    }
}
