import Formats

/// The original LDM (CompVis / A1111 single file) names of the UNet and VAE, mapped onto
/// diffusers' module names: one table of renames, indices derived from the block structure.
enum LDMKeyMap {
    /// Resnet sublayers: LDM name -> diffusers name.
    static let resnet: [String: String] = [
        "in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
        "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut",
    ]
    /// VAE attention sublayers.
    static let vaeAttention: [String: String] = ["norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"]

    /// Layers per down block, from the position of the first downsampler ("input_blocks.N.0.op").
    static func unetLayersPerBlock<S: Sequence>(_ keys: S) -> Int where S.Element == String {
        var first = Int.max, maxIndex = 0
        for k in keys {
            guard let rest = k.dropPrefix("model.diffusion_model.input_blocks.") else { continue }
            let p = rest.split(separator: ".")
            guard p.count >= 3, let i = Int(p[0]) else { continue }
            maxIndex = max(maxIndex, i)
            if p[2] == "op" { first = min(first, i) }
        }
        return first == .max ? maxIndex : first - 1
    }

    /// Number of VAE resolution levels (decoder.up.N).
    static func vaeLevels<S: Sequence>(_ keys: S, prefix: String) -> Int where S.Element == String {
        var n = 0
        for k in keys {
            guard let rest = k.dropPrefix(prefix + "decoder.up."), let i = Int(rest.split(separator: ".")[0]) else { continue }
            n = max(n, i + 1)
        }
        return n
    }

    private static func mapResnet(_ rest: ArraySlice<String>) -> String {
        let two = rest.prefix(2).joined(separator: ".")
        if let m = resnet[two] { return ([m] + rest.dropFirst(2)).joined(separator: ".") }
        if let m = resnet[rest.first ?? ""] { return ([m] + rest.dropFirst(1)).joined(separator: ".") }
        return rest.joined(separator: ".")
    }

    /// Maps a UNet key (without "model.diffusion_model.").
    static func unet(_ key: String, layersPerBlock layers: Int) -> String? {
        let p = key.split(separator: ".").map(String.init)
        guard p.count >= 2 else { return nil }
        let per = layers + 1
        switch p[0] {
        case "time_embed":
            guard let m = ["0": "linear_1", "2": "linear_2"][p[1]] else { return nil }
            return (["time_embedding", m] + p.dropFirst(2)).joined(separator: ".")
        case "label_emb":                          // SDXL's added-conditioning MLP
            guard p.count >= 4, p[1] == "0", let m = ["0": "linear_1", "2": "linear_2"][p[2]] else { return nil }
            return (["add_embedding", m] + p.dropFirst(3)).joined(separator: ".")
        case "out":
            guard let m = ["0": "conv_norm_out", "2": "conv_out"][p[1]] else { return nil }
            return ([m] + p.dropFirst(2)).joined(separator: ".")
        case "input_blocks":
            guard p.count >= 4, let i = Int(p[1]), let j = Int(p[2]) else { return nil }
            let rest = p[3...]
            if i == 0 { return (["conv_in"] + rest).joined(separator: ".") }
            let block = (i - 1) / per, layer = (i - 1) % per
            if layer == layers {
                guard rest.first == "op" else { return nil }
                return (["down_blocks.\(block).downsamplers.0.conv"] + rest.dropFirst()).joined(separator: ".")
            }
            if j == 0 { return "down_blocks.\(block).resnets.\(layer)." + mapResnet(rest) }
            if j == 1 { return "down_blocks.\(block).attentions.\(layer)." + rest.joined(separator: ".") }
            return nil
        case "middle_block":
            guard let j = Int(p[1]) else { return nil }
            let rest = p[2...]
            switch j {
            case 0: return "mid_block.resnets.0." + mapResnet(rest)
            case 1: return "mid_block.attentions.0." + rest.joined(separator: ".")
            case 2: return "mid_block.resnets.1." + mapResnet(rest)
            default: return nil
            }
        case "output_blocks":
            guard p.count >= 4, let i = Int(p[1]), let j = Int(p[2]) else { return nil }
            let rest = p[3...]
            let block = i / per, layer = i % per
            if j == 0 { return "up_blocks.\(block).resnets.\(layer)." + mapResnet(rest) }
            if rest.first == "conv" { return (["up_blocks.\(block).upsamplers.0.conv"] + rest.dropFirst()).joined(separator: ".") }
            if j == 1 { return "up_blocks.\(block).attentions.\(layer)." + rest.joined(separator: ".") }
            return nil
        default:
            return nil
        }
    }

