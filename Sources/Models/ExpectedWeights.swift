/// The tensors (diffusers names, component-prefixed) and shapes a model of a given configuration
/// has. Used to name missing keys when loading and to make full-size test models.
public enum ExpectedWeights {
    public static func all(_ c: ModelConfig) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        if let u = c.unet { for (k, v) in unet(u) { out["unet." + k] = v } }
        if let v = c.vae { for (k, s) in vae(v) { out["vae." + k] = s } }
        if let t = c.textEncoder { for (k, s) in textEncoder(t) { out["text_encoder." + k] = s } }
        if let t = c.textEncoder2 { for (k, s) in textEncoder(t) { out["text_encoder_2." + k] = s } }
        return out
    }

    private static func linear(_ out: inout [String: [Int]], _ name: String, _ o: Int, _ i: Int, bias: Bool = true) {
        out[name + ".weight"] = [o, i]
        if bias { out[name + ".bias"] = [o] }
    }
    private static func conv(_ out: inout [String: [Int]], _ name: String, _ o: Int, _ i: Int, _ k: Int) {
        out[name + ".weight"] = [o, i, k, k]
        out[name + ".bias"] = [o]
    }
    private static func norm(_ out: inout [String: [Int]], _ name: String, _ c: Int) {
        out[name + ".weight"] = [c]
        out[name + ".bias"] = [c]
    }
    private static func resnet(_ out: inout [String: [Int]], _ name: String, _ i: Int, _ o: Int, temb: Int?) {
        norm(&out, name + ".norm1", i)
        conv(&out, name + ".conv1", o, i, 3)
        if let temb { linear(&out, name + ".time_emb_proj", o, temb) }
        norm(&out, name + ".norm2", o)
        conv(&out, name + ".conv2", o, o, 3)
        if i != o { conv(&out, name + ".conv_shortcut", o, i, 1) }
    }
    private static func transformer(_ out: inout [String: [Int]], _ name: String, _ c: Int, depth: Int, _ u: UNetConfig) {
        norm(&out, name + ".norm", c)
        if u.useLinearProjection { linear(&out, name + ".proj_in", c, c); linear(&out, name + ".proj_out", c, c) } else {
            conv(&out, name + ".proj_in", c, c, 1); conv(&out, name + ".proj_out", c, c, 1)
        }
        for d in 0..<depth {
            let b = name + ".transformer_blocks.\(d)"
            for n in ["norm1", "norm2", "norm3"] { norm(&out, b + "." + n, c) }
            for (attn, kv) in [("attn1", c), ("attn2", u.crossAttentionDim)] {
                linear(&out, "\(b).\(attn).to_q", c, c, bias: false)
                linear(&out, "\(b).\(attn).to_k", c, kv, bias: false)
                linear(&out, "\(b).\(attn).to_v", c, kv, bias: false)
                linear(&out, "\(b).\(attn).to_out.0", c, c)
            }
            linear(&out, b + ".ff.net.0.proj", 8 * c, c)
            linear(&out, b + ".ff.net.2", c, 4 * c)
        }
    }

    /// diffusers UNet2DConditionModel (CrossAttnDownBlock2D/DownBlock2D, UNetMidBlock2DCrossAttn, up blocks mirrored).
    public static func unet(_ u: UNetConfig) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        let ch = u.blockOutChannels, levels = ch.count, t = u.timeEmbeddingDim
        conv(&out, "conv_in", ch[0], u.inChannels, 3)
        linear(&out, "time_embedding.linear_1", t, ch[0])
        linear(&out, "time_embedding.linear_2", t, t)
        if let add = u.additionInputDim {
            linear(&out, "add_embedding.linear_1", t, add)
            linear(&out, "add_embedding.linear_2", t, t)
        }
        var input = ch[0]
        for l in 0..<levels {
            for j in 0..<u.layersPerBlock {
                resnet(&out, "down_blocks.\(l).resnets.\(j)", j == 0 ? input : ch[l], ch[l], temb: t)
                if u.attentionLevels[l] { transformer(&out, "down_blocks.\(l).attentions.\(j)", ch[l], depth: u.transformerDepth[l], u) }
            }
            if l < levels - 1 { conv(&out, "down_blocks.\(l).downsamplers.0.conv", ch[l], ch[l], 3) }
            input = ch[l]
        }
        let last = ch[levels - 1]
        resnet(&out, "mid_block.resnets.0", last, last, temb: t)
        transformer(&out, "mid_block.attentions.0", last, depth: u.transformerDepth[levels - 1], u)
        resnet(&out, "mid_block.resnets.1", last, last, temb: t)
        let rev = Array(ch.reversed()), revAttention = Array(u.attentionLevels.reversed())
        var output = rev[0]
        for i in 0..<levels {
            let prev = output
            output = rev[i]
            let inputChannels = rev[min(i + 1, levels - 1)]
            for j in 0...u.layersPerBlock {
                let skip = j == u.layersPerBlock ? inputChannels : output
                let resIn = j == 0 ? prev : output
                resnet(&out, "up_blocks.\(i).resnets.\(j)", resIn + skip, output, temb: t)
                if revAttention[i] { transformer(&out, "up_blocks.\(i).attentions.\(j)", output, depth: u.transformerDepth[levels - 1 - i], u) }
            }
            if i < levels - 1 { conv(&out, "up_blocks.\(i).upsamplers.0.conv", output, output, 3) }
        }
        norm(&out, "conv_norm_out", ch[0])
        conv(&out, "conv_out", u.outChannels, ch[0], 3)
        return out
    }

    /// diffusers AutoencoderKL.
    public static func vae(_ v: VAEConfig) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        let ch = v.blockOutChannels, levels = ch.count, last = ch[levels - 1], lat = v.latentChannels
        func mid(_ side: String) {
            resnet(&out, "\(side).mid_block.resnets.0", last, last, temb: nil)
            resnet(&out, "\(side).mid_block.resnets.1", last, last, temb: nil)
            let a = "\(side).mid_block.attentions.0"
            norm(&out, a + ".group_norm", last)
            for n in ["to_q", "to_k", "to_v", "to_out.0"] { linear(&out, a + "." + n, last, last) }
        }
        conv(&out, "encoder.conv_in", ch[0], v.inChannels, 3)
        var input = ch[0]
        for l in 0..<levels {
            for j in 0..<v.layersPerBlock { resnet(&out, "encoder.down_blocks.\(l).resnets.\(j)", j == 0 ? input : ch[l], ch[l], temb: nil) }
            if l < levels - 1 { conv(&out, "encoder.down_blocks.\(l).downsamplers.0.conv", ch[l], ch[l], 3) }
            input = ch[l]
        }
        mid("encoder")
        norm(&out, "encoder.conv_norm_out", last)
        conv(&out, "encoder.conv_out", 2 * lat, last, 3)
        conv(&out, "quant_conv", 2 * lat, 2 * lat, 1)
        conv(&out, "post_quant_conv", lat, lat, 1)
        conv(&out, "decoder.conv_in", last, lat, 3)
        mid("decoder")
        let rev = Array(ch.reversed())
        var output = rev[0]
        for i in 0..<levels {
            let prev = output
            output = rev[i]
            for j in 0...v.layersPerBlock { resnet(&out, "decoder.up_blocks.\(i).resnets.\(j)", j == 0 ? prev : output, output, temb: nil) }
            if i < levels - 1 { conv(&out, "decoder.up_blocks.\(i).upsamplers.0.conv", output, output, 3) }
        }
        norm(&out, "decoder.conv_norm_out", ch[0])
        conv(&out, "decoder.conv_out", v.outChannels, ch[0], 3)
        return out
    }

    /// transformers CLIPTextModel.
    public static func textEncoder(_ t: TextEncoderConfig) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        let h = t.hiddenSize
        out["text_model.embeddings.token_embedding.weight"] = [t.vocabularySize, h]
        out["text_model.embeddings.position_embedding.weight"] = [t.maxPositions, h]
        for i in 0..<t.layers {
            let b = "text_model.encoder.layers.\(i)"
            for p in ["q_proj", "k_proj", "v_proj", "out_proj"] { linear(&out, "\(b).self_attn.\(p)", h, h) }
            norm(&out, b + ".layer_norm1", h)
            norm(&out, b + ".layer_norm2", h)
            linear(&out, b + ".mlp.fc1", t.intermediateSize, h)
            linear(&out, b + ".mlp.fc2", h, t.intermediateSize)
        }
        norm(&out, "text_model.final_layer_norm", h)
        if let p = t.projectionDim { linear(&out, "text_projection", p, h, bias: false) }
        return out
    }

    /// Keys the configuration needs that `weights` lacks, and present keys whose shape differs.
    public static func check(_ weights: ModelWeights, _ config: ModelConfig) -> (missing: [String], wrongShape: [String]) {
        let expected = all(config)
        let missing = expected.keys.filter { weights.tensors[$0] == nil }.sorted()
        let wrong = expected.compactMap { k, s -> String? in
            guard let t = weights.tensors[k], t.shape != s else { return nil }
            return "\(k) is \(t.shape), expected \(s)"
        }.sorted()
        return (missing, wrong)
    }
}
