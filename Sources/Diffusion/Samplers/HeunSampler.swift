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
            let sNext = sigmas[i + 1], dt = sNext - sigmaHat
            let d = try KDiffusion.derivative(churned, sigmaHat, run.denoise(churned, sigmaHat))
            if sNext == 0 {
                x = try churned + d * dt
            } else {
                let x2 = try churned + d * dt
                let d2 = try KDiffusion.derivative(x2, sNext, run.denoise(x2, sNext))
                x = try churned + (d + d2) * (dt / 2)
            }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
