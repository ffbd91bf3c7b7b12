import Engine

/// A1111's PLMS (`modules/sd_samplers_timesteps_impl.py`), a timestep sampler like DDIM (its
/// timesteps, its unscaled start): the first step a pseudo improved Euler (two model calls),
/// then Adams-Bashforth of order 2, 3 and 4 over the last noise predictions, each step
/// `x = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev) eps'`. No noise.
struct PLMSSampler: SamplingMethod {
    let name = "PLMS"
    let aliases = ["plms"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let usesTimesteps = true

    func start(_ noise: Tensor, _ run: SamplingRun) throws -> Tensor { noise }

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        let ts = DDIMSampler.timesteps(steps: run.steps), ac = run.alphasCumprod
        let alphas = ts.map { ac[$0] }
        let alphasPrev = ([0] + ts.dropLast()).map { Float(Double(ac[$0])) }
        var x = start
        var old: [Tensor] = []
        /// The step from x at `index` with noise prediction `e`.
        func previous(_ x: Tensor, _ e: Tensor, _ index: Int) throws -> Tensor {
            let aT = alphas[index], aPrev = alphasPrev[index]
            let predX0 = try (x - e * (1 - aT).squareRoot()) * (1 / aT.squareRoot())
            return try predX0 * aPrev.squareRoot() + e * (1 - aPrev).squareRoot()
        }
        let steps = ts.count - 1
        for i in 0..<steps {
            let index = ts.count - 1 - i
            let e = try run.predictNoise(x, Float(ts[index]))
            let ePrime: Tensor
            switch old.count {
            case 0:
                let next = try run.predictNoise(previous(x, e, index), Float(ts[max(index - 1, 0)]))
                ePrime = try (e + next) * 0.5
            case 1: ePrime = try (e * 3 - old[0]) * 0.5
            case 2: ePrime = try (e * 23 - old[1] * 16 + old[0] * 5) * (1 / 12)
            default: ePrime = try (e * 55 - old[2] * 59 + old[1] * 37 - old[0] * 9) * (1 / 24)
            }
            x = try previous(x, ePrime, index)
            old.append(e)
            if old.count >= 4 { old.removeFirst() }
            try run.afterStep(i + 1, steps)
        }
        return x
    }
}
