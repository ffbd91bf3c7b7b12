import Formats
import Foundation

/// Where an explicit model configuration may come from, first match wins per component:
/// 1. a diffusers folder's `unet/config.json`, `vae/config.json`, `text_encoder/config.json`;
/// 2. safetensors metadata `sdshell_config`: `{"unet": {...}, "vae": {...}, "text_encoder": {...}}`;
/// 3. a JSON file of that form beside the checkpoint, named like it with `.json` (`model.safetensors` -> `model.json`).
/// Keys are diffusers' and transformers' config keys (norm_num_groups, attention_head_dim, ...).
enum ExplicitConfig {
    static let components = ["unet", "vae", "text_encoder", "scheduler"]

    static func find(_ file: ModelFile) -> [String: String] {
        var out: [String: String] = [:]
        for c in components { if let text = file.metadata[c + "/config.json"] { out[c] = text } }
        var combined: String? = file.metadata["sdshell_config"]
        let beside = URL(fileURLWithPath: file.path).deletingPathExtension().path + ".json"
        if combined == nil, beside != file.path, let data = FileManager.default.contents(atPath: beside) {
            combined = String(decoding: data, as: UTF8.self)
        }
        if let combined, let json = try? JSONSerialization.jsonObject(with: Data(combined.utf8)) as? [String: Any] {
            for c in components where out[c] == nil {
                if let part = json[c], let data = try? JSONSerialization.data(withJSONObject: part) {
                    out[c] = String(decoding: data, as: UTF8.self)
                }
            }
        }
        return out
    }

    /// The parsed object for a component.
    static func object(_ text: String?) -> [String: Any] {
        guard let text, let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return [:] }
        return json
    }
}
