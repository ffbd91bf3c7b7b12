import Engine
import Foundation
import Testing
@testable import Formats
@testable import Models

/// Checkpoint layouts and architecture detection on the tiny torch-written model
/// (Tests/FormatsTests/Fixtures, made by Tests/Fixtures/generators/make_model_file_fixtures.py from diffusers modules).
enum TinyModel {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../FormatsTests/Fixtures").standardizedFileURL.path
    static func path(_ name: String) -> String { folder + "/" + name }
    static func weights(_ name: String) throws -> ModelWeights { try ModelWeights(try ModelFile.open(path(name))) }
    /// The settings shapes cannot tell for this model (it does not follow SD 1.x's 32 groups).
    static let explicitJSON = #"{"unet": {"norm_num_groups": 4, "attention_head_dim": 8, "sample_size": 8}, "vae": {"norm_num_groups": 4}, "text_encoder": {"num_attention_heads": 4}}"#
}

@Suite struct LayoutTests {
    @Test("LDM single files map to exactly the diffusers folder's names, with the same bytes")
    func ldmMatchesDiffusers() throws {
        let ldm = try TinyModel.weights("ckpt_ldm.safetensors"), folder = try TinyModel.weights("diffusers_tiny")
        #expect(ldm.layout == .ldm && folder.layout == .diffusers)
        #expect(Set(ldm.tensors.keys) == Set(folder.tensors.keys))
        for (name, t) in folder.tensors {
            let mapped = try #require(ldm.tensors[name])
            #expect(mapped.shape == t.shape, "\(name)")
            #expect(try mapped.contiguousBytes() == t.contiguousBytes(), "\(name) holds another tensor's values")
        }
        #expect(ldm.schedule["alphas_cumprod"]?.shape == [1000])
    }

    @Test("a .ckpt with state_dict, EMA keys and lightning state maps to the same names")
    func ckptMatches() throws {
        let ckpt = try TinyModel.weights("ckpt_ldm.ckpt"), st = try TinyModel.weights("ckpt_ldm.safetensors")
        #expect(Set(ckpt.tensors.keys) == Set(st.tensors.keys))
        #expect(!ckpt.tensors.keys.contains { $0.contains("ema") })
    }

    @Test("without a config the shapes give levels, channels, layers and widths; SD 1.x's 32 groups do not fit this model")
    func detectionFromShapes() throws {
        let w = try TinyModel.weights("ckpt_ldm.safetensors")
        #expect(w.explicitConfig.isEmpty)
        do {
            _ = try ArchitectureDetector.detect(w)
            Issue.record("8 channels cannot hold 32 groups")
        } catch let e as FormatError {
            #expect(e.description.contains("norm_num_groups"))
        }
        let unet = try ArchitectureDetector.detectUNet(w.component("unet"), ["norm_num_groups": 4], family: .sd1, path: w.path)
        #expect(unet.blockOutChannels == [8, 16] && unet.layersPerBlock == 1 && unet.attentionLevels == [true, false])
        #expect(unet.crossAttentionDim == 32 && unet.inChannels == 4 && unet.outChannels == 4 && unet.heads == [8, 8])
        #expect(unet.transformerDepth == [1, 1] && !unet.useLinearProjection && unet.timeEmbeddingDim == 32)
        let text = try ArchitectureDetector.detectText(w.component("text_encoder"), [:], family: .clip, path: w.path)
        #expect(text.hiddenSize == 32 && text.layers == 2 && text.vocabularySize == 1000 && text.intermediateSize == 37)
        #expect(text.heads == 1 && text.activation == .quickGelu)   // width-64 heads by convention
    }

    @Test("an explicit config (diffusers folder, or JSON beside the file) overrides the conventions")
    func explicitConfig() throws {
        let fromFolder = try ArchitectureDetector.detect(try TinyModel.weights("diffusers_tiny"))
        let dir = NSTemporaryDirectory() + "sdshell-layout-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TinyModel.path("ckpt_ldm.safetensors"), toPath: dir + "/tiny.safetensors")
        try TinyModel.explicitJSON.write(toFile: dir + "/tiny.json", atomically: true, encoding: .utf8)
        let beside = try ArchitectureDetector.detect(try ModelWeights(try ModelFile.open(dir + "/tiny.safetensors")))
        #expect(fromFolder == beside)
        #expect(beside.unet?.normGroups == 4 && beside.vae?.normGroups == 4 && beside.textEncoder?.heads == 4 && beside.unet?.sampleSize == 8)
        #expect(beside.vae?.blockOutChannels == [8, 16] && beside.vae?.latentChannels == 4 && beside.vae?.layersPerBlock == 1)
        #expect(beside.family == .sd1)
    }

