import Engine
import Models

/// A1111's CFG denoiser around k-diffusion's `CompVisDenoiser` (`CompVisVDenoiser` for
/// v-prediction models): the conditional and
/// unconditional contexts go through the UNet in one batch (conditional images first), each
/// prediction becomes a denoised latent `x - eps * sigma` (input scaled by 1/sqrt(sigma^2 + 1),
/// timestep from sigma by log-sigma interpolation), and the two are combined as
/// `uncond + (cond - uncond) * scale`.
public struct CFGDenoiser {
    public let unet: UNet
    public let schedule: NoiseSchedule
    /// The prompt's conditionings ([1, S, D] each; several with AND) and their weights.
    public let conds: [(context: Tensor, weight: Float)]
    /// [1, S, D]
    public let uncond: Tensor
    public let scale: Float
    public let batchSize: Int
    /// Latent shape of one image [C, H, W].
    public let latentShape: [Int]
    public var prediction = Prediction.epsilon

    /// Contexts of different lengths are padded by repeating their last row (A1111's stack_conds).
    public init(unet: UNet, schedule: NoiseSchedule, conds: [(context: Tensor, weight: Float)], uncond: Tensor, scale: Float,
                batchSize: Int, latentShape: [Int]) throws {
        self.unet = unet; self.schedule = schedule; self.uncond = uncond; self.scale = scale
        self.batchSize = batchSize; self.latentShape = latentShape
        let longest = conds.map { $0.context.shape[1] }.max() ?? 0
        self.conds = try conds.map { c in
            let n = c.context.shape[1]
            guard n < longest else { return c }
            let last = try c.context.sliced(dim: 1, n - 1, n)
            return (try Tensor.concat([c.context] + Array(repeating: last, count: longest - n), dim: 1), c.weight)
        }
    }

    /// The UNet outputs for [each image x each cond..., each image unconditioned]; when the
    /// conditional and unconditional contexts differ in length they run as two calls (A1111
    /// without "pad prompt/negative prompt").
    private func unetBatch(_ latent: Tensor, scaledBy cIn: Float, timestep t: Float) throws -> Tensor {
        let b = batchSize, k = conds.count
        return try withNoGrad {
            let images = try latent.chunked(b, dim: 0)
            let condInput = try Tensor.concat(images.flatMap { Array(repeating: $0, count: k) }, dim: 0) * cIn
            let condContext = try Tensor.concat(Array(repeating: conds.map(\.context), count: b).flatMap { $0 }, dim: 0)
            let uncondInput = try latent * cIn
            let uncondContext = try Tensor.concat(Array(repeating: uncond, count: b), dim: 0)
            if condContext.shape[1] == uncondContext.shape[1] {
                return try unet(Tensor.concat([condInput, uncondInput], dim: 0), timesteps: Array(repeating: t, count: b * k + b),
                                context: Tensor.concat([condContext, uncondContext], dim: 0))
            }
            let c = try unet(condInput, timesteps: Array(repeating: t, count: b * k), context: condContext)
            let u = try unet(uncondInput, timesteps: Array(repeating: t, count: b), context: uncondContext)
            return try Tensor.concat([c, u], dim: 0)
        }
    }

    /// A1111's combine: per image, uncond + sum over conds of (cond - uncond) * (weight * scale).
    private func combine(_ out: Tensor) throws -> [Float] {
        let b = batchSize, k = conds.count
        let parts = try out.chunked(b * k + b, dim: 0)
        var images: [Tensor] = []
        for i in 0..<b {
            let u = parts[b * k + i]
            var d = u
            for (j, c) in conds.enumerated() { d = try d + (parts[i * k + j] - u) * (c.weight * scale) }
            images.append(d)
        }
        return try Tensor.concat(images, dim: 0).toArray()
    }

    /// Guided noise prediction at an integer timestep (A1111's timestep samplers: no input scaling).
    public func eps(_ x: [Float], _ timestep: Float) throws -> [Float] {
        let latent = try Tensor(shape: [batchSize] + latentShape, data: x)
        return try combine(unetBatch(latent, scaledBy: 1, timestep: timestep))
    }

    /// The denoiser the samplers call, for the batch.
    public func callAsFunction(_ x: [Float], _ sigma: Float) throws -> [Float] {
        let b = batchSize, k = conds.count
        let latent = try Tensor(shape: [b] + latentShape, data: x)
        let (cSkip, cOut, cIn) = prediction.scalings(sigma: sigma)
        let t = schedule.timestep(sigma: sigma)
        let out = try unetBatch(latent, scaledBy: cIn, timestep: t)
        // The inputs in the batch's order, for x + out * c_out (eps) or out * c_out + x * c_skip (v).
        let images = try latent.chunked(b, dim: 0)
        let inputs = try Tensor.concat(images.flatMap { Array(repeating: $0, count: k) } + [latent], dim: 0)
        let denoised = prediction == .epsilon ? try inputs + out * cOut : try out * cOut + inputs * cSkip
        return try combine(denoised)
    }
}
