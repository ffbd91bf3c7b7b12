import Foundation

/// A denoiser in k-diffusion's sense: the model's estimate of the clean latent at noise level sigma.
public typealias Denoiser = (_ x: [Float], _ sigma: Float) throws -> [Float]

/// The noise that ancestral and SDE samplers add, given the step's (sigma, next sigma).
public typealias StepNoise = (_ sigma: Float, _ sigmaNext: Float) -> [Float]

/// k-diffusion's samplers under A1111's display names.
public enum Sampler: String, Sendable, CaseIterable {
    case euler = "Euler", eulerAncestral = "Euler a", heun = "Heun", dpm2 = "DPM2", dpm2Ancestral = "DPM2 a"
    case lms = "LMS", dpmpp2M = "DPM++ 2M", dpmpp2SAncestral = "DPM++ 2S a", dpmppSDE = "DPM++ SDE", dpmpp2MSDE = "DPM++ 2M SDE"
    /// A1111's DDIM runs on timesteps, not sigmas (`DDIMSampler`).
    case ddim = "DDIM"

    /// The schedule A1111 (1.9+) uses when the schedule type is "Automatic".
    public var defaultSchedule: NoiseSchedule.Kind {
        switch self {
        case .dpmpp2M, .dpmppSDE, .dpmpp2SAncestral, .dpm2, .dpm2Ancestral: return .karras
        case .dpmpp2MSDE: return .exponential
        case .euler, .eulerAncestral, .heun, .lms, .ddim: return .uniform
        }
    }

    /// A1111 drops the second-to-last sigma for these (`discard_next_to_last_sigma`).
    public var discardsPenultimateSigma: Bool { self == .dpm2 || self == .dpm2Ancestral }

    /// Whether steps add fresh noise (and so draw from the random source).
    public var isStochastic: Bool { [.eulerAncestral, .dpm2Ancestral, .dpmpp2SAncestral, .dpmppSDE, .dpmpp2MSDE].contains(self) }

    /// Looks a name up as A1111 writes it, also accepting old combined names ("DPM++ 2M Karras")
    /// and case differences; returns the sampler and the schedule the name implies, if any.
    public static func named(_ name: String) -> (Sampler, NoiseSchedule.Kind?)? {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        for kind in [NoiseSchedule.Kind.karras, .exponential] {
            let suffix = " " + kind.rawValue
            if trimmed.lowercased().hasSuffix(suffix), let s = named(String(trimmed.dropLast(suffix.count)))?.0 { return (s, kind) }
        }
        guard let s = allCases.first(where: { $0.rawValue.lowercased() == trimmed.lowercased() }) else { return nil }
        return (s, nil)
    }

