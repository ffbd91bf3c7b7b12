import Engine

/// k-diffusion's `sample_dpm_2` (A1111's "DPM2"), with Karras's churn options; A1111 drops the
/// second-to-last sigma for it.
struct DPM2Sampler: SamplingMethod {
    let name = "DPM2"
    let aliases = ["k_dpm_2"]
    let defaultSchedule = NoiseSchedule.Kind.karras
    let discardsPenultimateSigma = true
    let options = SamplerOption.churn

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        for i in 0..<steps {
            let (churned, sigmaHat) = try KDiffusion.churn(x, step: i, run)
            let sNext = sigmas[i + 1]
            let d = try KDiffusion.derivative(churned, sigmaHat, run.denoise(churned, sigmaHat))
            if sNext == 0 {
                x = try churned + d * (sNext - sigmaHat)
            } else {
                let mid = KDiffusion.logMidpoint(sigmaHat, sNext)
                let x2 = try churned + d * (mid - sigmaHat)
                x = try churned + KDiffusion.derivative(x2, mid, run.denoise(x2, mid)) * (sNext - sigmaHat)
            }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
