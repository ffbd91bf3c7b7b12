import Engine
import Foundation
import TestSupport
import Testing
@testable import Formats
@testable import Models

/// SD 2.x and SDXL layouts: the full-size expected weights against diffusers' own counts, the
/// missing keys named per family, unsupported families named, `inspect`'s family, prediction and
/// native size.
@Suite struct FamilyLayoutTests {
    private func counts(_ shapes: [String: [Int]]) -> (tensors: Int, parameters: Int) {
        (shapes.count, shapes.values.map { $0.reduce(1, *) }.reduce(0, +))
    }

    @Test("each family's full-size tensors and parameters equal diffusers' and transformers' (reference_parameter_counts.py)")
    func fullSizeCounts() {
        let sd1 = ModelConfig.reference(.sd1), sd2 = ModelConfig.reference(.sd2), sdxl = ModelConfig.reference(.sdxl)
        #expect(counts(ExpectedWeights.unet(sd1.unet!)) == (686, 859_520_964))
        #expect(counts(ExpectedWeights.unet(sd2.unet!)) == (686, 865_910_724))
        #expect(counts(ExpectedWeights.unet(sdxl.unet!)) == (1680, 2_567_463_684))
        #expect(counts(ExpectedWeights.vae(sdxl.vae!)) == (248, 83_653_863))
        #expect(counts(ExpectedWeights.textEncoder(sd1.textEncoder!)) == (196, 123_060_480))
        #expect(counts(ExpectedWeights.textEncoder(sd2.textEncoder!)) == (372, 340_387_840))
        #expect(counts(ExpectedWeights.textEncoder(sdxl.textEncoder!)) == (196, 123_060_480))
        #expect(counts(ExpectedWeights.textEncoder(sdxl.textEncoder2!)) == (517, 694_659_840))
        #expect(sdxl.vae!.scalingFactor == 0.13025 && sd2.vae!.scalingFactor == 0.18215)
        #expect(sdxl.unet!.heads == [5, 10, 20] && sd2.unet!.heads == [5, 10, 20, 20] && sd1.unet!.heads == [8, 8, 8, 8])
    }

    /// A copy of a single-file fixture with some tensors left out or replaced.
    private func edited(_ name: String, drop: Set<String> = [], replace: [String: Tensor] = [:], extension ext: String = "safetensors") throws -> String {
        let file = try ModelFile.open(TestFixtures.fixturePath(name))
        var out: [String: Tensor] = [:]
        for (k, t) in file.tensors where !drop.contains(k) { out[k] = try t.materialize() }
        for (k, t) in replace { out[k] = t }
        let path = NSTemporaryDirectory() + "sdshell-family-\(UUID().uuidString).\(ext)"
        try SafeTensorsFile.write(out, to: path)
        return path
    }

    private func loadError(_ path: String) -> String {
        defer { try? FileManager.default.removeItem(atPath: path) }
        do { _ = try StableDiffusionModel(path: path); return "" } catch { return "\(error)" }
    }

    @Test("missing weights are named for SD 2.x and SDXL files")
    func missingKeysNamed() throws {
        let sdxl = loadError(try edited("tiny-sdxl.safetensors", drop: ["model.diffusion_model.label_emb.0.2.weight",
                                                                         "conditioner.embedders.1.model.ln_final.bias"]))
        #expect(sdxl.contains("unet.add_embedding.linear_2.weight") && sdxl.contains("text_encoder_2.text_model.final_layer_norm.bias"), "\(sdxl)")
        let sd2 = loadError(try edited("tiny-sd2-v.safetensors", drop: ["model.diffusion_model.middle_block.1.proj_in.weight"]))
        #expect(sd2.contains("unet.mid_block.attentions.0.proj_in.weight"), "\(sd2)")
    }

