import Formats

/// Reads a model's configuration from its tensors' names and shapes, then applies any explicit
/// configuration. The family is found first, by structure (`family`); without a config, its
/// conventions fill in what shapes cannot tell (`ModelFamily`: UNet heads, VAE scale), plus
/// GroupNorm with 32 groups and text attention heads of width 64.
public enum ArchitectureDetector {
    public static func detect(_ weights: ModelWeights) throws -> ModelConfig {
        var config = ModelConfig()
        for part in ["scheduler", "unet"] {
            if let p = ExplicitConfig.object(weights.explicitConfig[part])["prediction_type"] as? String, let v = Prediction(rawValue: p) {
                config.prediction = v
            }
        }
        let unet = weights.component("unet"), vae = weights.component("vae")
        let text = weights.component("text_encoder"), text2 = weights.component("text_encoder_2")
        let explicitText = ExplicitConfig.object(weights.explicitConfig["text_encoder"])
        config.family = try family(weights, unet: unet, text: text, text2: text2, explicitText: explicitText)
        if !unet.isEmpty {
            config.unet = try detectUNet(unet, ExplicitConfig.object(weights.explicitConfig["unet"]), family: config.family, path: weights.path)
        }
        if !vae.isEmpty {
            config.vae = try detectVAE(vae, ExplicitConfig.object(weights.explicitConfig["vae"]), family: config.family, path: weights.path)
        }
        if !text.isEmpty {
            config.textEncoder = try detectText(text, explicitText, family: config.family == .sd2 ? .openClip : .clip, path: weights.path)
        }
        if !text2.isEmpty {
            config.textEncoder2 = try detectText(text2, ExplicitConfig.object(weights.explicitConfig["text_encoder_2"]), family: .openClip,
                                                 path: weights.path)
        }
        // SDXL's added conditioning: pooled text (the second encoder's projection) and six size
        // numbers, each embedded with the same width.
        if let u = config.unet, let input = u.additionInputDim, let dim = u.additionTimeEmbedDim,
           input != (config.textEncoder2?.projectionDim ?? 1280) + 6 * dim {
            throw FormatError.unsupported(file: weights.path, reason: "UNet add_embedding takes \(input) inputs, not the pooled text width plus 6 x addition_time_embed_dim \(dim)")
        }
        if var u = config.unet, let input = u.additionInputDim, u.additionTimeEmbedDim == nil {
            let pooled = config.textEncoder2?.projectionDim ?? 1280
            guard input > pooled, (input - pooled) % 6 == 0 else {
                throw FormatError.unsupported(file: weights.path, reason: "UNet add_embedding takes \(input) inputs, which is not \(pooled) pooled text widths plus 6 size embeddings")
            }
            u.additionTimeEmbedDim = (input - pooled) / 6
            config.unet = u
        }
        return config
    }

