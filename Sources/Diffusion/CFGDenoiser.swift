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
    /// [B, S, D] each.
    public let cond: Tensor, uncond: Tensor
    public let scale: Float
    public var prediction = Prediction.epsilon
    /// Latent shape of one image [C, H, W].
    public let latentShape: [Int]

    public init(unet: UNet, schedule: NoiseSchedule, cond: Tensor, uncond: Tensor, scale: Float, latentShape: [Int]) {
        self.unet = unet; self.schedule = schedule; self.cond = cond; self.uncond = uncond
        self.scale = scale; self.latentShape = latentShape
    }

    /// Guided noise prediction at an integer timestep (A1111's timestep samplers: no input scaling).
    public func eps(_ x: [Float], _ timestep: Float) throws -> [Float] {
        let b = cond.shape[0]
        let latent = try Tensor(shape: [b] + latentShape, data: x)
        let e = try unetBatch(Tensor.concat([latent, latent], dim: 0), timestep: timestep)
        let parts = try e.chunked(2, dim: 0)
        return try (parts[1] + (parts[0] - parts[1]) * scale).toArray()
    }

    /// One UNet batch of [conditional images..., unconditional images...]; when the two contexts
    /// have different lengths they run as two calls (A1111 without "pad prompt/negative prompt").
    private func unetBatch(_ input: Tensor, timestep t: Float) throws -> Tensor {
        let b = cond.shape[0]
        return try withNoGrad {
            if cond.shape[1] == uncond.shape[1] {
                return try unet(input, timesteps: Array(repeating: t, count: 2 * b), context: Tensor.concat([cond, uncond], dim: 0))
            }
            let halves = try input.chunked(2, dim: 0)
            let c = try unet(halves[0].contiguous(), timesteps: Array(repeating: t, count: b), context: cond)
            let u = try unet(halves[1].contiguous(), timesteps: Array(repeating: t, count: b), context: uncond)
            return try Tensor.concat([c, u], dim: 0)
        }
    }

    /// The denoiser the samplers call, for a batch of `cond.shape[0]` images.
    public func callAsFunction(_ x: [Float], _ sigma: Float) throws -> [Float] {
        let b = cond.shape[0]
        let latent = try Tensor(shape: [b] + latentShape, data: x)
        let (cSkip, cOut, cIn) = prediction.scalings(sigma: sigma)
        let t = schedule.timestep(sigma: sigma)
        let both = try Tensor.concat([latent, latent], dim: 0)
        let out = try unetBatch(both * cIn, timestep: t)
        // eps: x + out * (-sigma); v: out * c_out + x * c_skip (k-diffusion's order of operations).
        let denoised = prediction == .epsilon ? try both + out * cOut : try out * cOut + both * cSkip
        let parts = try denoised.chunked(2, dim: 0)
        let guided = try parts[1] + (parts[0] - parts[1]) * scale
        return try guided.toArray()
    }
}
