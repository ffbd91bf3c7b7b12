import Engine

/// A1111's "Restart" (`modules/sd_samplers_extra.py`, Restart Sampling, Xu et al. 2023): Heun
/// steps; from 20 steps on, the schedule is remade as Karras over the steps less the restart
/// steps (9 once, or steps / 4 twice from 36 steps), and at the sigma nearest 0.1 the path jumps
/// back up to the sigma nearest 2 with fresh noise from the image RNG, then runs down again on a
/// Karras schedule of restart steps + 1.
struct RestartSampler: SamplingMethod {
    let name = "Restart"
    let aliases = ["restart"]
    let defaultSchedule = NoiseSchedule.Kind.karras

    /// The index of the sigma nearest `value` (the first of equals, as torch's argmin).
    static func nearest(_ sigmas: [Float], _ value: Float) -> Int {
        var best = 0
        for (i, s) in sigmas.enumerated() where abs(s - value) < abs(sigmas[best] - value) { best = i }
        return best
    }

    /// The (from, to) sigma pairs Restart steps through.
    static func stepList(_ given: [Float]) -> [(Float, Float)] {
        var sigmas = given
        let steps = given.count - 1
        var restart: (index: Int, steps: Int, times: Int, max: Float)?
        if steps >= 20, given.count >= 2 {
            let (restartSteps, times) = steps >= 36 ? (steps / 4, 2) : (9, 1)
            sigmas = NoiseSchedule.karras(steps: steps - restartSteps * times, sigmaMin: Double(given[given.count - 2]), sigmaMax: Double(given[0]))
            restart = (nearest(sigmas, 0.1), restartSteps + 1, times, 2)
        }
        var list: [(Float, Float)] = []
        for i in 0..<(sigmas.count - 1) {
            list.append((sigmas[i], sigmas[i + 1]))
            if let r = restart, i + 1 == r.index {
                let minIndex = i + 1, maxIndex = nearest(sigmas, r.max)
                if maxIndex < minIndex {
                    let down = Array(NoiseSchedule.karras(steps: r.steps, sigmaMin: Double(sigmas[minIndex]), sigmaMax: Double(sigmas[maxIndex])).dropLast())
                    for _ in 0..<r.times { list += zip(down.dropLast(), down.dropFirst()).map { ($0, $1) } }
                }
            }
        }
        return list
    }

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        let list = Self.stepList(run.sigmas)
        var x = start
        var last: Float?
        for (i, (old, new)) in list.enumerated() {
            if let l = last, l < old { x = try x + run.noise(l, old) * (old * old - l * l).squareRoot() }
            if last == nil { last = old }
            x = try KDiffusion.heunStep(x, from: old, to: new, run)
            last = new
            try run.afterStep(i + 1, list.count)
        }
        return x
    }
}
