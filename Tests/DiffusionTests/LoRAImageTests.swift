import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Models
@testable import Prompting

/// txt2img with `<lora:...>` tags on the tiny SD 1.x and SDXL models against A1111 1.10 with its
/// Lora extension (Tests/Fixtures/generators/make_lora_fixtures.py): the tags read and removed
/// as A1111 reads them, one and two networks at different weights, final latents, 8-bit images
/// and "Lora hashes"; the checkpoint's own images before and after.
enum LoRAImageFixture {
    static let fixture = NamedRuns(TestFixtures.json("lora_images", in: .module))
    static var runs: [[String: Any]] { fixture.runs }
    static let library = LoRALibrary(directories: [TestFixtures.repositoryRoot + "/Tests/ModelsTests/Fixtures/loras"],
                                     hashes: HashCache(location: NSTemporaryDirectory() + "sdshell-lora-test-hashes.json"))
    nonisolated(unsafe) static let sdxl = TextToImage(model: try! StableDiffusionModel(path: TestFixtures.fixturePath("tiny-sdxl")),
                                                      tokenizer: try! CLIPTokenizer.shipped())

    static func pipeline(_ model: String) -> TextToImage {
        var p = model == "sd" ? HiresFixture.pipeline : sdxl
        p.loras = library
        return p
    }

    static func settings(_ r: [String: Any]) -> GenerationSettings {
        FixtureSettings.from(r["settings"] as! [String: Any], prompt: r["prompt"] as? String)
    }
}

@Suite(.serialized) struct LoRAImageTests {
    @Test("<lora:...> tags read as A1111 reads them (positional and te=/unet= multipliers) and removed from the text")
    func tags() throws {
        for c in LoRAImageFixture.fixture.root["parsing"] as! [[String: Any]] {
            let prompt = c["prompt"] as! String
            let expected = (c["loras"] as! [[String: Any]]).map {
                ExtraNetworkTags.LoRA(name: $0["name"] as! String, textEncoder: ($0["te"] as! NSNumber).floatValue, unet: ($0["unet"] as! NSNumber).floatValue)
            }
            #expect(try ExtraNetworkTags.loras([prompt]) == expected, "\(prompt)")
            #expect(ExtraNetworkTags.strip(prompt) == c["stripped"] as! String, "\(prompt)")
        }
        #expect(throws: TagError.self) { try ExtraNetworkTags.loras(["<lora:sd_lora:lots>"]) }
        #expect(throws: TagError.self) { try ExtraNetworkTags.loras(["<lora:sd_lora:nan>"]) }
    }

    @Test("txt2img with one and two networks (SD 1.x, SDXL): final latents within 1e-4 of A1111's, images within 2 levels, Lora hashes",
          arguments: Array(LoRAImageFixture.runs.indices))
    func run(_ index: Int) throws {
        let r = LoRAImageFixture.runs[index]
        let p = LoRAImageFixture.pipeline(r["model"] as! String)
        let s = LoRAImageFixture.settings(r)
        let images = try withNoGrad { try p.generate(s) }
        let error = FamilyPipelineTests.relative(images.flatMap(\.latent), FamilyFixture.floats(r["latents"]))
        print("\(r["prompt"]!): final latents within \(error) of A1111's")
        #expect(error <= 1e-4, "\(r["prompt"]!): final latents off by \(error)")
        FamilyPipelineTests.expectImagesClose(images.flatMap(\.rgb), NamedRuns.bytes(r["image"]), "\(r["prompt"]!)")
        let expected = (r["infotext_parameters"] as! [[[String]]])[0].first { $0[0] == "Lora hashes" }?[1]
        #expect(images[0].infotext["Lora hashes"] == expected, "\(images[0].infotext.parameters)")
        #expect(images[0].infotext.prompt == r["prompt"] as! String, "the infotext keeps the tags")
    }

    @Test("the checkpoint's images are the same bits before and after a generation with a network")
    func unloadRestoresTheImage() throws {
        let p = LoRAImageFixture.pipeline("sd")
        var s = LoRAImageFixture.settings(LoRAImageFixture.runs[0])
        s.batchSize = 1
        let before = try p.generate(s)[0].rgb
        var tagged = s
        tagged.prompt += " <lora:sd_locon:1>"
        #expect(try p.generate(tagged)[0].rgb != before)
        #expect(try p.generate(s)[0].rgb == before)
    }

    @Test("a missing network is named with the known ones; a network for another family is left out with a warning")
    func badNetworks() throws {
        var p = LoRAImageFixture.pipeline("sd")
        var s = LoRAImageFixture.settings(LoRAImageFixture.runs[0])
        s.batchSize = 1
        s.prompt += " <lora:nowhere:1> <lora:elsewhere:0.5>"
        do {
            _ = try p.generate(s)
            Issue.record("a missing network was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("\"nowhere\"") && text.contains("\"elsewhere\"") && text.contains("sd_loha"), "\(text)")
        }
        let messages = MessageLog()
        p.onMessage = { messages.append($0) }
        s.prompt = LoRAImageFixture.settings(LoRAImageFixture.runs[0]).prompt + " <lora:xl_lora:1>"
        let image = try p.generate(s)[0]
        #expect(messages.lines.contains { $0.contains("xl_lora") && $0.contains("SDXL") }, "\(messages.lines)")
        #expect(image.infotext["Lora hashes"] == nil)
    }
}

extension LoRAImageTests {
    @Test("a network's bundled embedding is there while the network is in use, with the network's hash in TI hashes")
    func bundledEmbedding() throws {
        let model = HiresFixture.pipeline.model, tokenizer = try CLIPTokenizer.shipped()
        var p = TextToImage(model: model, tokenizer: tokenizer,
                            embeddings: EmbeddingDatabase(directories: [], widths: model.embeddingWidths, tokenizer: tokenizer))
        p.loras = LoRAImageFixture.library
        var s = LoRAImageFixture.settings(LoRAImageFixture.runs[0])
        s.batchSize = 1
        s.prompt = "a tinybundle circle <lora:sd_bundle:1>"
        let with = try p.generate(s)[0]
        let hash = try LoRAImageFixture.library.network("sd_bundle").shortHash
        #expect(with.infotext["TI hashes"] == "tinybundle: \(hash)", "\(with.infotext.parameters)")
        s.prompt = "a tinybundle circle"
        let without = try p.generate(s)[0]
        #expect(without.infotext["TI hashes"] == nil && without.rgb != with.rgb)
    }
}

/// Messages collected from a pipeline's `onMessage`.
final class MessageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}