    /// Maps a VAE key (without "first_stage_model."), reshaping 1x1 attention convolutions to linear weights.
    static func vae(_ key: String, levels: Int, tensor: StoredTensor) -> (String, StoredTensor)? {
        var p = key.split(separator: ".").map(String.init)
        guard p.count >= 2 else { return nil }
        if p[0] == "quant_conv" || p[0] == "post_quant_conv" { return (key, tensor) }
        guard p[0] == "encoder" || p[0] == "decoder" else { return nil }
        let side = p[0]
        p.removeFirst()
        var out: [String]
        var t = tensor
        switch p[0] {
        case "conv_in", "conv_out": out = p
        case "norm_out": out = ["conv_norm_out"] + p.dropFirst()
        case "down", "up":
            guard p.count >= 4, let i = Int(p[1]) else { return nil }
            let level = p[0] == "down" ? i : levels - 1 - i
            let blockName = p[0] == "down" ? "down_blocks" : "up_blocks"
            if p[2] == "block", let j = Int(p[3]) {
                out = ["\(blockName).\(level).resnets.\(j)"] + p[4...].map { $0 == "nin_shortcut" ? "conv_shortcut" : $0 }
            } else if p[2] == "downsample" || p[2] == "upsample" {
                out = ["\(blockName).\(level).\(p[2])rs.0"] + p[3...]
            } else { return nil }
        case "mid":
            guard p.count >= 3 else { return nil }
            switch p[1] {
            case "block_1": out = ["mid_block.resnets.0"] + p[2...].map { $0 == "nin_shortcut" ? "conv_shortcut" : $0 }
            case "block_2": out = ["mid_block.resnets.1"] + p[2...].map { $0 == "nin_shortcut" ? "conv_shortcut" : $0 }
            case "attn_1":
                guard let m = vaeAttention[p[2]] else { return nil }
                out = ["mid_block.attentions.0", m] + p[3...]
                if m != "group_norm", t.shape.count == 4, let r = t.reshaped(Array(t.shape.prefix(2))) { t = r }
            default: return nil
            }
        default: return nil
        }
        return ((["\(side)"] + out).joined(separator: "."), t)
    }
}

/// OpenCLIP's text transformer (SD 2.x "cond_stage_model.model.*", SDXL
/// "conditioner.embedders.1.model.*") mapped onto Hugging Face CLIP names; the fused q/k/v
/// projection is split into three row views, and the pooled-output projection (kept for SDXL),
/// which OpenCLIP applies as `x @ P`, becomes the transposed view diffusers' Linear holds.
enum OpenCLIPKeyMap {
    /// The index of the last transformer block under `prefix`, if any.
    static func lastBlock<S: Sequence>(_ keys: S, prefix: String) -> Int? where S.Element == String {
        keys.compactMap { k -> Int? in
            guard let rest = k.dropPrefix(prefix + "transformer.resblocks.") else { return nil }
            return Int(rest.split(separator: ".")[0])
        }.max()
    }

    static func map(_ key: String, tensor: StoredTensor, file: String, keepProjection: Bool = false) throws -> [(String, StoredTensor)] {
        let p = key.split(separator: ".").map(String.init)
        switch key {
        case "token_embedding.weight": return [("text_model.embeddings.token_embedding.weight", tensor)]
        case "positional_embedding": return [("text_model.embeddings.position_embedding.weight", tensor)]
        case "ln_final.weight", "ln_final.bias": return [("text_model.final_layer_norm." + p[1], tensor)]
        case "text_projection":
            guard keepProjection else { return [] }
            guard let t = tensor.transposed() else { throw FormatError.corrupt(file: file, reason: "bad \(key) shape \(tensor.shape)") }
            return [("text_projection.weight", t)]
        case "logit_scale": return []
        default: break
        }
        guard p.count >= 5, p[0] == "transformer", p[1] == "resblocks", let i = Int(p[2]) else {
            if key.hasPrefix("visual.") { return [] }
            throw FormatError.unsupported(file: file, reason: "OpenCLIP key \(key) is not a text-transformer weight")
        }
        let base = "text_model.encoder.layers.\(i)."
        let sub = p[3...].joined(separator: ".")
        switch sub {
        case "ln_1.weight", "ln_1.bias": return [(base + "layer_norm1." + p.last!, tensor)]
        case "ln_2.weight", "ln_2.bias": return [(base + "layer_norm2." + p.last!, tensor)]
        case "mlp.c_fc.weight", "mlp.c_fc.bias": return [(base + "mlp.fc1." + p.last!, tensor)]
        case "mlp.c_proj.weight", "mlp.c_proj.bias": return [(base + "mlp.fc2." + p.last!, tensor)]
        case "attn.out_proj.weight", "attn.out_proj.bias": return [(base + "self_attn.out_proj." + p.last!, tensor)]
        case "attn.in_proj_weight", "attn.in_proj_bias":
            let n = tensor.shape[0] / 3
            let suffix = sub.hasSuffix("weight") ? "weight" : "bias"
            return try ["q_proj", "k_proj", "v_proj"].enumerated().map { i, name in
                guard let v = tensor.rows(i * n, n) else { throw FormatError.corrupt(file: file, reason: "bad \(key) shape \(tensor.shape)") }
                return (base + "self_attn.\(name).\(suffix)", v)
            }
        default:
            throw FormatError.unsupported(file: file, reason: "OpenCLIP key \(key) is not a text-transformer weight")
        }
    }
}
