extension ModelConfig {
    /// One line per component, for `inspect`.
    public var summary: [String] {
        var lines = ["architecture: \(family)"]
        if let u = unet {
            lines.append("  unet: channels \(u.blockOutChannels), \(u.layersPerBlock) layers per block, attention at levels \(u.attentionLevels.enumerated().filter(\.element).map(\.offset)), heads \(u.heads), context \(u.crossAttentionDim), \(u.useLinearProjection ? "linear" : "conv") projections, \(u.normGroups) norm groups")
        }
        if let v = vae {
            lines.append("  vae: channels \(v.blockOutChannels), \(v.layersPerBlock) layers per block, \(v.latentChannels) latent channels, \(v.normGroups) norm groups, scale \(v.scalingFactor)")
        }
        if let t = textEncoder {
            lines.append("  text encoder: \(t.family.rawValue), width \(t.hiddenSize), \(t.layers) layers, \(t.heads) heads, vocabulary \(t.vocabularySize), \(t.activation.rawValue)")
        }
        return lines
    }
}
