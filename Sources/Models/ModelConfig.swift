/// The shape of a Stable Diffusion model's parts, detected from a checkpoint's tensors or read
/// from an explicit configuration (diffusers `config.json` keys).
public struct UNetConfig: Sendable, Equatable, Codable {
    public var inChannels = 4
    public var outChannels = 4
    public var blockOutChannels: [Int] = [320, 640, 1280, 1280]
    public var layersPerBlock = 2
    /// Down blocks with cross-attention transformers (SD 1.x: the first three).
    public var attentionLevels: [Bool] = [true, true, true, false]
    public var crossAttentionDim = 768
    /// Heads per attention layer at each level (SD 1.x: 8 everywhere; SD 2.x: channels / 64).
    public var heads: [Int] = [8, 8, 8, 8]
    /// Transformer blocks per attention layer at each level (SDXL: 1, 2, 10); the mid block uses
    /// the last level's.
    public var transformerDepth: [Int] = [1, 1, 1, 1]
    /// SD 2.x uses linear proj_in/proj_out; SD 1.x uses 1x1 convolutions.
    public var useLinearProjection = false
    public var normGroups = 32
    public var normEps: Float = 1e-5
    public var timeEmbeddingDim = 1280
    /// Sinusoidal embedding: flip_sin_to_cos and freq_shift as diffusers (SD: true, 0).
    public var flipSinToCos = true
    public var freqShift: Float = 0
    /// The latent size the model was trained at (diffusers `sample_size`), when a config says.
    public var sampleSize: Int?
    /// SDXL's added "text_time" conditioning: the width of each size/crop number's sinusoidal
    /// embedding (256) and the input width of the added-embedding MLP (pooled text + 6 numbers);
    /// nil for SD 1.x/2.x.
    public var additionTimeEmbedDim: Int?
    public var additionInputDim: Int?

    public init() {}
}

public struct VAEConfig: Sendable, Equatable, Codable {
    public var inChannels = 3
    public var outChannels = 3
    public var blockOutChannels: [Int] = [128, 256, 512, 512]
    public var layersPerBlock = 2
    public var latentChannels = 4
    public var normGroups = 32
    /// Latents are the VAE's mean times this (SD 1.x/2.x 0.18215, SDXL 0.13025).
    public var scalingFactor: Float = 0.18215

    public init() {}
}

public struct TextEncoderConfig: Sendable, Equatable, Codable {
    public enum Activation: String, Sendable, Codable { case quickGelu = "quick_gelu", gelu }
    /// CLIP ViT-L/14 (SD 1.x) or OpenCLIP ViT-H/14 (SD 2.x, stored in OpenCLIP's layout).
    public enum Family: String, Sendable, Codable { case clip, openClip = "open_clip" }
    public var family = Family.clip
    public var hiddenSize = 768
    public var layers = 12
    public var heads = 12
    public var intermediateSize = 3072
    public var vocabularySize = 49408
    public var maxPositions = 77
    public var activation = Activation.quickGelu
    public var layerNormEps: Float = 1e-5
    /// The width of the pooled-output projection (SDXL's second encoder), nil without one.
    public var projectionDim: Int?

    public init() {}
}

/// What the UNet predicts: the noise (SD 1.x, SD 2.x base) or v (SD 2.x 768-v models).
public enum Prediction: String, Sendable, Codable {
    case epsilon, v = "v_prediction"

    /// k-diffusion's scalings for a noise level (sigma_data 1): the denoised latent is
    /// `model(x * cIn) * cOut + x * cSkip` (`CompVisDenoiser` / `CompVisVDenoiser`).
    public func scalings(sigma: Float) -> (cSkip: Float, cOut: Float, cIn: Float) {
        let d = sigma * sigma + 1
        switch self {
        case .epsilon: return (1, -sigma, 1 / d.squareRoot())
        case .v: return (1 / d, -sigma / d.squareRoot(), 1 / d.squareRoot())
        }
    }
}

/// A whole model's configuration.
public struct ModelConfig: Sendable, Equatable, Codable {
    /// Not visible in the weights: from an explicit configuration (`prediction_type`), else epsilon.
    public var prediction = Prediction.epsilon
    public var unet: UNetConfig?
    public var vae: VAEConfig?
    public var textEncoder: TextEncoderConfig?
    /// SDXL's second text encoder (OpenCLIP bigG with its projection).
    public var textEncoder2: TextEncoderConfig?
    public var family = ModelFamily.sd1

    public init(unet: UNetConfig? = nil, vae: VAEConfig? = nil, textEncoder: TextEncoderConfig? = nil) {
        self.unet = unet; self.vae = vae; self.textEncoder = textEncoder
    }

    /// The text encoders in the order their hidden states are concatenated into the context.
    public var textEncoders: [TextEncoderConfig] { [textEncoder, textEncoder2].compactMap { $0 } }

    /// Pixels per latent cell: 2 ^ (VAE levels - 1), 8 for SD.
    public var vaeScale: Int { 1 << max((vae?.blockOutChannels.count ?? 4) - 1, 0) }

    /// The size the model was trained at, in pixels (square): the config's sample size times the
    /// VAE's scale when a config gives one, else the family's.
    public var nativeSize: Int { unet?.sampleSize.map { $0 * vaeScale } ?? family.nativeSize(prediction: prediction) }
}
