import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Models
@testable import Prompting

/// Embeddings on the tiny SD 2.x and SDXL models against A1111's textual-inversion code restated
/// (Tests/Fixtures/generators/make_family_embedding_fixtures.py): which files each model loads
/// or skips, each encoder's vectors at the placeholders (one, two and three embeddings, emphasis,
/// the negative prompt, an embedding moved whole to the next chunk), and txt2img with them.
enum FamilyEmbeddingFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("family_embeddings", in: .module)
    static let directory = TestFixtures.fixturePath("family-embeddings")
    static var conditionings: [[String: Any]] { root["conditionings"] as! [[String: Any]] }
    static var conditioningNames: [String] { conditionings.map { $0["name"] as! String } }

    /// A pipeline of the fixture model with the embeddings folder.
    static func pipeline(_ model: String) throws -> TextToImage {
        let m = FamilyFixture.pipeline(model).model
        let tokenizer = try CLIPTokenizer.shipped()
        let db = EmbeddingDatabase(directories: [directory], widths: m.embeddingWidths, tokenizer: tokenizer)
        return TextToImage(model: m, tokenizer: tokenizer, embeddings: db)
    }
}

@Suite(.serialized) struct FamilyEmbeddingTests {
    @Test("each model loads the embeddings A1111 loads for it and skips the others with the reason", arguments: ["sdxl", "sd2"])
    func loadedAndSkipped(_ model: String) throws {
        let p = try FamilyEmbeddingFixture.pipeline(model)
        let db = try #require(p.conditioner.embeddings)
        db.reload()
        let expected = (FamilyEmbeddingFixture.root["models"] as! [String: Any])[model] as! [String: Any]
        #expect(db.embeddings.keys.sorted() == (expected["loaded"] as! [String]).sorted())
        // A1111 keys skipped embeddings by name: the file stem, or for a PNG the name stored in it.
        let skipped = try db.skipped.map { entry -> String in
            if entry.file.lowercased().hasSuffix(".png"), let stored = try EmbeddingImage.read(entry.file)?.name { return stored }
            return ((entry.file as NSString).lastPathComponent as NSString).deletingPathExtension
        }
        #expect(skipped.sorted() == (expected["skipped"] as! [String]).sorted())
        if model == "sdxl" {
            let reason = db.skipped.first { $0.file.hasSuffix("oldstyle.safetensors") }!.reason
            #expect(reason.contains("SDXL models take embeddings with clip_l and clip_g"), "\(reason)")
            #expect(db.embeddings["xlthree"]!.widths == [8, 16] && db.embeddings["xlthree"]!.vectorCount == 3)
            let listing = EmbeddingListing(db).lines.joined(separator: "\n")
            #expect(listing.contains("xlthree: 3 vectors x 8 + 16") && listing.contains("oldstyle.safetensors: unsupported: an embedding for one text encoder"), "\(listing)")
            // The skipped embedding's name stays plain text.
            #expect(p.conditioner.chunks("oldstyle").allSatisfy { $0.fixes.isEmpty })
        }
    }

    @Test("conditioning with SD 2.x and SDXL embeddings equals A1111's (ids, placeholders, context, pooled)",
          arguments: FamilyEmbeddingFixture.conditioningNames)
    func conditioning(_ name: String) throws {
        let r = FamilyEmbeddingFixture.conditionings.first { $0["name"] as? String == name }!
        let model = r["model"] as! String
        let p = try FamilyEmbeddingFixture.pipeline(model)
        p.conditioner.embeddings!.reload()
        let chunks = p.conditioner.chunks(r["prompt"] as! String)
        let ids = r["chunk_ids"] as! [String: [[Int]]]
        let keys = model == "sdxl" ? ["clip_l", "clip_g"] : ["open_clip"]
        for (index, key) in keys.enumerated() {
            let reading = p.conditioner.encoders[index].reading
            #expect(chunks.map { Conditioner.ids($0, reading) } == ids[key]!, "\(name): \(key) ids")
        }
        let fixes = (r["fixes"] as! [[[String: Any]]]).map { $0.map { "\($0["offset"]!):\($0["name"]!)" } }
        #expect(chunks.map { $0.fixes.map { "\($0.offset):\($0.embedding.name)" } } == fixes, "\(name): fixes")
        var s = GenerationSettings()
        (s.width, s.height) = (16, 16)
        let c = try withNoGrad { try p.conditioner.conditioning(chunks) }
        #expect(c.context.shape == FamilyFixture.shape(r["context"]), "\(name): context shape")
        #expect(FamilyPipelineTests.relative(try c.context.toArray(), FamilyFixture.floats(r["context"])) <= 1e-5, "\(name): context")
        if let pooled = r["pooled"] {
            #expect(FamilyPipelineTests.relative(try c.pooled!.toArray(), FamilyFixture.floats(pooled)) <= 1e-5, "\(name): pooled")
        }
    }

    @Test("txt2img with SDXL embeddings in the prompt and the negative prompt equals A1111's")
    func generation() throws {
        let r = (FamilyEmbeddingFixture.root["runs"] as! [[String: Any]])[0]
        let p = try FamilyEmbeddingFixture.pipeline(r["model"] as! String)
        p.conditioner.embeddings!.reload()
        try FamilyPipelineTests.check(r, p)
        #expect(p.usedEmbeddings(PipelineFixture.settings(r)).map(\.name).sorted() == ["xlone", "xltwo"])
        // A1111's "TI hashes": each used embedding's short hash (A1111's, recorded by the reference).
        let files = FamilyEmbeddingFixture.root["files"] as! [[String: Any]]
        func hash(_ name: String) -> String {
            let on = files.first { ($0["file"] as! String).hasSuffix(name + ".safetensors") }!["on"] as! [String: [String: Any]]
            return on["sdxl"]!["shorthash"] as! String
        }
        var s = PipelineFixture.settings(r)
        s.batchSize = 1
        let image = try withNoGrad { try p.generate(s)[0] }
        let ti = image.infotext.parameters.first { $0.key == "TI hashes" }?.value
        #expect(ti == "xlone: \(hash("xlone")), xltwo: \(hash("xltwo"))", "\(ti ?? "none")")
    }
}
