import Engine
import Foundation

/// UniPC's settings as A1111 names them (its "UniPC variant", "UniPC skip type", "UniPC order",
/// "UniPC lower order final" options; A1111's defaults).
public struct UniPCOptions: Sendable, Equatable {
    /// The B(h) of the update: "bh1" (h), "bh2" (e^h - 1) or "vary_coeff" (the varying-coefficient solver).
    public var variant = "bh1"
    /// How the times are spaced: "time_uniform", "time_quadratic" or "logSNR".
    public var skipType = "time_uniform"
    /// The multistep order (at most the number of steps).
    public var order = 3
    /// Lower the order over the last steps (UniPC's `lower_order_final`).
    public var lowerOrderFinal = true

    public static let variants = ["bh1", "bh2", "vary_coeff"]
    public static let skipTypes = ["time_uniform", "time_quadratic", "logSNR"]

    public init() {}
}

/// A1111's UniPC (`sd_samplers_timesteps_impl.unipc` over `models/diffusion/uni_pc`, Zhao et al.
/// 2023): a timestep sampler in the VP time of the model's discrete schedule. log(alpha_t) is the
/// piecewise-linear interpolation of 0.5 log(alphas_cumprod) over t_n = (n + 1) / N; the solver
/// runs from t = 1 to t = 1 / N over A1111's timestep count (`range(0, 1000, 1000 // steps)`,
/// which can be one more than the steps set), spaced as the skip type says; the model gets the
/// time (t - 1/N) x 1000 (a fractional timestep) and UniPC works on its data prediction
/// x0 = (x - sigma_t eps) / alpha_t, multistep, with the corrector on every step but the last.
struct UniPCSampler: SamplingMethod {
    let name = "UniPC"
    let aliases = ["unipc"]
    let defaultSchedule = NoiseSchedule.Kind.uniform
    let usesTimesteps = true
    let options: Set<SamplerOption> = [.uniPC]

    func start(_ noise: Tensor, _ run: SamplingRun) throws -> Tensor { noise }

    /// The discrete VP schedule in continuous time (`NoiseScheduleVP('discrete')`), float32 as torch.
    struct VPSchedule {
        let times: [Float]        // t_n = (n + 1) / N
        let logAlphas: [Float]    // 0.5 log(alphas_cumprod_n)

        init(alphasCumprod ac: [Float]) {
            let n = ac.count
            times = (1...n).map { NoiseSchedule.linspace(0, 1, n + 1, $0) }   // torch.linspace(0, 1, N + 1)[1:]
            logAlphas = ac.map { 0.5 * Foundation.log($0) }
        }

        var count: Int { times.count }

        /// Piecewise-linear interpolation through (xs, ys), xs ascending, extended by the end segments.
        static func interpolate(_ x: Float, _ xs: [Float], _ ys: [Float]) -> Float {
            var k = 0
            while k < xs.count - 2 && x > xs[k + 1] { k += 1 }
            return ys[k] + (x - xs[k]) * (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])
        }

