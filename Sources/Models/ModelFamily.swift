/// The Stable Diffusion families sdshell runs, and everything that differs between them and
/// cannot be read from the weights' shapes: attention head counts, the VAE's latent scale, how
/// each text encoder's hidden states are read (A1111's wrappers), the native size. A new family
/// is a new case here plus its layout mapping (`ModelWeights`) and detection (`ArchitectureDetector`).
public enum ModelFamily: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case sd1 = "SD 1.x", sd2 = "SD 2.x", sdxl = "SDXL"

    public var description: String { rawValue }

    /// Heads of a UNet attention layer with `channels` channels when no config says: 8 for SD 1.x,
    /// heads of width 64 for SD 2.x and SDXL.
    public func unetHeads(channels: Int) -> Int { self == .sd1 ? 8 : max(channels / 64, 1) }

    /// The native size in pixels when no config says: 512 for SD 1.x and SD 2.x base, 768 for
    /// SD 2.x v-prediction (768-v), 1024 for SDXL.
    public func nativeSize(prediction: Prediction) -> Int {
        switch self {
        case .sd1: return 512
        case .sd2: return prediction == .v ? 768 : 512
        case .sdxl: return 1024
        }
    }

    /// The widths of the text encoders of the family's full-size models, in context order (what
    /// its embeddings' vectors are).
    public var textEncoderWidths: [Int] { ModelConfig.reference(self).textEncoders.map(\.hiddenSize) }

    /// The name of each text encoder's vectors in the family's embedding files, in context order:
    /// "clip" for the one-encoder families (A1111's `string_to_param`), SDXL's "clip_l" and
    /// "clip_g" (kohya's keys, which A1111, ComfyUI, InvokeAI and diffusers read).
    public var embeddingKeys: [String] { self == .sdxl ? ["clip_l", "clip_g"] : ["clip"] }

    /// What a new embedding of the family is saved as: A1111's `.pt`, or for SDXL kohya's
    /// `.safetensors` (A1111 also reads a `.pt` holding just the two tensors).
    public var embeddingExtension: String { self == .sdxl ? "safetensors" : "pt" }

    /// The VAE scaling factor when no config says.
    public var defaultVAEScalingFactor: Float { self == .sdxl ? 0.13025 : 0.18215 }

    /// How each text encoder (in context order) is read, as A1111 reads it.
    public var textEncoderReadings: [TextEncoderReading] {
        switch self {
        // FrozenCLIPEmbedderWithCustomWords: the last layer (or the one clip skip names), final
        // norm, padded with the end token.
        case .sd1: return [TextEncoderReading(skippedLayers: 0, finalNorm: true, honoursClipSkip: true, padsWithZero: false, pooled: false)]
        // FrozenOpenCLIPEmbedderWithCustomWords: LDM's "penultimate" layer through ln_final (the
        // unused last block is not loaded, as in diffusers folders), padded with 0 after the end
        // token; A1111 never reads clip skip for OpenCLIP.
        case .sd2: return [TextEncoderReading(skippedLayers: 0, finalNorm: true, honoursClipSkip: false, padsWithZero: true, pooled: false)]
        // sgm's GeneralConditioner through A1111's SDXL wrappers: both encoders' penultimate hidden
        // states without the final norm; the second one also gives the projected pooled output.
        case .sdxl: return [
            TextEncoderReading(skippedLayers: 1, finalNorm: false, honoursClipSkip: false, padsWithZero: false, pooled: false),
            TextEncoderReading(skippedLayers: 1, finalNorm: false, honoursClipSkip: false, padsWithZero: true, pooled: true),
        ]
        }
    }

    /// A1111 (sd_models_xl) conditions SDXL on an all-zero text embedding when every text of the
    /// negative prompt is empty.
    public var zeroesEmptyNegativePrompt: Bool { self == .sdxl }
}

/// How a model family reads one text encoder's output (A1111's `encode_with_transformers`).
public struct TextEncoderReading: Sendable, Equatable {
    /// Layers not run at the end (1: the penultimate layer's output); clip skip adds to it where honoured.
    public var skippedLayers: Int
    /// Whether the hidden states pass the final layer norm.
    public var finalNorm: Bool
    public var honoursClipSkip: Bool
    /// OpenCLIP's padding: every token after the first end token is 0 (CLIP pads with the end token).
    public var padsWithZero: Bool
    /// Whether the encoder also gives the pooled output (final norm at the end token, projected).
    public var pooled: Bool

    /// Layers skipped for a clip skip setting (1 = none).
    public func skipped(clipSkip: Int) -> Int { skippedLayers + (honoursClipSkip ? max(clipSkip, 1) - 1 : 0) }
}
