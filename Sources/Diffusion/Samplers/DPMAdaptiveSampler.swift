import Engine
import Foundation

/// k-diffusion's `sample_dpm_adaptive` (DPM-Solver-23 with a PID step-size controller, A1111's
/// "DPM adaptive"), as A1111 calls it: between the model's own sigma_max and sigma_min, order 3,
/// rtol 0.05, atol 0.0078, h_init 0.05, eta 1 (ancestral noise from the image RNG on each accepted
/// step). It ignores the step count: the controller decides how many model calls it takes. The
/// error of a step is measured on the host (one read-back a step: the step size depends on it).
struct DPMAdaptiveSampler: SamplingMethod {
    let name = "DPM adaptive"
    let aliases = ["k_dpm_ad"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let takesSigmaList = false
    let options: Set<SamplerOption> = [.eta, .etaNoiseSeedDelta]
    /// A bound on controller iterations, so that a model whose error never falls cannot loop forever.
    static let maximumIterations = 10_000

    /// k-diffusion's `PIDStepSizeController` with A1111's coefficients (P 0, I 1, D 0), in doubles.
    struct StepSizeController {
        var h: Double
        let b1: Double, acceptSafety = 0.81
        var errors: [Double] = []

        init(h: Double, order: Double) { self.h = h; b1 = 1 / order }

        /// Updates h for `error`; whether the step is accepted.
        mutating func propose(_ error: Float) -> Bool {
            let inverse = 1 / (Double(error) + 1e-8)
            if errors.isEmpty { errors = [inverse, inverse, inverse] }
            errors[0] = inverse
            // b2 = b3 = 0 with these coefficients: factor = errors[0]^b1.
            let factor = 1 + Foundation.atan(Foundation.pow(errors[0], b1) - 1)
            let accept = factor >= acceptSafety
            if accept { errors[2] = errors[1]; errors[1] = errors[0] }
            h *= factor
            return accept
        }
    }

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        guard !run.alphasCumprod.isEmpty else { throw GenerationError.invalid("DPM adaptive needs the model's noise schedule") }
        let model = NoiseSchedule(alphasCumprod: run.alphasCumprod)
        func sigma(_ t: Float) -> Float { Foundation.exp(-t) }
        func time(_ s: Float) -> Float { -Foundation.log(s) }
        let tStart = time(model.sigmaMax), tEnd = time(model.sigmaMin)
        let eta = run.options.eta
        let (atol, rtol): (Float, Float) = (0.0078, 0.05)
        var controller = StepSizeController(h: 0.05, order: eta != 0 ? 1.5 : 3)
        var x = start, xPrevious = start
        var s = tStart, iterations = 0, accepted = 0
        func eps(_ x: Tensor, _ t: Float) throws -> Tensor { try (x - run.denoise(x, sigma(t))) * (1 / sigma(t)) }
        while s < tEnd - 1e-5 {
            iterations += 1
            guard iterations <= Self.maximumIterations else {
                throw GenerationError.invalid("DPM adaptive took more than \(Self.maximumIterations) steps without reaching the end")
            }
            let t = min(tEnd, s + Float(controller.h))
            var target = t, up: Float = 0
            if eta != 0 {
                let (down, _) = KDiffusion.ancestralStep(from: sigma(s), to: sigma(t), eta: eta)
                target = min(tEnd, time(down))
                up = (sigma(t) * sigma(t) - sigma(target) * sigma(target)).squareRoot()
            }
            // DPM-Solver-2 (r1 = 1/3) and -3 share the model calls at s and s + h/3.
            let h = target - s, sNext = sigma(target)
            let r1: Float = 1.0 / 3, r2: Float = 2.0 / 3, s1 = s + r1 * h, s2 = s + r2 * h
            let e = try eps(x, s)
            let u1 = try x - e * (sigma(s1) * Foundation.expm1(r1 * h))
            let e1 = try eps(u1, s1)
            let base = try x - e * (sNext * Foundation.expm1(h))
            let low = try base - (e1 - e) * (sNext / (2 * r1) * Foundation.expm1(h))
            let u2 = try x - e * (sigma(s2) * Foundation.expm1(r2 * h))
                - (e1 - e) * (sigma(s2) * (r2 / r1) * (Foundation.expm1(r2 * h) / (r2 * h) - 1))
            let e2 = try eps(u2, s2)
            let high = try base - (e2 - e) * (sNext / r2 * (Foundation.expm1(h) / h - 1))
            // error = |(low - high) / max(atol, rtol max(|low|, |previous low|))| / sqrt(n)
            let (l, hi, p) = (try low.toArray(), try high.toArray(), try xPrevious.toArray())
            var sum: Float = 0
            for k in l.indices {
                let delta = max(atol, rtol * max(abs(l[k]), abs(p[k])))
                let d = (l[k] - hi[k]) / delta
                sum += d * d
            }
            let error = sum.squareRoot() / Float(Double(l.count).squareRoot())
            if controller.propose(error) {
                xPrevious = low
                x = try high + run.noise(sigma(s), sigma(t)) * (up * run.options.sNoise)
                s = t
                accepted += 1
                try run.afterStep(accepted, max(accepted, run.steps))
            }
        }
        return x
    }
}