        func logAlpha(_ t: Float) -> Float { Self.interpolate(t, times, logAlphas) }
        func alpha(_ t: Float) -> Float { Foundation.exp(logAlpha(t)) }
        func sigma(_ t: Float) -> Float { (1 - Foundation.exp(2 * logAlpha(t))).squareRoot() }
        func lambda(_ t: Float) -> Float {
            let l = logAlpha(t)
            return l - 0.5 * Foundation.log(1 - Foundation.exp(2 * l))
        }
        /// The time of a half-logSNR (`inverse_lambda`).
        func time(lambda: Float) -> Float {
            // log_alpha = -0.5 logaddexp(0, -2 lambda)
            let m = max(0, -2 * lambda)
            let logAlpha = -0.5 * (m + Foundation.log(Foundation.exp(-m) + Foundation.exp(-2 * lambda - m)))
            return Self.interpolate(logAlpha, logAlphas.reversed(), times.reversed())
        }
    }

    /// The N + 1 solver times from `tT` down to `t0` (`get_time_steps`).
    static func times(_ skipType: String, from tT: Float, to t0: Float, steps n: Int, _ vp: VPSchedule) -> [Float] {
        switch skipType {
        case "logSNR":
            let lT = vp.lambda(tT), l0 = vp.lambda(t0)
            return (0...n).map { vp.time(lambda: NoiseSchedule.linspace(lT, l0, n + 1, $0)) }
        case "time_quadratic":
            return (0...n).map { Foundation.pow(NoiseSchedule.linspace(tT.squareRoot(), t0.squareRoot(), n + 1, $0), 2) }
        default:
            return (0...n).map { NoiseSchedule.linspace(tT, t0, n + 1, $0) }
        }
    }

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        let o = run.options.uniPC
        let vp = VPSchedule(alphasCumprod: run.alphasCumprod)
        let steps = DDIMSampler.timesteps(steps: run.steps).count
        let order = o.order
        guard order >= 1, steps >= order else {
            throw GenerationError.invalid("UniPC order \(order) must be at most the number of steps (\(steps))")
        }
        let t0 = 1 / Float(vp.count)
        let ts = Self.times(o.skipType, from: 1, to: t0, steps: steps, vp)
        /// The data prediction at time t.
        func model(_ x: Tensor, _ t: Float) throws -> Tensor {
            let eps = try run.predictNoise(x, (t - t0) * 1000)
            return try (x - eps * vp.sigma(t)) * (1 / vp.alpha(t))
        }
        var x = start
        var models = [try model(x, ts[0])], times = [ts[0]]
        var done = 0
        for initOrder in 1..<order {
            let (nx, m) = try update(x, models, times, ts[initOrder], initOrder, corrector: true, vp, o.variant, model)
            x = nx
            models.append(try m ?? model(x, ts[initOrder]))
            times.append(ts[initOrder])
            done += 1
            try run.afterStep(done, steps)
        }
        if order <= steps {
            for step in order...steps {
                let stepOrder = o.lowerOrderFinal ? min(order, steps + 1 - step) : order
                let (nx, m) = try update(x, models, times, ts[step], stepOrder, corrector: step != steps, vp, o.variant, model)
                x = nx
                models.removeFirst(); times.removeFirst()
                times.append(ts[step])
                if step < steps { models.append(try m ?? model(x, ts[step])) }
                done += 1
                try run.afterStep(done, steps)
            }
        }
        return x
    }

    /// One multistep update to time `t` of order `order` from the last data predictions
    /// (`multistep_uni_pc_bh_update` / `multistep_uni_pc_vary_update`, predict_x0): the new x
    /// and, when the corrector ran, the data prediction at the predicted point.
    func update(_ x: Tensor, _ models: [Tensor], _ times: [Float], _ t: Float, _ order: Int, corrector: Bool,
                _ vp: VPSchedule, _ variant: String, _ model: (Tensor, Float) throws -> Tensor) throws -> (Tensor, Tensor?) {
        let tPrev0 = times[times.count - 1], mPrev0 = models[models.count - 1]
        let lambdaPrev0 = vp.lambda(tPrev0), lambdaT = vp.lambda(t)
        let sigmaPrev0 = vp.sigma(tPrev0), sigmaT = vp.sigma(t), alphaT = Foundation.exp(vp.logAlpha(t))
        let h = lambdaT - lambdaPrev0
        var rks: [Float] = [], d1s: [Tensor] = []
        for i in 1..<max(order, 1) {
            let rk = (vp.lambda(times[times.count - 1 - i]) - lambdaPrev0) / h
            rks.append(rk)
            d1s.append(try (models[models.count - 1 - i] - mPrev0) * (1 / rk))
        }
        rks.append(1)
        let hh = -h
        let hPhi1 = Foundation.expm1(hh)
        /// sum_k c[k] D1s[k]
        func combine(_ c: [Float]) throws -> Tensor? {
            var acc: Tensor?
            for (k, d) in d1s.enumerated() { acc = try acc.map { try $0 + d * c[k] } ?? d * c[k] }
            return acc
        }
        let xT_ = try x * (sigmaT / sigmaPrev0) - mPrev0 * (alphaT * hPhi1)
        if variant == "vary_coeff" {
            let k = rks.count
            // C[i][j] = rks[i]^j / (j + 1)!
            var c = [[Float]](repeating: [Float](repeating: 0, count: k), count: k)
            for i in 0..<k {
                var col: Float = 1
                for j in 0..<k { c[i][j] = col; col = col * rks[i] / Float(j + 2) }
            }
            var hPhiKs: [Float] = [], hPhiK = hPhi1, factorial: Float = 1
            for j in 1...(k + 1) { hPhiKs.append(hPhiK); hPhiK = hPhiK / hh - 1 / factorial; factorial *= Float(j + 1) }
            var xT = xT_
            if !d1s.isEmpty {
                let aP = try LinearSolve.inverse(Array(c.prefix(k - 1).map { Array($0.prefix(k - 1)) }))
                for r in 0..<(k - 1) { xT = try xT - combine(aP[r])! * (alphaT * hPhiKs[r + 1]) }
            }
            guard corrector else { return (xT, nil) }
            let aC = try LinearSolve.inverse(c)
            let mT = try model(xT, t)
            let d1T = try mT - mPrev0
            xT = xT_
            var last = 0
            for r in 0..<(k - 1) { xT = try xT - combine(aC[r])! * (alphaT * hPhiKs[r + 1]); last = r }
            xT = try xT - d1T * (alphaT * hPhiKs[k] * aC[last][k - 1])
            return (xT, mT)
        }
        let bH: Float = variant == "bh2" ? Foundation.expm1(hh) : hh
        var r: [[Float]] = [], b: [Float] = []
        var hPhiK = hPhi1 / hh - 1, factorial: Float = 1
        for i in 1...order {
            r.append(rks.map { Foundation.pow($0, Float(i - 1)) })
            b.append(hPhiK * factorial / bH)
            factorial *= Float(i + 1)
            hPhiK = hPhiK / hh - 1 / factorial
        }
        var xT = xT_
        if !d1s.isEmpty {
            let rhosP: [Float] = order == 2 ? [0.5] : try LinearSolve.solve(r.prefix(order - 1).map { Array($0.prefix(order - 1)) }, Array(b.prefix(order - 1)))
            xT = try xT_ - combine(rhosP)! * (alphaT * bH)
        }
        guard corrector else { return (xT, nil) }
        let rhosC: [Float] = order == 1 ? [0.5] : try LinearSolve.solve(r, b)
        let mT = try model(xT, t)
        var res = try (mT - mPrev0) * rhosC[rhosC.count - 1]
        if let corr = try combine(rhosC) { res = try corr + res }
        return (try xT_ - res * (alphaT * bH), mT)
    }
}

