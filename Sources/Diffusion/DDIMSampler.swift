import Foundation

/// A noise prediction at an integer timestep (A1111's timestep samplers call the model this way,
/// without k-diffusion's sigma scaling).
public typealias EpsModel = (_ x: [Float], _ timestep: Float) throws -> [Float]

/// A1111's DDIM (`modules/sd_samplers_timesteps_impl.py`): timesteps `range(0, 1000, 1000 / n) + 1`,
/// the raw noise as the start (not scaled), `n - 1` model calls from the highest timestep down,
/// each step `x = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev - sigma^2) eps + sigma noise`.
public struct DDIMSampler {
    public let alphasCumprod: [Float]
    public var eta: Float = 0

    public init(alphasCumprod: [Float], eta: Float = 0) {
        self.alphasCumprod = alphasCumprod
        self.eta = eta
    }

    public func timesteps(steps: Int) -> [Int] {
        let stride = 1000 / max(steps, 1)
        return Swift.stride(from: 0, to: 1000, by: stride).map { min($0 + 1, 999) }
    }

    /// Samples from `x` (the unscaled initial noise); `noise()` is called once a step, as A1111's
    /// randn_like replacement is, even when eta is 0.
    public func sample(_ model: EpsModel, x start: [Float], steps: Int, noise: () -> [Float],
                       afterStep: ((Int) throws -> Void)? = nil) throws -> [Float] {
        let ts = timesteps(steps: steps)
        let alphas = ts.map { alphasCumprod[$0] }
        let alphasPrev = ([0] + ts.dropLast()).map { Double(alphasCumprod[$0]) }
        var x = start
        for i in 0..<(ts.count - 1) {
            let index = ts.count - 1 - i
            let eps = try model(x, Float(ts[index]))
            let aT = alphas[index], aPrev = Float(alphasPrev[index])
            let sigma = Float(Double(eta) * ((1 - alphasPrev[index]) / Double(1 - aT) * (1 - Double(aT) / alphasPrev[index])).squareRoot())
            let sqrtOneMinus = (1 - aT).squareRoot()
            let n = noise()
            let dirScale = (1 - aPrev - sigma * sigma).squareRoot()
            x = (0..<x.count).map { k in
                let predX0 = (x[k] - sqrtOneMinus * eps[k]) / aT.squareRoot()
                return aPrev.squareRoot() * predX0 + dirScale * eps[k] + (sigma == 0 ? 0 : sigma * n[k])
            }
            try afterStep?(i)
        }
        return x
    }
}
