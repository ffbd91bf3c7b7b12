import Engine

/// torch.optim.AdamW for one parameter tensor, single-tensor algorithm, float32 state, in torch's
/// order of operations: decoupled weight decay, `exp_avg.lerp_(g, 1 - beta1)`,
/// `exp_avg_sq * beta2 + (1 - beta2) g^2`, bias corrections in double,
/// `p -= (lr / bc1) * exp_avg / (sqrt(exp_avg_sq) / sqrt(bc2) + eps)`. A1111 trains embeddings
/// with lr from its schedule, betas (0.9, 0.999), eps 1e-8, weight decay 0.
public struct AdamW: Sendable {
    public var lr: Double
    public var beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.0
    /// State: first and second moments, step count.
    public var expAvg: [Float], expAvgSq: [Float]
    public var step = 0

    public init(count: Int, lr: Double) {
        self.lr = lr
        expAvg = [Float](repeating: 0, count: count)
        expAvgSq = [Float](repeating: 0, count: count)
    }

    /// One update of `parameters` (flat) with `gradient`.
    public mutating func update(_ parameters: inout [Float], gradient g: [Float]) {
        precondition(parameters.count == g.count && g.count == expAvg.count, "AdamW: parameter, gradient and state sizes differ")
        step += 1
        let decay = Float(1 - lr * weightDecay)
        let w1 = Float(1 - beta1), b2 = Float(beta2), w2 = Float(1 - beta2)
        let bc1 = 1 - Foundation.pow(beta1, Double(step)), bc2Sqrt = (1 - Foundation.pow(beta2, Double(step))).squareRoot()
        let stepSize = Float(lr / bc1), bc2 = Float(bc2Sqrt), epsF = Float(eps)
        for i in parameters.indices {
            if weightDecay != 0 { parameters[i] *= decay }
            // torch's lerp for weights below 0.5: self + w (end - self)
            expAvg[i] = expAvg[i] + w1 * (g[i] - expAvg[i])
            // addcmul / addcdiv evaluate self + value * t1 * t2 and self + value * t1 / t2 left to right.
            expAvgSq[i] = expAvgSq[i] * b2 + w2 * g[i] * g[i]
            let denom = expAvgSq[i].squareRoot() / bc2 + epsF
            parameters[i] = parameters[i] + (-stepSize) * expAvg[i] / denom
        }
    }
}

import Foundation