/// Small dense linear systems (UniPC's order x order coefficients): Gaussian elimination with
/// partial pivoting, as LAPACK's LU that torch.linalg.solve uses.
enum LinearSolve {
    static func solve(_ a: [[Float]], _ b: [Float]) throws -> [Float] {
        let n = b.count
        var m = a, v = b
        for col in 0..<n {
            guard let p = (col..<n).max(by: { abs(m[$0][col]) < abs(m[$1][col]) }), m[p][col] != 0 else {
                throw GenerationError.invalid("UniPC: a singular coefficient system (the times of two steps coincide)")
            }
            m.swapAt(col, p); v.swapAt(col, p)
            for row in (col + 1)..<n {
                let f = m[row][col] / m[col][col]
                for j in col..<n { m[row][j] -= f * m[col][j] }
                v[row] -= f * v[col]
            }
        }
        var x = [Float](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = v[row]
            for j in (row + 1)..<n { s -= m[row][j] * x[j] }
            x[row] = s / m[row][row]
        }
        return x
    }

    /// The inverse, column by column.
    static func inverse(_ a: [[Float]]) throws -> [[Float]] {
        let n = a.count
        let cols = try (0..<n).map { j in try solve(a, (0..<n).map { $0 == j ? 1 : 0 }) }
        return (0..<n).map { i in (0..<n).map { j in cols[j][i] } }
    }
}
