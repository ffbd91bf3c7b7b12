import Engine

/// k-diffusion's `sample_euler` (A1111's "Euler"), with Karras's churn options.
struct EulerSampler: SamplingMethod {
    let name = "Euler"
    let aliases = ["k_euler"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let options = SamplerOption.churn

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        for i in 0..<steps {
            let (churned, sigmaHat) = try KDiffusion.churn(x, step: i, run)
            let d = try KDiffusion.derivative(churned, sigmaHat, run.denoise(churned, sigmaHat))
            x = try churned + d * (sigmas[i + 1] - sigmaHat)
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
