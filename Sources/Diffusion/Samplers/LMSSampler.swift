import Engine

/// k-diffusion's `sample_lms` (A1111's "LMS"), order 4.
struct LMSSampler: SamplingMethod {
    let name = "LMS"
    let aliases = ["k_lms"]
    let defaultSchedule = NoiseSchedule.Kind.uniform

    func sample(_ start: Tensor, _ run: SamplingRun) throws -> Tensor {
        var x = start
        let sigmas = run.sigmas, steps = sigmas.count - 1
        var history: [Tensor] = []   // derivatives, most recent last
        for i in 0..<steps {
            history.append(try KDiffusion.derivative(x, sigmas[i], run.denoise(x, sigmas[i])))
            if history.count > 4 { history.removeFirst() }
            let order = min(i + 1, 4)
            for j in 0..<order {
                x = try x + history[history.count - 1 - j] * Self.coefficient(order: order, sigmas: sigmas, i: i, j: j)
            }
            try run.afterStep(i + 1, steps)
        }
        return x
    }

    /// The linear multistep coefficient: the integral over [sigma_i, sigma_i+1] of the Lagrange
    /// basis polynomial for point j (k-diffusion integrates it with scipy's quad; the integrand is
    /// a polynomial of degree < 4, so 4-point Gauss-Legendre is exact).
    static func coefficient(order: Int, sigmas: [Float], i: Int, j: Int) -> Float {
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
