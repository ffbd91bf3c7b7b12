import Engine
import Foundation
import Testing
@testable import Formats
@testable import Models

/// SD 2.x checkpoints carry the text encoder in OpenCLIP's layout (`cond_stage_model.model.*`,
/// fused q/k/v), with one block more than LDM's penultimate-layer reading runs. A checkpoint
/// rewritten into that layout (plus an unused last block) must load to the same tensors.
@Suite struct OpenCLIPLayoutTests {
    @Test("an OpenCLIP-layout text encoder maps onto CLIP names with the same values (q/k/v split, the unused last block left out)")
    func openCLIP() throws {
        let source = try ModelFile.open(TinyModel.path("ckpt_ldm.safetensors"))
        var out: [String: Tensor] = [:]
        let prefix = "cond_stage_model.transformer.text_model."
        for (name, t) in source.tensors where !name.hasPrefix("cond_stage_model.") {
            out[name] = try t.materialize()
        }
        func get(_ n: String) throws -> Tensor { try source.tensors[prefix + n]!.materialize() }
        out["cond_stage_model.model.token_embedding.weight"] = try get("embeddings.token_embedding.weight")
        out["cond_stage_model.model.positional_embedding"] = try get("embeddings.position_embedding.weight")
        out["cond_stage_model.model.ln_final.weight"] = try get("final_layer_norm.weight")
        out["cond_stage_model.model.ln_final.bias"] = try get("final_layer_norm.bias")
        out["cond_stage_model.model.text_projection"] = try Tensor.zeros([32, 32]).to(.f16)
        for i in 0..<3 {
            let l = "encoder.layers.\(min(i, 1)).", o = "cond_stage_model.model.transformer.resblocks.\(i)."
            for (from, to) in [("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"),
                               ("self_attn.out_proj", "attn.out_proj")] {
                out[o + to + ".weight"] = try get(l + from + ".weight")
                out[o + to + ".bias"] = try get(l + from + ".bias")
            }
            let qkv = ["q_proj", "k_proj", "v_proj"]
            out[o + "attn.in_proj_weight"] = try Tensor.concat(qkv.map { try get(l + "self_attn.\($0).weight").to(.f32) }, dim: 0)
            out[o + "attn.in_proj_bias"] = try Tensor.concat(qkv.map { try get(l + "self_attn.\($0).bias").to(.f32) }, dim: 0)
        }
        let path = NSTemporaryDirectory() + "sdshell-openclip-\(UUID().uuidString).safetensors"
        try SafeTensorsFile.write(out, to: path)
        let converted = try ModelWeights(try ModelFile.open(path)), original = try ModelWeights(source)
        #expect(converted.textFamily == .openClip)
        let a = converted.component("text_encoder"), b = original.component("text_encoder")
        #expect(Set(a.keys) == Set(b.keys))
        for (name, t) in b {
            let mapped = try #require(a[name])
            #expect(mapped.shape == t.shape, "\(name)")
            #expect(try mapped.materialize().to(.f32).toArray() == t.materialize().to(.f32).toArray(), "\(name)")
        }
        let config = try ArchitectureDetector.detectText(a, [:], family: converted.textFamily, path: path)
        #expect(config.activation == .gelu && config.family == .openClip)
    }
}
