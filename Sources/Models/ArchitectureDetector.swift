import Formats

/// Reads a model's configuration from its tensors' names and shapes, then applies any explicit
/// configuration. Without one, SD 1.x conventions fill in what shapes cannot tell: GroupNorm with
/// 32 groups, 8 UNet attention heads (SD 2.x, 1024-wide context: heads of width 64), CLIP text
/// attention heads of width 64.
public enum ArchitectureDetector {
    public static func detect(_ weights: ModelWeights) throws -> ModelConfig {
        var config = ModelConfig()
        for part in ["scheduler", "unet"] {
            if let p = ExplicitConfig.object(weights.explicitConfig[part])["prediction_type"] as? String, let v = Prediction(rawValue: p) {
                config.prediction = v
            }
        }
        let unet = weights.component("unet"), vae = weights.component("vae"), text = weights.component("text_encoder")
        if !unet.isEmpty { config.unet = try detectUNet(unet, ExplicitConfig.object(weights.explicitConfig["unet"]), path: weights.path) }
        if !vae.isEmpty { config.vae = try detectVAE(vae, ExplicitConfig.object(weights.explicitConfig["vae"]), path: weights.path) }
        if !text.isEmpty {
            config.textEncoder = try detectText(text, ExplicitConfig.object(weights.explicitConfig["text_encoder"]), family: weights.textFamily,
                                                path: weights.path)
        }
        return config
    }

    private static func require(_ t: [String: StoredTensor], _ key: String, rank: Int, _ path: String, _ part: String) throws -> [Int] {
        guard let s = t[key]?.shape, s.count == rank else {
            throw FormatError.unsupported(file: path, reason: "\(part): missing \(key) (rank \(rank)); cannot detect the architecture")
        }
        return s
    }

    /// Distinct integers N in keys "prefix.N.…".
    private static func indices(_ keys: Dictionary<String, StoredTensor>.Keys, _ prefix: String) -> [Int] {
        Set(keys.compactMap { k -> Int? in
            guard let rest = k.dropPrefix(prefix) else { return nil }
            return Int(rest.split(separator: ".")[0])
        }).sorted()
    }

    private static func ints(_ v: Any?) -> [Int]? {
        if let i = v as? Int { return [i] }
        return (v as? [Any])?.compactMap { $0 as? Int }
    }

    static func detectUNet(_ t: [String: StoredTensor], _ explicit: [String: Any], path: String) throws -> UNetConfig {
        var c = UNetConfig()
        let convIn = try require(t, "conv_in.weight", rank: 4, path, "UNet")
        c.inChannels = convIn[1]
        c.outChannels = try require(t, "conv_out.weight", rank: 4, path, "UNet")[0]
        let levels = indices(t.keys, "down_blocks.")
        guard !levels.isEmpty else { throw FormatError.unsupported(file: path, reason: "UNet: no down_blocks.*") }
        c.blockOutChannels = try levels.map { try require(t, "down_blocks.\($0).resnets.0.conv1.weight", rank: 4, path, "UNet")[0] }
        c.layersPerBlock = indices(t.keys, "down_blocks.0.resnets.").count
        c.attentionLevels = levels.map { l in t.keys.contains { $0.hasPrefix("down_blocks.\(l).attentions.") } }
        if let k = t.first(where: { $0.key.hasSuffix("attn2.to_k.weight") }) { c.crossAttentionDim = k.value.shape[1] }
        if let first = levels.first(where: { c.attentionLevels[$0] }) {
            c.transformerDepth = indices(t.keys, "down_blocks.\(first).attentions.0.transformer_blocks.").count
            c.useLinearProjection = t["down_blocks.\(first).attentions.0.proj_in.weight"]?.shape.count == 2
        }
        c.timeEmbeddingDim = try require(t, "time_embedding.linear_1.weight", rank: 2, path, "UNet")[0]
        c.heads = c.crossAttentionDim == 1024 ? c.blockOutChannels.map { max($0 / 64, 1) } : c.blockOutChannels.map { _ in 8 }
        // Explicit configuration (diffusers UNet2DConditionModel config keys).
        if let g = explicit["norm_num_groups"] as? Int { c.normGroups = g }
        if let e = explicit["norm_eps"] as? Double { c.normEps = Float(e) }
        if let v = explicit["use_linear_projection"] as? Bool { c.useLinearProjection = v }
        if let v = explicit["flip_sin_to_cos"] as? Bool { c.flipSinToCos = v }
        if let v = explicit["freq_shift"] as? Int { c.freqShift = Float(v) }
        if let v = explicit["sample_size"] as? Int, v > 0 { c.sampleSize = v }
        // diffusers' attention_head_dim is the number of heads for SD 1.x/2.x UNets (its own naming
        // quirk) unless num_attention_heads is given.
        if let h = ints(explicit["num_attention_heads"]) ?? ints(explicit["attention_head_dim"]) {
            c.heads = h.count == 1 ? c.blockOutChannels.map { _ in h[0] } : h
        }
        for (i, ch) in c.blockOutChannels.enumerated() {
            guard ch % c.normGroups == 0, i >= c.heads.count || ch % c.heads[i] == 0 else {
                throw FormatError.unsupported(file: path, reason: "UNet level \(i) has \(ch) channels, which do not divide into \(c.normGroups) norm groups and \(c.heads[min(i, c.heads.count - 1)]) heads; give an explicit config (norm_num_groups, attention_head_dim)")
            }
        }
        return c
    }

