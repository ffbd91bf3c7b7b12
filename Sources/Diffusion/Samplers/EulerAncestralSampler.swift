import Engine

/// k-diffusion's `sample_euler_ancestral` (A1111's "Euler a"). A1111 passes it eta but not
/// s_noise (it is not in A1111's `sampler_extra_params` for this sampler).
struct EulerAncestralSampler: SamplingMethod {
    let name = "Euler a"
    let aliases = ["k_euler_a", "k_euler_ancestral"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let options: Set<SamplerOption> = [.eta, .etaNoiseSeedDelta]

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try run.denoise(x, s)
            let (down, up) = KDiffusion.ancestralStep(from: s, to: sNext, eta: run.options.eta)
            x = try x + KDiffusion.derivative(x, s, denoised) * (down - s)
            if sNext > 0 { x = try x + run.noise(s, sNext) * up }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
