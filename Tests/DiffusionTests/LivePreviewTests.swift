import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Models

/// A1111's "Approx cheap" live preview against its formula in PyTorch
/// (Tests/Fixtures/generators/make_preview_fixtures.py), SD 1.x/2.x and SDXL factors.
@Suite struct LivePreviewTests {
    @Test(arguments: [0, 1])
    func approximationEqualsA1111s(_ index: Int) throws {
        let root = TestFixtures.json("live_preview", in: .module)
        let c = (root["cases"] as! [[String: Any]])[index]
        let family: ModelFamily = c["family"] as! String == "sdxl" ? .sdxl : .sd1
        let latent = FamilyFixture.floats(c["latent"]), expected = FamilyFixture.floats(c["approximation"])
        let mine = LivePreview.approximation(latent, height: 8, width: 8, family: family)
        let error = zip(mine, expected).map { abs($0 - $1) }.max() ?? 1
        #expect(error <= 1e-6, "\(family): off by \(error)")
        let rgb = LivePreview.rgb(latent, height: 8, width: 8, family: family)
        let reference = NamedRuns.bytes(c["rgb"])
        #expect(zip(rgb, reference).allSatisfy { abs(Int($0) - Int($1)) <= 1 } && rgb.count == reference.count)
    }

    @Test func theSamplerShowsAPreviewEveryNSteps() throws {
        var p = HiresFixture.pipeline
        let shown = MessageLog()
        p.livePreview = (2, { rgb, w, h in shown.append("\(w)x\(h) \(rgb.count)") })
        var s = GenerationSettings()
        s.prompt = "a red circle"
        s.steps = 5
        s.seed = 3
        (s.width, s.height) = (16, 16)
        _ = try p.generate(s)
        #expect(shown.lines == ["8x8 192", "8x8 192"], "\(shown.lines)")
    }
}
