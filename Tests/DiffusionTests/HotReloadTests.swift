import Engine
import Foundation
import Testing
@testable import Diffusion
@testable import Formats
@testable import Models
@testable import Prompting

/// "Put the embedding into the embeddings directory and use its filename in the prompt. You
/// don't have to restart the program."
@Suite(.serialized) struct HotReloadTests {
    private func vectors(_ n: Int, _ seed: Float) throws -> Tensor {
        try Tensor(shape: [n, 32], data: (0..<(n * 32)).map { Float($0 % 7) * 0.01 * seed - 0.02 })
    }

    @Test("embeddings are picked up, changed, removed and skipped between generations without a restart")
    func hotReload() throws {
        let dir = NSTemporaryDirectory() + "sdshell-emb-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        let model = PipelineFixture.pipeline.model
        let tokenizer = try CLIPTokenizer.shipped()
        let db = EmbeddingDatabase(directories: [dir], width: 32, tokenizer: tokenizer)
        var pipeline = TextToImage(model: model, tokenizer: tokenizer, embeddings: db)
        var messages: [String] = []
        pipeline.onMessage = { messages.append($0) }
        var s = GenerationSettings()
        s.prompt = "a photo of zorblat on a table"; s.steps = 1; s.width = 16; s.height = 16; s.seed = 5; s.sampler = .euler
        let plain = try withNoGrad { try pipeline.latents(s) }
        #expect(pipeline.usedEmbeddings(s).isEmpty)

        // Dropped into a subfolder: used at the next generation.
        try EmbeddingFile.writeA1111(name: "zorblat", vectors: try vectors(2, 1), step: 10, checkpointHash: nil, checkpointName: nil,
                                     to: dir + "/sub/zorblat.pt")
        let first = try withNoGrad { try pipeline.latents(s) }
        #expect(pipeline.usedEmbeddings(s).map(\.name) == ["zorblat"])
        #expect(first != plain)
        #expect(messages.contains { $0.contains("embedding zorblat loaded: 2 vectors") })

        // Overwritten with other vectors (new size): the new vectors are used.
        try EmbeddingFile.writeA1111(name: "zorblat", vectors: try vectors(3, -2), step: 20, checkpointHash: nil, checkpointName: nil,
                                     to: dir + "/sub/zorblat.pt")
        let second = try withNoGrad { try pipeline.latents(s) }
        #expect(db.embeddings["zorblat"]?.vectorCount == 3)
        #expect(second != first)

        // A truncated file is skipped with a message; the good one still works.
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/sub/zorblat.pt"))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir + "/broken.pt"))
        let third = try withNoGrad { try pipeline.latents(s) }
        #expect(third == second)
        #expect(db.skipped.contains { $0.file.hasSuffix("broken.pt") })
        #expect(messages.contains { $0.contains("broken.pt skipped") })

        // Deleted: the name is plain text again.
        try FileManager.default.removeItem(atPath: dir + "/sub/zorblat.pt")
        let fourth = try withNoGrad { try pipeline.latents(s) }
        #expect(fourth == plain)
        #expect(pipeline.usedEmbeddings(s).isEmpty)
    }

    @Test("an embedding of another width is listed as skipped with the reason")
    func widthMismatch() throws {
        let dir = NSTemporaryDirectory() + "sdshell-emb-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try EmbeddingFile.writeA1111(name: "wide", vectors: try Tensor.zeros([1, 768]), step: 0, checkpointHash: nil, checkpointName: nil,
                                     to: dir + "/wide.pt")
        let db = EmbeddingDatabase(directories: [dir], width: 32, tokenizer: try CLIPTokenizer.shipped())
        db.reload()
        #expect(db.embeddings.isEmpty)
        #expect(db.skipped.first?.reason.contains("width 768") == true)
    }
}
