import Engine
import Foundation
import TestSupport
import Testing
@testable import Formats
@testable import Models
@testable import Prompting

/// Prompts with textual-inversion embeddings against A1111's rules run with transformers on the
/// tiny model (Tests/Fixtures/generators/make_embedding_fixtures.py).
enum EmbeddingFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("embedding_conditioning", in: .module)
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path + "/embeddings"
    static let modelPath = TestFixtures.tinyModelPath
    nonisolated(unsafe) static let conditioner: Conditioner = {
        let weights = try! ModelWeights(try! ModelFile.open(modelPath))
        let config = try! ArchitectureDetector.detect(weights)
        var c = Conditioner(textEncoder: try! CLIPTextModel(weights, config: config.textEncoder!), tokenizer: TokenizerCorpus.tokenizer)
        let db = EmbeddingDatabase(directories: [folder], width: 32, tokenizer: TokenizerCorpus.tokenizer)
        db.reload()
        c.embeddings = db
        return c
    }()
    static var prompts: [Int] { Array((root["prompts"] as! [Any]).indices) }
}

@Suite(.serialized) struct EmbeddingConditioningTests {
    @Test("the folder loads as A1111 reads it: names by file stem, subfolders, formats; wrong width and broken files skipped")
    func database() {
        let db = EmbeddingFixture.conditioner.embeddings!
        #expect(db.embeddings.keys.sorted() == (EmbeddingFixture.root["loaded"] as! [String]))
        #expect(db.skipped.contains { $0.file.hasSuffix("wide.pt") && $0.reason.contains("width 768") })
        #expect(db.skipped.contains { $0.file.hasSuffix("broken.pt") })
        #expect(!db.skipped.contains { $0.file.hasSuffix("empty.pt") || $0.file.hasSuffix("notes.txt") })
        for f in EmbeddingFixture.root["files"] as! [[String: Any]] where (f["outcome"] as? String) == "loaded" {
            let e = db.embeddings[f["name"] as! String]!
            #expect(e.vectorCount == (f["vectors"] as! NSNumber).intValue && e.shortHash == f["shorthash"] as? String)
            #expect(e.step == (f["step"] as? NSNumber)?.intValue && e.checkpointHash == f["sd_checkpoint"] as? String)
        }
    }

    @Test("chunks, embedding placement and conditioning equal A1111's", arguments: EmbeddingFixture.prompts)
    func prompt(_ index: Int) throws {
        let p = (EmbeddingFixture.root["prompts"] as! [[String: Any]])[index]
        let c = EmbeddingFixture.conditioner
        let prompt = p["prompt"] as! String
        let chunks = c.chunks(prompt)
        let expected = p["chunks"] as! [[String: Any]]
        #expect(chunks.count == expected.count, "\(prompt): chunk count")
        for (got, want) in zip(chunks, expected) {
            #expect(got.tokens == (want["tokens"] as! [NSNumber]).map(\.intValue), "\(prompt): tokens")
            #expect(got.multipliers == (want["multipliers"] as! [NSNumber]).map(\.floatValue), "\(prompt): multipliers")
            let fixes = (want["fixes"] as! [[String: Any]]).map { ($0["offset"] as! NSNumber).intValue }
            #expect(got.fixes.map(\.offset) == fixes, "\(prompt): fix offsets")
            #expect(got.fixes.map(\.embedding.name) == (want["fixes"] as! [[String: Any]]).map { $0["name"] as! String })
        }
        let z = try withNoGrad { try c.encode(chunks, clipSkip: (p["clip_skip"] as! NSNumber).intValue) }
        let ref = ((p["z"] as! [String: Any])["data"] as! [NSNumber]).map(\.floatValue)
        let got = try z.toArray()
        var d = 0.0, n = 0.0
        for (a, b) in zip(got, ref) { d += Double(a - b) * Double(a - b); n += Double(b) * Double(b) }
        #expect(got.count == ref.count && (d / n).squareRoot() <= 1e-5, "\(prompt): relative L2 \((d / n).squareRoot())")
    }
}

