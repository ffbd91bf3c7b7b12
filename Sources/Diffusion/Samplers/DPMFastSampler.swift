import Engine
import Foundation

/// k-diffusion's `sample_dpm_fast` (DPM-Solver-Fast, A1111's "DPM fast"): `steps` model calls
/// spread over third-order steps (then a second- and first-order one) evenly in log sigma between
/// the model's own sigma_max and sigma_min, as A1111 calls it (the schedule only scales the
/// initial noise). With eta (A1111 passes its 1) each step adds ancestral noise from the image RNG.
struct DPMFastSampler: SamplingMethod {
    let name = "DPM fast"
    let aliases = ["k_dpm_fast"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let takesSigmaList = false
    let options: Set<SamplerOption> = [.eta, .sNoise, .etaNoiseSeedDelta]

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        let model = NoiseSchedule(alphasCumprod: run.alphasCumprod)
        guard !run.alphasCumprod.isEmpty else { throw GenerationError.invalid("DPM fast needs the model's noise schedule") }
        func sigma(_ t: Float) -> Float { Foundation.exp(-t) }
        func time(_ s: Float) -> Float { -Foundation.log(s) }
        let tStart = time(model.sigmaMax), tEnd = time(model.sigmaMin)
        let nfe = max(run.steps, 1), m = nfe / 3 + 1
        let ts = (0...m).map { NoiseSchedule.linspace(tStart, tEnd, m + 1, $0) }
        let orders = nfe % 3 == 0 ? Array(repeating: 3, count: max(m - 2, 0)) + [2, 1] : Array(repeating: 3, count: m - 1) + [nfe % 3]
        let eta = run.options.eta
        var x = start
        /// eps at time t: (x - denoised) / sigma.
        func eps(_ x: Tensor, _ t: Float) throws -> Tensor { try (x - run.denoise(x, sigma(t))) * (1 / sigma(t)) }
        for (i, order) in orders.enumerated() {
            let t = ts[i], tNext = ts[i + 1]
            var target = tNext, up: Float = 0
            if eta != 0 {
                let (down, _) = KDiffusion.ancestralStep(from: sigma(t), to: sigma(tNext), eta: eta)
                target = min(tEnd, time(down))
                up = (sigma(tNext) * sigma(tNext) - sigma(target) * sigma(target)).squareRoot()
            }
            let e = try eps(x, t)
            let h = target - t, sNext = sigma(target)
            switch order {
            case 1:
                x = try x - e * (sNext * Foundation.expm1(h))
            case 2:
                let r1: Float = 0.5, s1 = t + r1 * h
                let u1 = try x - e * (sigma(s1) * Foundation.expm1(r1 * h))
                let e1 = try eps(u1, s1)
                x = try x - e * (sNext * Foundation.expm1(h)) - (e1 - e) * (sNext / (2 * r1) * Foundation.expm1(h))
            default:
                let r1: Float = 1.0 / 3, r2: Float = 2.0 / 3, s1 = t + r1 * h, s2 = t + r2 * h
                let u1 = try x - e * (sigma(s1) * Foundation.expm1(r1 * h))
                let e1 = try eps(u1, s1)
                let u2 = try x - e * (sigma(s2) * Foundation.expm1(r2 * h))
                    - (e1 - e) * (sigma(s2) * (r2 / r1) * (Foundation.expm1(r2 * h) / (r2 * h) - 1))
                let e2 = try eps(u2, s2)
                x = try x - e * (sNext * Foundation.expm1(h)) - (e2 - e) * (sNext / r2 * (Foundation.expm1(h) / h - 1))
            }
            // k-diffusion draws the step's noise whether or not eta uses it.
            x = try x + run.noise(sigma(t), sigma(tNext)) * (up * run.options.sNoise)
            try run.afterStep(i + 1, orders.count)
        }
        return x
    }
}