    static func detectVAE(_ t: [String: StoredTensor], _ explicit: [String: Any], path: String) throws -> VAEConfig {
        var c = VAEConfig()
        c.inChannels = try require(t, "encoder.conv_in.weight", rank: 4, path, "VAE")[1]
        let levels = indices(t.keys, "encoder.down_blocks.")
        c.blockOutChannels = try levels.map { try require(t, "encoder.down_blocks.\($0).resnets.0.conv1.weight", rank: 4, path, "VAE")[0] }
        c.layersPerBlock = indices(t.keys, "encoder.down_blocks.0.resnets.").count
        c.latentChannels = try require(t, "decoder.conv_in.weight", rank: 4, path, "VAE")[1]
        c.outChannels = try require(t, "decoder.conv_out.weight", rank: 4, path, "VAE")[0]
        if let g = explicit["norm_num_groups"] as? Int { c.normGroups = g }
        if let s = explicit["scaling_factor"] as? Double { c.scalingFactor = Float(s) }
        for ch in c.blockOutChannels where ch % c.normGroups != 0 {
            throw FormatError.unsupported(file: path, reason: "VAE has \(ch) channels, which do not divide into \(c.normGroups) norm groups; give an explicit config (norm_num_groups)")
        }
        return c
    }

    static func detectText(_ t: [String: StoredTensor], _ explicit: [String: Any], family: TextEncoderConfig.Family,
                           path: String) throws -> TextEncoderConfig {
        var c = TextEncoderConfig()
        c.family = family
        let tok = try require(t, "text_model.embeddings.token_embedding.weight", rank: 2, path, "text encoder")
        c.vocabularySize = tok[0]
        c.hiddenSize = tok[1]
        c.maxPositions = try require(t, "text_model.embeddings.position_embedding.weight", rank: 2, path, "text encoder")[0]
        c.layers = indices(t.keys, "text_model.encoder.layers.").count
        c.intermediateSize = try require(t, "text_model.encoder.layers.0.mlp.fc1.weight", rank: 2, path, "text encoder")[0]
        c.heads = max(c.hiddenSize / 64, 1)
        c.activation = family == .openClip ? .gelu : .quickGelu
        if let h = explicit["num_attention_heads"] as? Int { c.heads = h }
        if let a = explicit["hidden_act"] as? String, let act = TextEncoderConfig.Activation(rawValue: a) { c.activation = act }
        if let e = explicit["layer_norm_eps"] as? Double { c.layerNormEps = Float(e) }
        guard c.hiddenSize % c.heads == 0 else {
            throw FormatError.unsupported(file: path, reason: "text encoder width \(c.hiddenSize) does not divide into \(c.heads) heads")
        }
        return c
    }
}

extension ArchitectureDetector {
    /// What `inspect` says about a file's model: the checkpoint layout and detected architecture,
    /// or why it is not a Stable Diffusion checkpoint.
    public static func describe(_ file: ModelFile) -> [String] {
        do {
            let weights = try ModelWeights(file)
            return ["layout: \(weights.layout.rawValue)"] + (try detect(weights)).summary
        } catch {
            return ["architecture: not a Stable Diffusion checkpoint (\(error))"]
        }
    }
}
