import Foundation
import Formats
import Testing
@testable import Training

@Suite struct OptimizerStateTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/optim"

    struct Expected: Decodable {
        struct Case: Decodable { let values: [Float]; let hash: String }
        let hash: String, step: Double, lr: Double
        let vectors: [Float], exp_avg: [Float], exp_avg_sq: [Float]
        let checksums: [Case]
    }
    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/expected.json")))
    }

    /// A1111's checksum, computed by Tests/Fixtures/generators/make_optim_fixtures.py with torch and Python ints.
    @Test func checksumEqualsA1111() throws {
        let e = try Self.expected()
        for c in e.checksums { #expect(OptimizerStateFile.checksum(c.values) == c.hash, "\(c.values)") }
        #expect(OptimizerStateFile.checksum(e.vectors) == e.hash)
    }

    /// An A1111-made `.optim` (torch.save of AdamW's state_dict after 3 steps) loads with every
    /// moment bit for bit, its step and its learning rate.
    @Test func a1111OptimLoads() throws {
        let e = try Self.expected()
        let embedding = try #require(EmbeddingFile.recognize(try ModelFile.open("\(Self.folder)/a1111.pt")))
        #expect(embedding.step == 3)
        let vectors = try embedding.vectors["clip"]!.materialize().to(.f32).toArray()
        #expect(vectors == e.vectors)
        let state = try #require(try OptimizerStateFile.load("\(Self.folder)/a1111.pt.optim", vectors: vectors))
        #expect(state.step == Int(e.step) && state.lr == e.lr)
        #expect(state.expAvg == e.exp_avg && state.expAvgSq == e.exp_avg_sq)
        #expect(state.beta1 == 0.9 && state.beta2 == 0.999 && state.eps == 1e-8 && state.weightDecay == 0)
        // Other vectors: the state is not theirs.
        var other = vectors; other[0] += 0.5
        #expect(try OptimizerStateFile.load("\(Self.folder)/a1111.pt.optim", vectors: other) == nil)
    }

    /// sdshell's `.optim` reads back equal, and its bytes equal the golden file that
    /// scripts/check_written_optim.py loads into torch's AdamW (weights_only=True).
    @Test func writtenOptimRoundTripsAndMatchesGolden() throws {
        let e = try Self.expected()
        let loaded = try #require(try OptimizerStateFile.load("\(Self.folder)/a1111.pt.optim", vectors: e.vectors))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("written-\(UUID()).pt.optim").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try OptimizerStateFile.save(loaded, vectors: e.vectors, shape: [2, 32], to: path)
        let again = try #require(try OptimizerStateFile.load(path, vectors: e.vectors))
        #expect(again.step == loaded.step && again.lr == loaded.lr && again.expAvg == loaded.expAvg && again.expAvgSq == loaded.expAvgSq)
        let golden = try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/written_by_sdshell.pt.optim"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == golden)
    }

    @Test func damagedStateIsNamed() throws {
        let path = "\(Self.folder)/a1111.pt"   // an embedding, not an optimizer state
        #expect { try OptimizerStateFile.load(path, vectors: [0]) } throws: { "\($0)".contains(path) && "\($0)".contains("hash") }
    }
}