@Suite(.serialized) struct ExplicitEmbeddingTests {
    @Test("<embedding:name> and <name> always mean the embedding; unknown names and extra-network tags stay text")
    func explicitForms() throws {
        let c = EmbeddingFixture.conditioner
        let plain = c.chunks("a redshape on a table")
        #expect(c.chunks("a <embedding:redshape> on a table") == plain)
        #expect(c.chunks("a <RedShape> on a table") == plain)
        let unknown = c.chunks("a <nothing> on a table <lora:x:1>")
        #expect(unknown[0].fixes.isEmpty)
        #expect(unknown[0].tokens == [CLIPTokenizer.bos] + TokenizerCorpus.tokenizer.encode("a <nothing> on a table <lora:x:1>")
            + Array(repeating: CLIPTokenizer.eos, count: 76 - TokenizerCorpus.tokenizer.encode("a <nothing> on a table <lora:x:1>").count))
        // Glued to other text, the explicit form still matches where the plain word would not.
        let glued = c.chunks("big<redshape>s")
        #expect(glued[0].fixes.map(\.embedding.name) == ["redshape"])
        #expect(c.chunks("bigredshapes")[0].fixes.isEmpty)
    }
}

@Suite(.serialized) struct TokenReportTests {
    @Test("the tokens report shows chunks, counts, weights and matched embeddings")
    func report() {
        let db = EmbeddingFixture.conditioner.embeddings!
        let lines = TokenReport(prompt: "a (redshape:1.3) in bluestyle, BREAK glow", tokenizer: TokenizerCorpus.tokenizer, embeddings: db).lines
        #expect(lines[0] == "76 tokens in 2 chunks of 75")
        #expect(lines.contains("chunk 1: 7 of 75") && lines.contains("chunk 2: 1 of 75"))
        #expect(lines.contains("  [1] embedding redshape: 1 vector, weight 1.3"))
        #expect(lines.contains("  [3] embedding bluestyle: 3 vectors, weight 1.0"))
        #expect(lines.contains("  [0] 320 a</w> weight 1.0"))
    }
}

/// Embeddings inside PNG images (Tests/Fixtures/generators/make_png_embedding_fixtures.py, checked against A1111's
/// own reader).
@Suite struct PNGEmbeddingTests {
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path + "/png-embeddings"
    nonisolated(unsafe) static let expected: [String: [String: Any]] = {
        let data = FileManager.default.contents(atPath: folder + "/expected.json")!
        return (try! JSONSerialization.jsonObject(with: data) as! [String: Any])["files"] as! [String: [String: Any]]
    }()

    @Test("text-chunk and pixel-hidden embeddings read as A1111 reads them", arguments: ["pngtext.png", "pngpixels.png", "both.png", "framed.png", "plain.png"])
    func read(_ file: String) throws {
        let e = Self.expected[file]!
        let image = try EmbeddingImage.read(Self.folder + "/" + file)
        guard (e["loaded"] as? Bool) == true, let want = e["embedding"] as? [String: Any] else {
            #expect(image == nil, "\(file) should carry no embedding")
            return
        }
        let got = try #require(image, "\(file): no embedding found")
        #expect(got.name == want["name"] as? String)
        #expect(got.step == (want["step"] as? NSNumber)?.intValue && got.checkpointHash == want["sd_checkpoint"] as? String)
        #expect(got.vectors == (want["vectors"] as! [[NSNumber]]).map { $0.map(\.floatValue) })
    }

    @Test("the database loads image embeddings by their stored name and ignores previews and plain pictures")
    func database() {
        let db = EmbeddingDatabase(directories: [Self.folder], width: 32, tokenizer: TokenizerCorpus.tokenizer)
        db.reload()
        #expect(db.embeddings.keys.sorted() == ["pngboth", "pngframed", "pngpixels", "pngtext"])
        #expect(db.skipped.isEmpty)
        #expect(db.embeddings["pngtext"]?.vectorCount == 2 && db.embeddings["pngboth"]?.vectorCount == 3)
    }
}

@Suite(.serialized) struct EmbeddingListingTests {
    @Test("the listing names loaded embeddings with vectors, width, step, checkpoint and hash, and skipped files with the reason")
    func listing() {
        let lines = EmbeddingListing(EmbeddingFixture.conditioner.embeddings!).lines
        #expect(lines[0].hasPrefix("5 embeddings loaded from"))
        #expect(lines.contains { $0.hasPrefix("  redshape: 1 vector x 32, step 500, trained on tiny-sd [a1b2c3d4e5], [530bd10b33f1]") })
        #expect(lines.contains { $0.hasPrefix("  bluestyle: 3 vectors x 32, step 0, [") })
        #expect(lines.contains("skipped:"))
        #expect(lines.contains { $0.contains("wide.pt") && $0.contains("width 768") })
    }
}
