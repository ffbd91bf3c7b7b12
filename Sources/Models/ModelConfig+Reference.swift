extension ModelConfig {
    /// The full-size configuration of each family's base model (SD 1.5, SD 2.1, SDXL 1.0 base),
    /// as its original checkpoints have it: for benchmarks and expected-weights checks.
    public static func reference(_ family: ModelFamily) -> ModelConfig {
        var c = ModelConfig(unet: UNetConfig(), vae: VAEConfig(), textEncoder: TextEncoderConfig())
        c.family = family
        c.vae!.scalingFactor = family.defaultVAEScalingFactor
        switch family {
        case .sd1:
            break
        case .sd2:
            c.unet!.crossAttentionDim = 1024
            c.unet!.useLinearProjection = true
            c.unet!.heads = c.unet!.blockOutChannels.map(family.unetHeads)
            c.textEncoder = TextEncoderConfig.openCLIP(width: 1024, layers: 23, heads: 16)
        case .sdxl:
            var u = UNetConfig()
            u.blockOutChannels = [320, 640, 1280]
            u.attentionLevels = [false, true, true]
            u.transformerDepth = [1, 2, 10]
            u.heads = u.blockOutChannels.map(family.unetHeads)
            u.crossAttentionDim = 2048
            u.useLinearProjection = true
            u.additionTimeEmbedDim = 256
            u.additionInputDim = 1280 + 6 * 256
            c.unet = u
            var bigG = TextEncoderConfig.openCLIP(width: 1280, layers: 32, heads: 20)
            bigG.projectionDim = 1280
            c.textEncoder2 = bigG
        }
        return c
    }
}

extension TextEncoderConfig {
    /// An OpenCLIP text transformer (GELU, MLP 4x wide).
    public static func openCLIP(width: Int, layers: Int, heads: Int) -> TextEncoderConfig {
        var t = TextEncoderConfig()
        t.family = .openClip
        t.hiddenSize = width
        t.layers = layers
        t.heads = heads
        t.intermediateSize = 4 * width
        t.activation = .gelu
        return t
    }
}
