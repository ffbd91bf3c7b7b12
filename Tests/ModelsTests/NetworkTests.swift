import Engine
import Foundation
import TestSupport
import Testing
@testable import Formats
@testable import Models

/// The networks against diffusers/transformers on the tiny model (Tests/Fixtures/generators/make_network_fixtures.py).
enum NetworkFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("networks", in: .module)
    /// The entry at a path such as ["unet", "outputs", "sample"].
    static func entry(_ path: [String]) -> [String: Any] {
        path.reduce(root) { ($0[$1] as! [String: Any]) }
    }
    static func tensor(_ path: String...) throws -> Tensor {
        let t = entry(path)
        return try Tensor(shape: (t["shape"] as! [NSNumber]).map(\.intValue), data: (t["data"] as! [NSNumber]).map(\.floatValue))
    }
    static func ints(_ path: String...) -> [[Int]] {
        let t = entry(path)
        let shape = (t["shape"] as! [NSNumber]).map(\.intValue), flat = (t["data"] as! [NSNumber]).map(\.intValue)
        return (0..<shape[0]).map { Array(flat[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
    }
    static let weights = try! ModelWeights(try! ModelFile.open(TinyModel.path("diffusers_tiny")))
    static let config = try! ArchitectureDetector.detect(weights)
}

/// ||a - b|| / ||b||.
func relativeL2(_ a: Tensor, _ b: Tensor) throws -> Double {
    let x = try a.toArray(), y = try b.toArray()
    precondition(x.count == y.count)
    var d = 0.0, n = 0.0
    for (p, q) in zip(x, y) { d += Double(p - q) * Double(p - q); n += Double(q) * Double(q) }
    return (d / max(n, 1e-30)).squareRoot()
}

@Suite struct NetworkTests {
    @Test("CLIP text encoder hidden states (clip skip 1 and 2) equal transformers' to 1e-4")
    func textEncoder() throws {
        let model = try CLIPTextModel(NetworkFixture.weights, config: NetworkFixture.config.textEncoder!)
        let ids = NetworkFixture.ints("text_encoder", "inputs", "input_ids")
        try withNoGrad {
            let last = try model(ids: ids)
            #expect(try relativeL2(last, NetworkFixture.tensor("text_encoder", "outputs", "last_hidden_state")) <= 1e-4)
            let skip2 = try model(ids: ids, clipSkip: 2)
            #expect(try relativeL2(skip2, NetworkFixture.tensor("text_encoder", "outputs", "clip_skip_2")) <= 1e-4)
        }
    }

    @Test("one UNet evaluation equals diffusers' to 1e-4")
    func unet() throws {
        let model = try UNet(NetworkFixture.weights, config: NetworkFixture.config.unet!)
        let x = try NetworkFixture.tensor("unet", "inputs", "x"), context = try NetworkFixture.tensor("text_encoder", "outputs", "last_hidden_state")
        let t = try NetworkFixture.tensor("unet", "inputs", "t").toArray()
        try withNoGrad {
            let temb = try model.timeEmbedding(t)
            #expect(try relativeL2(temb, NetworkFixture.tensor("unet", "debug", "time_embedding")) <= 1e-5)
            let out = try model(x, timesteps: t, context: context)
            #expect(try relativeL2(out, NetworkFixture.tensor("unet", "outputs", "sample")) <= 1e-4)
        }
    }

    @Test("VAE decode and encode equal diffusers' to 1e-4")
    func vae() throws {
        let model = try AutoencoderKL(NetworkFixture.weights, config: NetworkFixture.config.vae!)
        try withNoGrad {
            let decoded = try model.decode(NetworkFixture.tensor("vae", "decode", "inputs", "z"))
            #expect(try relativeL2(decoded, NetworkFixture.tensor("vae", "decode", "outputs", "decoded")) <= 1e-4)
            let (mean, std) = try model.encode(NetworkFixture.tensor("vae", "encode", "inputs", "image"))
            #expect(try relativeL2(mean, NetworkFixture.tensor("vae", "encode", "outputs", "mean")) <= 1e-4)
            #expect(try relativeL2(std, NetworkFixture.tensor("vae", "encode", "outputs", "std")) <= 1e-4)
        }
    }
}