    @Test("families sdshell does not run are named: SD 3, Flux, the SDXL refiner, depth UNets; an SD 2.x inpainting UNet loads, epsilon as A1111's config")
    func unsupportedFamilies() throws {
        let tiny = try Tensor.zeros([2, 2])
        func error(_ keys: [String]) throws -> String {
            let path = NSTemporaryDirectory() + "sdshell-family-\(UUID().uuidString).safetensors"
            try SafeTensorsFile.write(Dictionary(uniqueKeysWithValues: keys.map { ($0, tiny) }), to: path)
            return loadError(path)
        }
        #expect(try error(["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight", "first_stage_model.decoder.conv_in.weight"])
            .contains("Stable Diffusion 3"))
        #expect(try error(["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"]).contains("Flux"))
        #expect(try error(["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.0.model.token_embedding.weight"])
            .contains("SDXL refiner"))
        let convIn = try ModelFile.open(TestFixtures.fixturePath("tiny-sd2-v.safetensors")).tensors["model.diffusion_model.input_blocks.0.0.weight"]!
        let depth = loadError(try edited("tiny-sd2-v.safetensors", replace: [
            "model.diffusion_model.input_blocks.0.0.weight": try Tensor.zeros([convIn.shape[0], 5, 3, 3]),
        ]))
        #expect(depth.contains("SD 2.x") && depth.contains("depth model"), "\(depth)")
        // 9 input channels: an inpainting model, which A1111 configures as epsilon-prediction
        // (v2-inpainting-inference.yaml) without the v test pass the 4-channel file gets.
        let inpaintingPath = try edited("tiny-sd2-v.safetensors", replace: [
            "model.diffusion_model.input_blocks.0.0.weight": try Tensor.zeros([convIn.shape[0], 9, 3, 3]),
        ])
        defer { try? FileManager.default.removeItem(atPath: inpaintingPath) }
        let inpainting = try StableDiffusionModel(path: inpaintingPath)
        #expect(inpainting.family == .sd2 && inpainting.takesImageConditioning && inpainting.config.prediction == .epsilon)
        #expect(try StableDiffusionModel(path: TestFixtures.fixturePath("tiny-sd2-v.safetensors")).config.prediction == .v)
    }

    @Test("numbers in a config beside a checkpoint are bounded: an error naming them, never a trap")
    func hostileConfig() throws {
        for config in [#"{"unet": {"transformer_layers_per_block": [-1, 1]}}"#, #"{"unet": {"norm_num_groups": 0}}"#,
                       #"{"unet": {"attention_head_dim": 0}}"#, #"{"vae": {"norm_num_groups": 0}}"#,
                       #"{"text_encoder": {"num_attention_heads": 0}}"#] {
            let dir = NSTemporaryDirectory() + "sdshell-hostile-config-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.copyItem(atPath: TestFixtures.fixturePath("tiny-sd2-v.safetensors"), toPath: dir + "/m.safetensors")
            try config.write(toFile: dir + "/m.json", atomically: true, encoding: .utf8)
            do { _ = try StableDiffusionModel(path: dir + "/m.safetensors"); Issue.record("\(config) accepted") } catch {
                #expect("\(error)".contains("range") || "\(error)".contains("divide"), "\(config): \(error)")
            }
        }
    }

    @Test("inspect shows the family, the prediction type and where it came from, and the native size")
    func inspect() throws {
        func describe(_ name: String) throws -> String {
            ArchitectureDetector.describe(try ModelFile.open(TestFixtures.fixturePath(name))).joined(separator: "\n")
        }
        let v = try describe("tiny-sd2-v.safetensors")
        #expect(v.contains("architecture: SD 2.x") && v.contains("prediction: v (A1111's test pass") && v.contains("native size: 768x768"), "\(v)")
        let eps = try describe("tiny-sd2.ckpt")
        #expect(eps.contains("prediction: epsilon (A1111's test pass") && eps.contains("native size: 512x512"), "\(eps)")
        let xl = try describe("tiny-sdxl.safetensors")
        #expect(xl.contains("architecture: SDXL") && xl.contains("text encoder 2: open_clip") && xl.contains("native size: 1024x1024"), "\(xl)")
        #expect(xl.contains("scale 0.13025") && xl.contains("added conditioning"), "\(xl)")
        let folder = try describe("tiny-sdxl")
        #expect(folder.contains("prediction: epsilon (config)") && folder.contains("native size: 16x16"), "\(folder)")
    }
}
