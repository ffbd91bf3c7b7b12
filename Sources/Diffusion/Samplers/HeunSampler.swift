import Engine

/// k-diffusion's `sample_heun` (A1111's "Heun"), with Karras's churn options.
struct HeunSampler: SamplingMethod {
    let name = "Heun"
    let aliases = ["k_heun"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let options = SamplerOption.churn

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        for i in 0..<steps {
            let (churned, sigmaHat) = try KDiffusion.churn(x, step: i, run)
            x = try KDiffusion.heunStep(churned, from: sigmaHat, to: sigmas[i + 1], run)
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