    @Test("a separate VAE file replaces the checkpoint's VAE")
    func separateVAE() throws {
        var w = try TinyModel.weights("ckpt_ldm.safetensors")
        let vae = try TinyModel.weights("vae_separate.safetensors")
        #expect(vae.layout == .vae)
        let key = "vae.decoder.conv_in.weight"
        let before = try w.tensors[key]!.contiguousBytes()
        w.replaceVAE(with: vae)
        let after = try w.tensors[key]!.contiguousBytes()
        #expect(after == (try vae.tensors[key]!.contiguousBytes()))
        #expect(after != before)
        #expect(Set(w.component("vae").keys) == Set(vae.component("vae").keys))
    }

    @Test("an unknown layout is an error listing what was found")
    func unknownLayout() throws {
        do {
            _ = try TinyModel.weights("emb_a1111.pt")
            Issue.record("an embedding is not a checkpoint")
        } catch let e as FormatError {
            #expect(e.description.contains("unknown checkpoint layout") && e.description.contains("string_to_param.*"))
        }
    }
}

@Suite struct ExpectedWeightsTests {
    @Test("the expected tensors of the detected configuration are exactly the file's, with the same shapes",
          arguments: ["diffusers_tiny", "ckpt_ldm.ckpt"])
    func tinyModelComplete(_ name: String) throws {
        let dir = NSTemporaryDirectory() + "sdshell-expected-\(UUID().uuidString)"
        var path = TinyModel.path(name)
        if !name.hasPrefix("diffusers") {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: path, toPath: dir + "/tiny.ckpt")
            try TinyModel.explicitJSON.write(toFile: dir + "/tiny.json", atomically: true, encoding: .utf8)
            path = dir + "/tiny.ckpt"
        }
        let w = try ModelWeights(try ModelFile.open(path))
        let config = try ArchitectureDetector.detect(w)
        let (missing, wrong) = ExpectedWeights.check(w, config)
        #expect(missing.isEmpty, "missing: \(missing.prefix(5))")
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(Set(ExpectedWeights.all(config).keys) == Set(w.tensors.keys))
    }

    @Test("SD 1.5's defaults give its known parameter counts (859.52 M UNet, 123.06 M text, 83.65 M VAE)")
    func sd15Counts() {
        let c = ModelConfig(unet: UNetConfig(), vae: VAEConfig(), textEncoder: TextEncoderConfig())
        func count(_ s: [String: [Int]]) -> Int { s.values.map { $0.reduce(1, *) }.reduce(0, +) }
        #expect(count(ExpectedWeights.unet(c.unet!)) == 859_520_964)
        #expect(count(ExpectedWeights.textEncoder(c.textEncoder!)) == 123_060_480)
        #expect(count(ExpectedWeights.vae(c.vae!)) == 83_653_863)
    }
}

@Suite struct MissingWeightsTests {
    @Test("a checkpoint missing weights is an error naming them")
    func missing() throws {
        let dir = NSTemporaryDirectory() + "sdshell-missing-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: TinyModel.path("diffusers_tiny"), toPath: dir)
        let unetPath = dir + "/unet/diffusion_pytorch_model.safetensors"
        let unet = try SafeTensorsFile(path: unetPath)
        var kept: [String: Tensor] = [:]
        for (name, t) in unet.tensors where name != "conv_in.bias" && name != "mid_block.resnets.0.conv1.weight" {
            kept[name] = try t.materialize()
        }
        try SafeTensorsFile.write(kept, to: unetPath)
        do {
            _ = try StableDiffusionModel(path: dir)
            Issue.record("loaded a model with missing weights")
        } catch let e as FormatError {
            #expect(e.description.contains("2 missing") && e.description.contains("unet.conv_in.bias")
                    && e.description.contains("unet.mid_block.resnets.0.conv1.weight"), "\(e)")
        }
    }
}
