import Formats

/// Where a LoRA file's module names point in a model: the model's weight names ("unet.down_blocks.
/// 0.attentions.0.transformer_blocks.0.attn1.to_q.weight") under every name a file may use for
/// them: kohya's (`lora_unet_` + the diffusers name with underscores for SD 1.x/2.x, or the
/// original LDM name for SDXL; `lora_te_`, or `lora_te1_`/`lora_te2_` for SDXL's two encoders, +
/// the transformers name) and diffusers/PEFT's dotted names (`unet.`, `text_encoder.`, `text_encoder_2.`).
struct LoRATargets {
    /// Module name as a file writes it -> the model's weight name.
    private var byName: [String: String] = [:]
    private let layersPerBlock: Int

    init(weightNames: some Sequence<String>, family: ModelFamily, layersPerBlock: Int) {
        self.layersPerBlock = layersPerBlock
        let textPrefixes = family == .sdxl ? ["text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"] : ["text_encoder": "lora_te_"]
        for name in weightNames where name.hasSuffix(".weight") {
            let module = String(name.dropLast(".weight".count))
            guard let dot = module.firstIndex(of: ".") else { continue }
            let component = String(module[..<dot]), rest = String(module[module.index(after: dot)...])
            let kohyaPrefix = component == "unet" ? "lora_unet_" : textPrefixes[component]
            guard let kohyaPrefix else { continue }
            byName[kohyaPrefix + rest.replacingOccurrences(of: ".", with: "_")] = name
            byName[module] = name
        }
    }

    /// The weight a module name changes, if the model has it.
    func weight(for module: String) -> String? {
        if let direct = byName[module] { return direct }
        // SDXL's kohya files name UNet layers by the original LDM modules.
        guard module.hasPrefix("lora_unet_") else { return nil }
        let ldm = Self.dotted(String(module.dropFirst("lora_unet_".count)))
        guard let diffusers = LDMKeyMap.unet(ldm + ".weight", layersPerBlock: layersPerBlock) else { return nil }
        let name = "unet." + diffusers
        return byName[String(name.dropLast(".weight".count))]
    }

    /// The LDM module words that contain underscores, longest first.
    static let ldmWords = ["input_blocks", "middle_block", "output_blocks", "time_embed", "label_emb", "in_layers", "out_layers",
                           "emb_layers", "skip_connection", "transformer_blocks", "to_q", "to_k", "to_v", "to_out", "proj_in", "proj_out"]

    /// An LDM module name written with underscores ("input_blocks_4_1_transformer_blocks_0_attn1_to_q")
    /// with its dots back ("input_blocks.4.1.transformer_blocks.0.attn1.to_q").
    static func dotted(_ underscored: String) -> String {
        let tokens = underscored.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        var out: [String] = [], i = 0
        while i < tokens.count {
            if i + 1 < tokens.count, ldmWords.contains(tokens[i] + "_" + tokens[i + 1]) {
                out.append(tokens[i] + "_" + tokens[i + 1]); i += 2
            } else {
                out.append(tokens[i]); i += 1
            }
        }
        return out.joined(separator: ".")
    }
}
