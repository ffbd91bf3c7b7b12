import Engine

/// k-diffusion's `sample_heun` (A1111's "Heun"), with Karras's churn options.
struct HeunSampler: SamplingMethod {
    let name = "Heun"
    let aliases = ["k_heun"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let options = SamplerOption.churn

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        try KDiffusion.stepping(from: start, run) { x, i, _, next in
            let (churned, sigmaHat) = try KDiffusion.churn(x, step: i, run)
            return try KDiffusion.heunStep(churned, from: sigmaHat, to: next, run)
        }
    }
}
