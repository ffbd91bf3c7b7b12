import Engine

/// k-diffusion's `sample_euler` (A1111's "Euler"), with Karras's churn options.
struct EulerSampler: SamplingMethod {
    let name = "Euler"
    let aliases = ["k_euler"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let options = SamplerOption.churn

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        try KDiffusion.stepping(from: start, run) { x, i, _, next in
            let (churned, sigmaHat) = try KDiffusion.churn(x, step: i, run)
            let d = try KDiffusion.derivative(churned, sigmaHat, run.denoise(churned, sigmaHat))
            return try churned + d * (next - sigmaHat)
        }
    }
}
