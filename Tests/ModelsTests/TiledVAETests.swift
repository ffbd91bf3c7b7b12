import Engine
import Foundation
import TestSupport
import Testing
@testable import Models

/// The tiled VAE decode against diffusers' `tiled_decode` on the tiny VAE (Tests/Fixtures/generators/make_tiled_vae_fixture.py).
@Suite struct TiledVAETests {
    nonisolated(unsafe) static let root = TestFixtures.json("tiled_vae", in: .module)
    static func tensor(_ name: String) throws -> Tensor {
        let t = root[name] as! [String: Any]
        return try Tensor(shape: (t["shape"] as! [NSNumber]).map(\.intValue), data: (t["data"] as! [NSNumber]).map(\.floatValue))
    }

    @Test func tilesBlendAsDiffusersTiledDecodeDoes() throws {
        let vae = try AutoencoderKL(NetworkFixture.weights, config: NetworkFixture.config.vae!)
        let z = try Self.tensor("z")
        let tile = (Self.root["latent_tile"] as! NSNumber).intValue
        try withNoGrad {
            let tiled = try vae.decodeTiled(z, latentTile: tile)
            let reference = try Self.tensor("tiled")
            #expect(tiled.shape == reference.shape)
            #expect(try relativeL2(tiled, reference) <= 1e-4)
            // The untiled decode matches diffusers' untiled one, and tiling really changes the image.
            let untiled = try vae.decode(z)
            #expect(try relativeL2(untiled, Self.tensor("untiled")) <= 1e-4)
            #expect(try relativeL2(tiled, untiled) > 1e-2)
            // A latent no larger than one tile is decoded whole.
            let small = try z.sliced(dim: 2, 0, tile).sliced(dim: 3, 0, tile).contiguous()
            #expect(try vae.decodeTiled(small, latentTile: tile).toArray() == vae.decode(small).toArray())
        }
    }
}