    /// Runs the sampler from `x` (already scaled by the first sigma) over `sigmas` (ending in 0).
    /// `afterStep(i)` runs after each step; throwing from it stops sampling (cancellation).
    public func sample(_ model: Denoiser, x start: [Float], sigmas: [Float], noise: StepNoise, eta: Float = 1,
                       sNoise: Float = 1, afterStep: ((Int) throws -> Void)? = nil) throws -> [Float] {
        var x = start
        let steps = sigmas.count - 1
        func toD(_ x: [Float], _ sigma: Float, _ denoised: [Float]) -> [Float] { zip(x, denoised).map { ($0 - $1) / sigma } }
        func axpy(_ x: [Float], _ d: [Float], _ a: Float) -> [Float] { zip(x, d).map { $0 + $1 * a } }
        func tFn(_ s: Float) -> Float { -Foundation.log(s) }
        func sigmaFn(_ t: Float) -> Float { Foundation.exp(-t) }
        func ancestral(_ from: Float, _ to: Float) -> (down: Float, up: Float) {
            guard eta != 0 else { return (to, 0) }
            let up = min(to, eta * (to * to * (from * from - to * to) / (from * from)).squareRoot())
            return ((to * to - up * up).squareRoot(), up)
        }
        var history: [[Float]] = []            // LMS derivatives, most recent last
        var oldDenoised: [Float]? = nil
        var hLast: Float? = nil
        if self == .ddim { throw GenerationError.invalid("DDIM samples on timesteps: use DDIMSampler") }
        for i in 0..<steps {
            let s = sigmas[i], sNext = sigmas[i + 1]
            let denoised = try model(x, s)
            switch self {
            case .ddim: break
            case .euler:
                x = axpy(x, toD(x, s, denoised), sNext - s)
            case .eulerAncestral:
                let (down, up) = ancestral(s, sNext)
                x = axpy(x, toD(x, s, denoised), down - s)
                if sNext > 0 { x = axpy(x, noise(s, sNext), sNoise * up) }
            case .heun:
                let d = toD(x, s, denoised), dt = sNext - s
                if sNext == 0 { x = axpy(x, d, dt) } else {
                    let x2 = axpy(x, d, dt)
                    let d2 = toD(x2, sNext, try model(x2, sNext))
                    x = axpy(x, zip(d, d2).map { ($0 + $1) / 2 }, dt)
                }
            case .dpm2:
                let d = toD(x, s, denoised)
                if sNext == 0 { x = axpy(x, d, sNext - s) } else {
                    let mid = Foundation.exp(Foundation.log(s) + 0.5 * (Foundation.log(sNext) - Foundation.log(s)))
                    let x2 = axpy(x, d, mid - s)
                    x = axpy(x, toD(x2, mid, try model(x2, mid)), sNext - s)
                }
            case .dpm2Ancestral:
                let (down, up) = ancestral(s, sNext)
                let d = toD(x, s, denoised)
                if down == 0 { x = axpy(x, d, down - s) } else {
                    let mid = Foundation.exp(Foundation.log(s) + 0.5 * (Foundation.log(down) - Foundation.log(s)))
                    let x2 = axpy(x, d, mid - s)
                    x = axpy(x, toD(x2, mid, try model(x2, mid)), down - s)
                    x = axpy(x, noise(s, sNext), sNoise * up)
                }
            case .lms:
                history.append(toD(x, s, denoised))
                if history.count > 4 { history.removeFirst() }
                let order = min(i + 1, 4)
                for j in 0..<order {
                    x = axpy(x, history[history.count - 1 - j], Self.lmsCoefficient(order: order, sigmas: sigmas, i: i, j: j))
                }
            case .dpmpp2M:
                let t = tFn(s), tNext = tFn(sNext), h = tNext - t
                let ratio = sigmaFn(tNext) / sigmaFn(t), c = -Foundation.expm1(-h)
                if let old = oldDenoised, sNext != 0 {
                    let r = (t - tFn(sigmas[i - 1])) / h
                    let a = 1 + 1 / (2 * r), b = 1 / (2 * r)
                    x = (0..<x.count).map { k in ratio * x[k] + c * (a * denoised[k] - b * old[k]) }
                } else {
                    x = (0..<x.count).map { k in ratio * x[k] + c * denoised[k] }
                }
                oldDenoised = denoised
            case .dpmpp2SAncestral:
                let (down, up) = ancestral(s, sNext)
                if down == 0 { x = axpy(x, toD(x, s, denoised), down - s) } else {
                    let t = tFn(s), tNext = tFn(down), h = tNext - t, sMid = t + 0.5 * h
                    let x2 = (0..<x.count).map { k in sigmaFn(sMid) / sigmaFn(t) * x[k] - Foundation.expm1(-h * 0.5) * denoised[k] }
                    let denoised2 = try model(x2, sigmaFn(sMid))
                    x = (0..<x.count).map { k in sigmaFn(tNext) / sigmaFn(t) * x[k] - Foundation.expm1(-h) * denoised2[k] }
                }
                if sNext > 0 { x = axpy(x, noise(s, sNext), sNoise * up) }
            case .dpmppSDE:
                if sNext == 0 { x = axpy(x, toD(x, s, denoised), sNext - s) } else {
                    let t = tFn(s), tNext = tFn(sNext), h = tNext - t, r: Float = 0.5, sMid = t + h * r, fac = 1 / (2 * r)
                    var (sd, su) = ancestral(sigmaFn(t), sigmaFn(sMid))
                    let s_ = tFn(sd)
                    var x2 = (0..<x.count).map { k in sigmaFn(s_) / sigmaFn(t) * x[k] - Foundation.expm1(t - s_) * denoised[k] }
                    x2 = axpy(x2, noise(sigmaFn(t), sigmaFn(sMid)), sNoise * su)
                    let denoised2 = try model(x2, sigmaFn(sMid))
                    (sd, su) = ancestral(sigmaFn(t), sigmaFn(tNext))
                    let tNext_ = tFn(sd)
                    x = (0..<x.count).map { k in
                        sigmaFn(tNext_) / sigmaFn(t) * x[k] - Foundation.expm1(t - tNext_) * ((1 - fac) * denoised[k] + fac * denoised2[k])
                    }
                    x = axpy(x, noise(sigmaFn(t), sigmaFn(tNext)), sNoise * su)
                }
            case .dpmpp2MSDE:
                var h: Float? = nil
                if sNext == 0 { x = denoised } else {
                    let t = -Foundation.log(s), sT = -Foundation.log(sNext), hh = sT - t, etaH = eta * hh
                    h = hh
                    let decay = sNext / s * Foundation.exp(-etaH), c = -Foundation.expm1(-hh - etaH)
                    x = (0..<x.count).map { k in decay * x[k] + c * denoised[k] }
                    if let old = oldDenoised, let hl = hLast {
                        let r = hl / hh
                        x = (0..<x.count).map { k in x[k] + 0.5 * c * (1 / r) * (denoised[k] - old[k]) }
                    }
                    if eta != 0 { x = axpy(x, noise(s, sNext), sNext * (-Foundation.expm1(-2 * etaH)).squareRoot() * sNoise) }
                }
                oldDenoised = denoised
                hLast = h
            }
            try afterStep?(i)
        }
        return x
    }

    /// The linear multistep coefficient: the integral over [sigma_i, sigma_i+1] of the Lagrange
    /// basis polynomial for point j (k-diffusion integrates it with scipy's quad; the integrand is
    /// a polynomial of degree < 4, so 4-point Gauss-Legendre is exact).
    static func lmsCoefficient(order: Int, sigmas: [Float], i: Int, j: Int) -> Float {
        let t = sigmas.map(Double.init)
        func basis(_ tau: Double) -> Double {
            var p = 1.0
            for k in 0..<order where k != j { p *= (tau - t[i - k]) / (t[i - j] - t[i - k]) }
            return p
        }
        let nodes = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526]
        let weights = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538]
        let a = t[i], b = t[i + 1], half = (b - a) / 2, mid = (a + b) / 2
        return Float(zip(nodes, weights).map { n, w in w * basis(mid + half * n) }.reduce(0, +) * half)
    }
}
