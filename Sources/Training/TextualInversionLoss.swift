import Engine
import Models
import Prompting

/// The textual-inversion objective (LDM's `p_losses`, as A1111 trains): noise the latents to each
/// item's timestep, `x_t = sqrt(ac_t) x_0 + sqrt(1 - ac_t) noise`, run the UNet conditioned on the
/// prompt (whose embedding rows are the trainable vectors), and take each item's mean squared
/// error against the model's target, then the batch mean: the noise for an epsilon model, LDM's
/// `get_v` = `sqrt(ac_t) noise - sqrt(1 - ac_t) x_0` for a v-prediction one (SD 2.x 768-v).
/// Gradients reach only the vectors.
public struct TextualInversionLoss {
    public let model: StableDiffusionModel
    public var conditioner: Conditioner

    public init(model: StableDiffusionModel, conditioner: Conditioner) {
        self.model = model
        self.conditioner = conditioner
    }

    /// The scalar loss for latents and noise [B, C, h, w], one prompt and timestep per item.
    public func callAsFunction(vectors: Tensor, name: String, prompts: [String], latents: Tensor, noise: Tensor,
                               timesteps: [Int], clipSkip: Int = 1) throws -> Tensor {
        guard let db = conditioner.embeddings else {
            throw EngineError.invalidArgument(op: "textual inversion", message: "the conditioner has no embeddings database")
        }
        db.register(Embedding(name: name, vectors: vectors))
        let contexts = try prompts.map { try conditioner.encode(conditioner.chunks($0), clipSkip: clipSkip) }
        let context = try Tensor.concat(contexts, dim: 0)
        let b = latents.shape[0]
        // LDM's buffers: square roots of the double-precision alphas_cumprod, rounded once.
        let ac = StableDiffusionModel.scaledLinearAlphasCumprod64()
        let signal = try Tensor(shape: [b, 1, 1, 1], data: timesteps.map { Float(ac[$0].squareRoot()) })
        let noiseScale = try Tensor(shape: [b, 1, 1, 1], data: timesteps.map { Float((1 - ac[$0]).squareRoot()) })
        let noisy = try latents * signal + noise * noiseScale
        let output = try model.unet(noisy, timesteps: timesteps.map(Float.init), context: context)
        let target = model.config.prediction == .v ? try noise * signal - latents * noiseScale : noise
        // LDM: the mean squared error of each item, then the mean over the batch.
        let d = try output - target
        return try (d * d).mean(dims: Array(1..<d.rank)).mean(dims: [0])
    }
}
