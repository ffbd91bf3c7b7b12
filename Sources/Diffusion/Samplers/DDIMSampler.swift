import Engine

/// A1111's DDIM (`modules/sd_samplers_timesteps_impl.py`): timesteps `range(0, 1000, 1000 / n) + 1`,
/// the raw noise as the start (not scaled), `n - 1` model calls from the highest timestep down,
/// each step `x = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev - sigma^2) eps + sigma noise` with eta 0
/// (A1111's `eta_ddim`). Noise is drawn once a step, as A1111's randn_like replacement is, even
/// though eta 0 leaves it unused. "DDIM CFG++" (`ddim_cfgpp`, CFG++ by Chung et al. 2024) guides
/// with the scale divided by 12.5 and points the step's direction along the unconditional
/// prediction instead of the guided one.
struct DDIMSampler: SamplingMethod {
    /// DDIM CFG++ rather than DDIM.
    var cfgpp = false
    var name: String { cfgpp ? "DDIM CFG++" : "DDIM" }
    var aliases: [String] { cfgpp ? ["ddim_cfgpp"] : ["ddim"] }
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let usesTimesteps = true
    var eta: Float = 0

    /// A1111's timesteps for `steps`.
    static func timesteps(steps: Int) -> [Int] {
        let stride = 1000 / max(steps, 1)
        return Swift.stride(from: 0, to: 1000, by: stride).map { min($0 + 1, 999) }
    }

    func start(_ noise: Tensor, _ run: SamplingRun) throws -> Tensor { noise }

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        let ts = Self.timesteps(steps: run.steps), ac = run.alphasCumprod
        let alphas = ts.map { ac[$0] }
        let alphasPrev = ([0] + ts.dropLast()).map { Double(ac[$0]) }
        var x = start
        let steps = ts.count - 1
        for i in 0..<steps {
            let index = ts.count - 1 - i
            let eps: Tensor, direction: Tensor
            if cfgpp {
                (eps, direction) = try run.predictNoiseAndUncond(x, Float(ts[index]), 1 / 12.5)
            } else {
                eps = try run.predictNoise(x, Float(ts[index]))
                direction = eps
            }
            let aT = alphas[index], aPrev = Float(alphasPrev[index])
            let sigma = Float(Double(eta) * ((1 - alphasPrev[index]) / Double(1 - aT) * (1 - Double(aT) / alphasPrev[index])).squareRoot())
            let noise = try run.noise(0, 0)
            let predX0 = try (x - eps * (1 - aT).squareRoot()) * (1 / aT.squareRoot())
            x = try predX0 * aPrev.squareRoot() + direction * (1 - aPrev - sigma * sigma).squareRoot()
            if sigma != 0 { x = try x + noise * sigma }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
