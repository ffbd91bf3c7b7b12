import Diffusion
import Foundation
import Models
import Prompting
import Testing
import TestSupport

/// The demo embeddings that ship in `embeddings/` show their concepts on the demo model, as
/// `examples/embeddings.sdscript` says they do (issue #26 item 29: the first `tent.pt` drew blue
/// squares on red). Each is judged by the demo dataset's classifier on six seeds at the examples'
/// settings (CFG 1.5, Euler a, 20 steps, 64x64).
struct DemoEmbeddingTests {
    static let root = TestFixtures.repositoryRoot

    /// What the classifier reads in "a NAME" for seeds 1-6, with the shipped `embeddings/NAME.pt`
    /// (copied alone into a temporary folder, so no other file can stand in for it).
    static func seen(_ name: String) throws -> [ShapeClassifier.Result] {
        let folder = NSTemporaryDirectory() + "sdshell-demo-embedding-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: root + "/embeddings/\(name).pt", toPath: folder + "/\(name).pt")
        let model = try StableDiffusionModel(path: root + "/models/demo.safetensors")
        let tokenizer = try CLIPTokenizer.shipped()
        let embeddings = EmbeddingDatabase(directories: [folder], width: model.config.textEncoder!.hiddenSize, tokenizer: tokenizer)
        let pipeline = TextToImage(model: model, tokenizer: tokenizer, embeddings: embeddings)
        return try (1...6).map { seed in
            var s = GenerationSettings()
            s.prompt = "a \(name)"; s.seed = Int64(seed); s.subseed = 0; s.rng = .cpu
            s.width = 64; s.height = 64; s.steps = 20; s.cfgScale = 1.5
            let image = try pipeline.generate(s)[0]
            return ShapeClassifier.classify(rgb: image.rgb, width: 64, height: 64)
        }
    }

    @Test func tentDrawsAGreenTriangleOnWhite() throws {
        let results = try Self.seen("tent")
        print("\"a tent\", seeds 1-6: " + results.map(\.caption).joined(separator: "; "))
        let hits = results.filter { $0.caption == "a green triangle on a white background" }.count
        #expect(hits >= 5, "\(hits) of 6 images of \"a tent\" are a green triangle on white: \(results)")
    }
}
