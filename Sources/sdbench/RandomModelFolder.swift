import Engine
import Formats
import Foundation
import Models

/// A full-size diffusers folder of a configuration with random f16 values (in [-0.05, 0.05)):
/// what the benchmarks load. The config files carry what the shapes cannot tell (heads, the
/// family's text activation, the VAE scale), as real folders do.
enum RandomModelFolder {
    static func write(_ config: ModelConfig, to dir: String) throws {
        var parts: [(String, String, [String: [Int]], [String: Any])] = []
        if let u = config.unet {
            var json: [String: Any] = ["_class_name": "UNet2DConditionModel", "attention_head_dim": u.heads, "norm_num_groups": u.normGroups,
                                       "use_linear_projection": u.useLinearProjection, "transformer_layers_per_block": u.transformerDepth]
            if let add = u.additionTimeEmbedDim { json["addition_time_embed_dim"] = add; json["addition_embed_type"] = "text_time" }
            parts.append(("unet", "diffusion_pytorch_model.safetensors", ExpectedWeights.unet(u), json))
        }
        if let v = config.vae {
            parts.append(("vae", "diffusion_pytorch_model.safetensors", ExpectedWeights.vae(v),
                          ["_class_name": "AutoencoderKL", "norm_num_groups": v.normGroups, "scaling_factor": Double(v.scalingFactor)]))
        }
        for (component, t) in [("text_encoder", config.textEncoder), ("text_encoder_2", config.textEncoder2)] {
            guard let t else { continue }
            parts.append((component, "model.safetensors", ExpectedWeights.textEncoder(t),
                          ["architectures": [t.projectionDim == nil ? "CLIPTextModel" : "CLIPTextModelWithProjection"],
                           "num_attention_heads": t.heads, "hidden_act": t.activation.rawValue]))
        }
        var scheduler: [String: Any] = ["_class_name": "EulerDiscreteScheduler"]
        scheduler["prediction_type"] = config.prediction.rawValue
        // 8 MiB of random half-precision values, written at varying offsets.
        var state: UInt64 = 0x2545F4914F6CDD1D
        let pool = try Tensor(shape: [1 << 22], data: (0..<(1 << 22)).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 24) * 0.1 - 0.05
        }).to(.f16)
        let poolBytes = UnsafeRawBufferPointer(start: pool.storage.raw, count: pool.count * 2)
        func writeJSON(_ object: [String: Any], _ path: String) throws {
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        }
        try FileManager.default.createDirectory(atPath: dir + "/scheduler", withIntermediateDirectories: true)
        try writeJSON(scheduler, dir + "/scheduler/scheduler_config.json")
        for (component, fileName, shapes, json) in parts {
            try FileManager.default.createDirectory(atPath: dir + "/" + component, withIntermediateDirectories: true)
            try writeJSON(json, dir + "/\(component)/config.json")
            let names = shapes.keys.sorted()
            try SafeTensorsFile.write(entries: names.map { ($0, StoredDType.F16, shapes[$0]!) }, to: dir + "/\(component)/\(fileName)") { i, w in
                var remaining = shapes[names[i]]!.reduce(1, *) * 2
                var offset = (i * 4099 * 2) % poolBytes.count
                while remaining > 0 {
                    let n = min(remaining, poolBytes.count - offset)
                    try w.write(UnsafeRawBufferPointer(rebasing: poolBytes[offset..<(offset + n)]))
                    remaining -= n
                    offset = 0
                }
            }
        }
        try writeJSON(["_class_name": config.family == .sdxl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline"], dir + "/model_index.json")
        print("wrote \(dir)")
    }
}
