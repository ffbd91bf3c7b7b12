import Engine
import Models

/// A1111's CFG denoiser around k-diffusion's `CompVisDenoiser`: the conditional and
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
    /// Latent shape of one image [C, H, W].
    public let latentShape: [Int]

    public init(unet: UNet, schedule: NoiseSchedule, cond: Tensor, uncond: Tensor, scale: Float, latentShape: [Int]) {
        self.unet = unet; self.schedule = schedule; self.cond = cond; self.uncond = uncond
        self.scale = scale; self.latentShape = latentShape
    }

    /// The denoiser the samplers call, for a batch of `cond.shape[0]` images.
    public func callAsFunction(_ x: [Float], _ sigma: Float) throws -> [Float] {
        let b = cond.shape[0]
        let latent = try Tensor(shape: [b] + latentShape, data: x)
        let cIn = 1 / (sigma * sigma + 1).squareRoot()
        let t = schedule.timestep(sigma: sigma)
        let input = try Tensor.concat([latent, latent], dim: 0) * cIn
        let context = try Tensor.concat([cond, uncond], dim: 0)
        let eps = try withNoGrad { try unet(input, timesteps: Array(repeating: t, count: 2 * b), context: context) }
        let denoised = try Tensor.concat([latent, latent], dim: 0) - eps * sigma
        let parts = try denoised.chunked(2, dim: 0)
        let guided = try parts[1] + (parts[0] - parts[1]) * scale
        return try guided.toArray()
    }
}
