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
        try KDiffusion.stepping(from: start, run) { x, i, _, sNext in
            let (churned, sigmaHat) = try KDiffusion.churn(x, step: i, run)
            let d = try KDiffusion.derivative(churned, sigmaHat, run.denoise(churned, sigmaHat))
            guard sNext != 0 else { return try churned + d * (sNext - sigmaHat) }
            let mid = KDiffusion.logMidpoint(sigmaHat, sNext)
            let x2 = try churned + d * (mid - sigmaHat)
            return try churned + KDiffusion.derivative(x2, mid, run.denoise(x2, mid)) * (sNext - sigmaHat)
        }
    }
}
