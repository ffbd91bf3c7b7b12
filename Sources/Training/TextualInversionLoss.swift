import Engine
import Models
import Prompting

/// The textual-inversion objective (LDM's `p_losses`, as A1111 trains): noise the latents to each
/// item's timestep, `x_t = sqrt(ac_t) x_0 + sqrt(1 - ac_t) noise`, run the UNet conditioned on the
/// prompt (whose embedding rows are the trainable vectors), and take each item's mean squared
/// error against the model's target, then the batch mean: the noise for an epsilon model, LDM's
/// `get_v` = `sqrt(ac_t) noise - sqrt(1 - ac_t) x_0` for a v-prediction one (SD 2.x 768-v).
/// Gradients reach only the vectors. On SDXL the vectors are both encoders' side by side
/// ([n, CLIP-L width + bigG width], as one trainable tensor), each encoder reads its own, and the
/// UNet also gets each item's pooled text and size conditioning (original size, crop top-left,
/// target size of its picture, as kohya's SDXL trainer sends them).
public struct TextualInversionLoss {
    public let model: StableDiffusionModel
    public var conditioner: Conditioner
    /// Whether the UNet recomputes each block in the backward pass (activation checkpointing:
    /// the same gradient, bit for bit, in far less memory for about a third more time).
    public var checkpointing = false

    public init(model: StableDiffusionModel, conditioner: Conditioner) {
        self.model = model
        self.conditioner = conditioner
    }

    /// The embedding the trainable vectors make: one set per text encoder of the model, each a
    /// differentiable slice of `vectors` ([n, the encoders' widths summed]).
    public func embedding(_ vectors: Tensor, name: String) throws -> Embedding {
        let widths = conditioner.encoders.map(\.encoder.config.hiddenSize)
        guard vectors.rank == 2, vectors.shape[1] == widths.reduce(0, +) else {
            throw EngineError.invalidArgument(op: "textual inversion", message: "vectors are \(vectors.shape); the model's text encoders take \(widths.map(String.init).joined(separator: " + ")) per vector")
        }
        guard widths.count > 1 else { return Embedding(name: name, vectors: vectors) }
        var start = 0
        let parts = try widths.map { w in defer { start += w }; return try vectors.sliced(dim: 1, start, start + w) }
        return Embedding(name: name, vectors: parts[0], otherEncoders: Array(parts.dropFirst()))
    }

    /// The scalar loss for latents and noise [B, C, h, w], one prompt and timestep per item; on
    /// `weights` ([B, C, h, w], A1111's alpha loss weights) multiply each squared error.
    /// SDXL `sizes` gives each item's (original height, width, crop top, left, target height,
    /// width) in pixels (default: the latents' size, uncropped).
    public func callAsFunction(vectors: Tensor, name: String, prompts: [String], latents: Tensor, noise: Tensor,
                               timesteps: [Int], clipSkip: Int = 1, sizes: [[Float]]? = nil, weights: Tensor? = nil) throws -> Tensor {
        guard let db = conditioner.embeddings else {
            throw EngineError.invalidArgument(op: "textual inversion", message: "the conditioner has no embeddings database")
        }
        db.register(try embedding(vectors, name: name))
        let conditionings = try prompts.map { try conditioner.conditioning(conditioner.chunks($0), clipSkip: clipSkip) }
        let context = try Tensor.concat(conditionings.map(\.context), dim: 0)
        let b = latents.shape[0]
        var vector: Tensor?
        if model.unet.config.additionInputDim != nil {
            let (h, w) = (Float(latents.shape[2] * model.vaeScale), Float(latents.shape[3] * model.vaeScale))
            let itemSizes = sizes ?? Array(repeating: [h, w, 0, 0, h, w], count: b)
            guard itemSizes.count == b, itemSizes.allSatisfy({ $0.count == 6 }) else {
                throw EngineError.invalidArgument(op: "textual inversion", message: "SDXL needs six size numbers for each of the \(b) items")
            }
            vector = try Tensor.concat(zip(conditionings, itemSizes).map { c, size in
                guard let pooled = c.pooled else {
                    throw EngineError.invalidArgument(op: "textual inversion", message: "the text encoders give no pooled output")
                }
                return try model.unet.additionVector(pooled: pooled, sizes: size)
            }, dim: 0)
        }
        // LDM's buffers: square roots of the double-precision alphas_cumprod, rounded once.
        let ac = StableDiffusionModel.scaledLinearAlphasCumprod64()
        let signal = try Tensor(shape: [b, 1, 1, 1], data: timesteps.map { Float(ac[$0].squareRoot()) })
        let noiseScale = try Tensor(shape: [b, 1, 1, 1], data: timesteps.map { Float((1 - ac[$0]).squareRoot()) })
        let noisy = try latents * signal + noise * noiseScale
        let output = try model.unet(noisy, timesteps: timesteps.map(Float.init), context: context, vector: vector, checkpointed: checkpointing)
        let target = model.config.prediction == .v ? try noise * signal - latents * noiseScale : noise
        // LDM: the mean squared error of each item, then the mean over the batch; with A1111's
        // alpha weighting each element's square times its weight first (`weighted_loss`).
        let d = try output - target
        let squares = try weights.map { try d * d * $0 } ?? (d * d)
        return try squares.mean(dims: Array(1..<d.rank)).mean(dims: [0])
    }
}
