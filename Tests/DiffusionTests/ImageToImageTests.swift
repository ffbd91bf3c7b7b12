import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Models
@testable import Prompting

/// img2img (no mask) on the tiny SD 1.x model against A1111's Img2Img processing restated with
/// diffusers modules and k-diffusion samplers (Tests/Fixtures/generators/make_img2img_fixtures.py,
/// with the posterior mean where A1111 samples with an unseeded generator): the resize modes
/// (Pillow LANCZOS, crops, bicubic fill bands, the latent stretch), the step rules with and
/// without "do exact steps", the final latents and 8-bit images.
enum Img2ImgFixture {
    static let fixture = NamedRuns(TestFixtures.json("img2img", in: .module))
    static var names: [String] { fixture.names }
    static func run(_ name: String) -> [String: Any] { fixture.run(name) }
    static var fits: [[String: Any]] { fixture.root["fits"] as! [[String: Any]] }
    static func bytes(_ v: Any?) -> [UInt8] { NamedRuns.bytes(v) }
}

@Suite(.serialized) struct ImageToImageTests {
    @Test("A1111's resize modes 0-2 fit the init picture byte for byte (Pillow 9.5's LANCZOS, crops, fill bands)",
          arguments: Array(Img2ImgFixture.fits.indices))
    func fit(_ index: Int) throws {
        let f = Img2ImgFixture.fits[index], size = f["size"] as! [Int]
        let picture = try RGBImage.read(TestFixtures.repositoryRoot + "/" + (f["init"] as! String))
        let mode = ImageToImage.ResizeMode(rawValue: f["resize_mode"] as! Int)!
        let fitted = ImageToImage.fit(picture, width: size[0], height: size[1], mode: mode)
        let expected = Img2ImgFixture.bytes(f["fitted"])
        let differing = zip(fitted.rgb, expected).filter { $0 != $1 }.count
        #expect(fitted.rgb.count == expected.count && differing == 0, "\(f["init"]!) to \(size) mode \(mode): \(differing) bytes differ")
    }

    @Test("img2img: final latents and images equal A1111's (batch 2)", arguments: Img2ImgFixture.names)
    func run(_ name: String) throws {
        let r = Img2ImgFixture.run(name), j = r["settings"] as! [String: Any], reference = r["img2img"] as! [String: Any]
        let s = FixtureSettings.from(j)
        let i2i = ImageToImage(initImage: try RGBImage.read(TestFixtures.repositoryRoot + "/" + (j["init"] as! String)),
                               resizeMode: ImageToImage.ResizeMode(rawValue: j["resize_mode"] as! Int)!,
                               denoise: (j["denoise"] as! NSNumber).doubleValue, exactSteps: j["exact_steps"] as! Bool)
        let steps = ImageToImage.steps(s.steps, denoise: i2i.denoise, exact: i2i.exactSteps)
        #expect(steps.total == reference["steps"] as! Int && steps.start == reference["start_index"] as! Int, "\(name): steps \(steps)")
        let p = HiresFixture.pipeline
        let latents = try withNoGrad { try p.latents(s, from: i2i) }
        let error = FamilyPipelineTests.relative(latents, FamilyFixture.floats(reference["latents"]))
        print("\(name): final latents within \(error) of A1111's")
        #expect(error <= 1e-4, "\(name): final latents off by \(error)")
        let shape = [4, s.height / p.model.vaeScale, s.width / p.model.vaeScale], per = shape.reduce(1, *)
        var rgb: [UInt8] = []
        for i in 0..<s.batchSize { rgb += try p.decode(Array(latents[(i * per)..<((i + 1) * per)]), shape: shape) }
        FamilyPipelineTests.expectImagesClose(rgb, Img2ImgFixture.bytes(r["image"]), name)
    }
}
