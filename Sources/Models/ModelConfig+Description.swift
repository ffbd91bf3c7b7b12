extension ModelConfig {
    /// One line per component, for `inspect`.
    public var summary: [String] {
        var lines = ["architecture: \(family.rawValue)"]
        if let u = unet {
            lines.append("  unet: channels \(u.blockOutChannels), \(u.layersPerBlock) layers per block, attention at levels \(u.attentionLevels.enumerated().filter(\.element).map(\.offset)), heads \(u.heads), context \(u.crossAttentionDim), \(u.useLinearProjection ? "linear" : "conv") projections, \(u.normGroups) norm groups")
        }
        if let v = vae {
            lines.append("  vae: channels \(v.blockOutChannels), \(v.layersPerBlock) layers per block, \(v.latentChannels) latent channels, \(v.normGroups) norm groups, scale \(v.scalingFactor)")
        }
        for (i, t) in textEncoders.enumerated() {
            lines.append("  text encoder\(i == 0 ? "" : " \(i + 1)"): \(t.family.rawValue), width \(t.hiddenSize), \(t.layers) layers, \(t.heads) heads, vocabulary \(t.vocabularySize), \(t.activation.rawValue)"
                         + (t.projectionDim.map { ", pooled projection \($0)" } ?? ""))
        }
        if let add = unet?.additionTimeEmbedDim { lines.append("  added conditioning: pooled text + 6 size embeddings of width \(add)") }
        return lines
    }
}
