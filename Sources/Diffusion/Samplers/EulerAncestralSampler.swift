import Engine

/// k-diffusion's `sample_euler_ancestral` (A1111's "Euler a"). A1111 passes it eta but not
/// s_noise (it is not in A1111's `sampler_extra_params` for this sampler).
struct EulerAncestralSampler: SamplingMethod {
    let name = "Euler a"
    let aliases = ["k_euler_a", "k_euler_ancestral"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let options: Set<SamplerOption> = [.eta, .etaNoiseSeedDelta]

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        try KDiffusion.stepping(from: start, run) { x, _, s, sNext in
            let denoised = try run.denoise(x, s)
            let (down, up) = KDiffusion.ancestralStep(from: s, to: sNext, eta: run.options.eta)
            let stepped = try x + KDiffusion.derivative(x, s, denoised) * (down - s)
            return sNext > 0 ? try stepped + run.noise(s, sNext) * up : stepped
        }
    }
}
