import Formats

/// A model's weights under one naming scheme: diffusers' module names prefixed by the component
/// ("unet.", "vae.", "text_encoder."), whatever layout the file used. Each layout has one mapping
/// (`LDMKeyMap`, `OpenCLIPKeyMap`); tensors stay lazy (`StoredTensor` views).
public struct ModelWeights: Sendable {
    public enum Layout: String, Sendable { case ldm = "original LDM single file", diffusers = "diffusers folder", vae = "separate VAE" }

    public let path: String
    public let layout: Layout
    public var tensors: [String: StoredTensor]
    /// Noise-schedule buffers carried by LDM checkpoints (e.g. "alphas_cumprod").
    public var schedule: [String: StoredTensor]
    /// Explicit configuration per component ("unet", "vae", "text_encoder"): diffusers/transformers
    /// config.json text, from a diffusers folder, the file's metadata or a JSON file beside it.
    public var explicitConfig: [String: String]
    /// The text encoder's original family (OpenCLIP weights are renamed to CLIP names on load).
    public var textFamily = TextEncoderConfig.Family.clip

    /// Sorts a file's tensors into components; unknown layouts are an error listing what was found.
    public init(_ file: ModelFile) throws {
        path = file.path
        var names = file.tensors
        // Lightning checkpoints keep the weights under "state_dict".
        if names.keys.contains(where: { $0.hasPrefix("state_dict.") }) {
            names = Dictionary(uniqueKeysWithValues: names.compactMap { k, v in k.hasPrefix("state_dict.") ? (String(k.dropFirst(11)), v) : nil })
        }
        var out: [String: StoredTensor] = [:], schedule: [String: StoredTensor] = [:]
        explicitConfig = ExplicitConfig.find(file)
        if let other = UnsupportedFamily.detect(names.keys) {
            throw FormatError.unsupported(file: file.path, reason: "this is \(other), which sdshell does not run (it runs SD 1.x, SD 2.x and SDXL)")
        }
        if names.keys.contains(where: { $0.hasPrefix("model.diffusion_model.") }) {
            layout = .ldm
            let layers = LDMKeyMap.unetLayersPerBlock(names.keys)
            let vaeLevels = LDMKeyMap.vaeLevels(names.keys, prefix: "first_stage_model.")
            // SD 2.x reads OpenCLIP's penultimate layer (LDM's FrozenOpenCLIPEmbedder): the last
            // block is never run, so it is not loaded (diffusers folders leave it out too).
            let unusedBlock = OpenCLIPKeyMap.lastBlock(names.keys, prefix: "cond_stage_model.model.")
            for (k, v) in names {
                if k.hasPrefix("model_ema.") || k.hasSuffix("position_ids") { continue }
                if let rest = k.dropPrefix("model.diffusion_model.") {
                    guard let m = LDMKeyMap.unet(rest, layersPerBlock: layers) else { throw unmapped(k) }
                    out["unet." + m] = v
                } else if let rest = k.dropPrefix("first_stage_model.") {
                    guard let (m, t) = LDMKeyMap.vae(rest, levels: vaeLevels, tensor: v) else { throw unmapped(k) }
                    out["vae." + m] = t
                } else if let rest = k.dropPrefix("cond_stage_model.transformer.") {
                    out["text_encoder." + rest] = v
                } else if let rest = k.dropPrefix("cond_stage_model.model.") {
                    textFamily = .openClip
                    if rest.hasPrefix("transformer.resblocks.\(unusedBlock ?? -1).") { continue }
                    for (m, t) in try OpenCLIPKeyMap.map(rest, tensor: v, file: file.path) { out["text_encoder." + m] = t }
                } else if let rest = k.dropPrefix("conditioner.embedders.0.transformer.") {
                    out["text_encoder." + rest] = v                        // SDXL's CLIP ViT-L
                } else if let rest = k.dropPrefix("conditioner.embedders.1.model.") {
                    // SDXL's OpenCLIP ViT-bigG, whose pooled output is projected.
                    for (m, t) in try OpenCLIPKeyMap.map(rest, tensor: v, file: file.path, keepProjection: true) { out["text_encoder_2." + m] = t }
                } else if k.hasPrefix("conditioner.embedders.0.model.") {
                    throw FormatError.unsupported(file: file.path, reason: "this is an SDXL refiner (one OpenCLIP bigG text encoder), which sdshell does not run yet; load an SDXL base model")
                } else if ["alphas_cumprod", "betas", "alphas_cumprod_prev"].contains(k) {
                    schedule[k] = v
                }
            }
        } else if names.keys.contains(where: { $0.hasPrefix("unet/") }) {
            layout = .diffusers
            for (k, v) in names {
                guard let slash = k.firstIndex(of: "/"), !k.hasSuffix("position_ids") else { continue }
                out[k[..<slash] + "." + k[k.index(after: slash)...]] = v
            }
        } else if names.keys.contains(where: { $0.hasPrefix("decoder.") }) && names.keys.contains(where: { $0.hasPrefix("post_quant_conv.") }) {
            layout = .vae
            let levels = LDMKeyMap.vaeLevels(names.keys, prefix: "")
            for (k, v) in names where !k.hasPrefix("model_ema.") {
                if k.hasPrefix("decoder.conv_in") || k.hasPrefix("encoder.") || k.hasPrefix("decoder.") || k.contains("quant_conv") {
                    if let (m, t) = LDMKeyMap.vae(k, levels: levels, tensor: v) { out["vae." + m] = t }
                    // diffusers-named VAE files map to themselves
                    else { out["vae." + k] = v }
                }
            }
        } else {
            var prefixes: [String: Int] = [:]
            for k in names.keys { prefixes[String(k.split(separator: ".").prefix(2).joined(separator: ".")), default: 0] += 1 }
            let found = prefixes.keys.sorted().prefix(12).map { "\($0).* (\(prefixes[$0]!))" }.joined(separator: ", ")
            throw FormatError.unsupported(file: file.path, reason: "unknown checkpoint layout; expected model.diffusion_model.*, a diffusers folder or a VAE; found \(names.isEmpty ? "no tensors" : found)")
        }
        tensors = out
        self.schedule = schedule

        func unmapped(_ k: String) -> FormatError {
            FormatError.unsupported(file: file.path, reason: "checkpoint key \(k) does not fit the SD 1.x, SD 2.x or SDXL layout")
        }
    }

    /// Replaces the VAE with the one in `vae` (a separate VAE file or another checkpoint).
    public mutating func replaceVAE(with vae: ModelWeights) {
        tensors = tensors.filter { !$0.key.hasPrefix("vae.") }
        for (k, v) in vae.tensors where k.hasPrefix("vae.") { tensors[k] = v }
    }

    /// Names of a component ("unet", "vae", "text_encoder") without the prefix.
    public func component(_ name: String) -> [String: StoredTensor] {
        Dictionary(uniqueKeysWithValues: tensors.compactMap { k, v in k.dropPrefix(name + ".").map { ($0, v) } })
    }
}

extension String {
    /// The rest of the string after `prefix`, or nil.
    func dropPrefix(_ prefix: String) -> String? { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil }
}