    /// The family by structure: SDXL's UNet has the added "text_time" embedding and two text
    /// encoders; SD 2.x has an OpenCLIP text encoder (OpenCLIP keys, a GELU config, or the
    /// 1024-wide context of ViT-H); everything else is SD 1.x.
    static func family(_ weights: ModelWeights, unet: [String: StoredTensor], text: [String: StoredTensor], text2: [String: StoredTensor],
                       explicitText: [String: Any]) throws -> ModelFamily {
        if unet["add_embedding.linear_1.weight"] != nil || !text2.isEmpty {
            guard !text.isEmpty else {
                throw FormatError.unsupported(file: weights.path, reason: "this is an SDXL refiner (one OpenCLIP bigG text encoder), which sdshell does not run yet; load an SDXL base model")
            }
            return .sdxl
        }
        if weights.textFamily == .openClip || (explicitText["hidden_act"] as? String) == "gelu" { return .sd2 }
        if text["text_model.embeddings.token_embedding.weight"]?.shape.last == 1024 { return .sd2 }
        if let k = unet.first(where: { $0.key.hasSuffix("attn2.to_k.weight") }), k.value.shape.last == 1024 { return .sd2 }
        return .sd1
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

    static func detectUNet(_ t: [String: StoredTensor], _ explicit: [String: Any], family: ModelFamily, path: String) throws -> UNetConfig {
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
            c.useLinearProjection = t["down_blocks.\(first).attentions.0.proj_in.weight"]?.shape.count == 2
        }
        // Transformer blocks per level; a level without attention takes the mid block's count
        // when it is the last (diffusers gives the mid block the last level's depth), else 1.
        let midDepth = indices(t.keys, "mid_block.attentions.0.transformer_blocks.").count
        c.transformerDepth = levels.map { l in
            c.attentionLevels[l] ? indices(t.keys, "down_blocks.\(l).attentions.0.transformer_blocks.").count
                : (l == levels.last ? max(midDepth, 1) : 1)
        }
        c.timeEmbeddingDim = try require(t, "time_embedding.linear_1.weight", rank: 2, path, "UNet")[0]
        c.heads = c.blockOutChannels.map(family.unetHeads)
        if let add = t["add_embedding.linear_1.weight"], add.shape.count == 2 { c.additionInputDim = add.shape[1] }
        if let v = explicit["addition_time_embed_dim"] as? Int, v > 0 { c.additionTimeEmbedDim = v }
        if let d = ints(explicit["transformer_layers_per_block"]) {
            c.transformerDepth = d.count == 1 ? c.blockOutChannels.map { _ in d[0] } : d
        }
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
        guard c.heads.count >= levels.count, c.transformerDepth.count >= levels.count else {
            throw FormatError.unsupported(file: path, reason: "UNet config gives heads or transformer depths for fewer than its \(levels.count) levels")
        }
        // Numbers from a config file are bounded before anything is sized or divided by them.
        guard (1...1024).contains(c.normGroups), c.heads.allSatisfy({ (1...1024).contains($0) }),
              c.transformerDepth.allSatisfy({ (0...64).contains($0) }),
              (c.additionTimeEmbedDim.map { (2...4096).contains($0) && $0 % 2 == 0 } ?? true) else {
            throw FormatError.unsupported(file: path, reason: "UNet config out of range: norm_num_groups \(c.normGroups) (1-1024), heads \(c.heads) (1-1024 each), transformer depths \(c.transformerDepth) (0-64 each), addition_time_embed_dim \(c.additionTimeEmbedDim.map(String.init) ?? "none") (even, 2-4096)")
        }
        for (i, ch) in c.blockOutChannels.enumerated() {
            guard ch % c.normGroups == 0, i >= c.heads.count || ch % c.heads[i] == 0 else {
                throw FormatError.unsupported(file: path, reason: "UNet level \(i) has \(ch) channels, which do not divide into \(c.normGroups) norm groups and \(c.heads[min(i, c.heads.count - 1)]) heads; give an explicit config (norm_num_groups, attention_head_dim)")
            }
        }
        return c
    }

    static func detectVAE(_ t: [String: StoredTensor], _ explicit: [String: Any], family: ModelFamily, path: String) throws -> VAEConfig {
        var c = VAEConfig()
        c.scalingFactor = family.defaultVAEScalingFactor
        c.inChannels = try require(t, "encoder.conv_in.weight", rank: 4, path, "VAE")[1]
        let levels = indices(t.keys, "encoder.down_blocks.")
        c.blockOutChannels = try levels.map { try require(t, "encoder.down_blocks.\($0).resnets.0.conv1.weight", rank: 4, path, "VAE")[0] }
        c.layersPerBlock = indices(t.keys, "encoder.down_blocks.0.resnets.").count
        c.latentChannels = try require(t, "decoder.conv_in.weight", rank: 4, path, "VAE")[1]
        c.outChannels = try require(t, "decoder.conv_out.weight", rank: 4, path, "VAE")[0]
        if let g = explicit["norm_num_groups"] as? Int { c.normGroups = g }
        if let s = explicit["scaling_factor"] as? Double, s.isFinite, s > 0, s < 1000 { c.scalingFactor = Float(s) }
        guard (1...1024).contains(c.normGroups) else {
            throw FormatError.unsupported(file: path, reason: "VAE config norm_num_groups \(c.normGroups) is out of range (1-1024)")
        }
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
        if let p = t["text_projection.weight"], p.shape.count == 2, p.shape[1] == c.hiddenSize { c.projectionDim = p.shape[0] }
        if let h = explicit["num_attention_heads"] as? Int { c.heads = h }
        if let a = explicit["hidden_act"] as? String, let act = TextEncoderConfig.Activation(rawValue: a) { c.activation = act }
        if let e = explicit["layer_norm_eps"] as? Double { c.layerNormEps = Float(e) }
        guard (1...1024).contains(c.heads), c.hiddenSize % c.heads == 0 else {
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
            var config = try detect(weights)
            let resolved = try PredictionDetector.resolve(weights, config, override: nil) { try UNet(weights, config: config.unet!) }
            config.prediction = resolved.prediction
            let source = resolved.mean.map { String(format: "A1111's test pass: mean %.3f", $0) } ?? resolved.source
            let native = config.nativeSize
            return ["layout: \(weights.layout.rawValue)"] + config.summary
                + ["prediction: \(config.prediction == .v ? "v" : "epsilon") (\(source))", "native size: \(native)x\(native)"]
        } catch {
            return ["architecture: not a Stable Diffusion checkpoint (\(error))"]
        }
    }
}
