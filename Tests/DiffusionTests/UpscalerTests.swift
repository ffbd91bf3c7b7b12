import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Imaging
@testable import Models
@testable import Prompting

/// The pixel upscalers against A1111 1.10 (Tests/Fixtures/generators/make_esrgan_fixtures.py and
/// make_hires_pixel_fixtures.py): ESRGAN models in both key layouts (tiny RRDBNets saved by torch)
/// run by spandrel as A1111 runs them, whole and in A1111's tiles; `Upscaler.upscale`'s loop with
/// the models, Lanczos and Nearest; the hires fix with the pixel upscalers; hostile model files.
enum UpscalerFixture {
    /// The ESRGAN runs' bounds. oneDNN's AVX-512 direct convolution sums in another order than its
    /// AVX2 one, and the tiny ESRGAN models (f16, LeakyReLU, upscale passes), then the hires pass's
    /// ancestral sampler, carry that further than the other pipelines: measured on a Zen 4, 97.7%
    /// of the upscaled bytes equal and hires latents within 5.8e-4 (2.2e-4 without an ESRGAN
    /// model); with DNNL_MAX_CPU_ISA=AVX2 every run is within 99% and 1e-4, as on AVX2 machines.
    static let equalFraction = 0.97, hiresLatentBound: Float = 1e-3
    nonisolated(unsafe) static let esrgan = TestFixtures.json("esrgan", in: .module)
    nonisolated(unsafe) static let hires = TestFixtures.json("hires_pixel", in: .module)
    static var cases: [[String: Any]] { esrgan["cases"] as! [[String: Any]] }
    static var caseNames: [String] { cases.map { $0["name"] as! String } }
    static var runNames: [String] { (hires["runs"] as! [[String: Any]]).map { $0["name"] as! String } }
    static let folder = TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/upscalers"
    static let library = UpscalerLibrary(directories: [folder])

    static func picture(_ name: String) -> RGBImage {
        let p = (esrgan["pictures"] as! [String: Any])[name] as! [String: Any], shape = p["shape"] as! [Int]
        return RGBImage(width: shape[1], height: shape[0], rgb: NamedRuns.bytes(p))
    }
}

@Suite(.serialized) struct UpscalerTests {
    @Test("ESRGAN models (old and BasicSR layouts, f16, pixel-unshuffle 2x), tiles and A1111's upscale loop equal A1111's output",
          arguments: UpscalerFixture.caseNames)
    func esrgan(_ name: String) throws {
        let c = UpscalerFixture.cases.first { $0["name"] as? String == name }!
        let picture = UpscalerFixture.picture(c["picture"] as! String)
        let tiling = UpscalerTiling(size: c["tile"] as! Int, overlap: c["overlap"] as! Int)
        let upscaler = try #require(try UpscalerFixture.library.pixelUpscaler(c["upscaler"] as! String, tiling: tiling))
        let out: RGBImage
        switch c["kind"] as! String {
        case "patch", "tiled":
            guard case let .model(_, network, _) = upscaler else { Issue.record("\(name): not a model"); return }
            out = try ESRGANUpscale.run(network, picture, tiling: tiling)
        default:
            out = try upscaler.upscale(picture, scale: (c["scale"] as! NSNumber).doubleValue)
        }
        let expected = c["output"] as! [String: Any], shape = expected["shape"] as! [Int]
        #expect(out.width == shape[1] && out.height == shape[0], "\(name): \(out.width)x\(out.height)")
        FamilyPipelineTests.expectImagesClose(out.rgb, NamedRuns.bytes(expected), name, equalFraction: UpscalerFixture.equalFraction)
    }

    @Test("hires fix with None, Lanczos, Nearest and an ESRGAN model: final latents within 1e-3 and images within 2 levels of A1111's",
          arguments: UpscalerFixture.runNames)
    func hiresPixel(_ name: String) throws {
        let r = (UpscalerFixture.hires["runs"] as! [[String: Any]]).first { $0["name"] as? String == name }!
        var p = HiresFixture.pipeline
        p.upscalers = UpscalerFixture.library
        let s = try HiresFixture.settings(r).withSeedsDrawn()
        let latents = try withNoGrad { try p.latents(s) }
        let hires = r["hires"] as! [String: Any]
        let error = FamilyPipelineTests.relative(latents, FamilyFixture.floats(hires["latents"]))
        print("\(name): final latents within \(error) of A1111's")
        #expect(error <= UpscalerFixture.hiresLatentBound, "\(name): final latents off by \(error)")
        let images = try p.generate(s)
        let image = r["image"] as! [String: Any], shape = image["shape"] as! [Int]
        #expect(images.allSatisfy { $0.width == shape[2] && $0.height == shape[1] }, "\(name)")
        FamilyPipelineTests.expectImagesClose(images.flatMap(\.rgb), NamedRuns.bytes(image), name,
                                              equalFraction: UpscalerFixture.equalFraction)
        let expected = (r["infotext_parameters"] as! [[[String]]])[0].filter { $0[0].hasPrefix("Hires") }.map { "\($0[0]): \($0[1])" }
        let written = images[0].infotext.parameters.filter { $0.key.hasPrefix("Hires") }.map { "\($0.key): \($0.value)" }
        #expect(written == expected, "\(name): \(written)")
    }

    @Test("an unknown upscaler is refused with every name that exists, model files included")
    func unknownName() throws {
        #expect(throws: GenerationError.self) { try UpscalerFixture.library.pixelUpscaler("4x-Missing", tiling: UpscalerTiling()) }
        do {
            _ = try UpscalerFixture.library.pixelUpscaler("4x-Missing", tiling: UpscalerTiling())
        } catch {
            let text = "\(error)"
            for known in ["Latent (bicubic)", "Lanczos", "Nearest", "None", "4x-TinyOld", "4x-TinyBasicSR", "2x-TinyPlus"] {
                #expect(text.contains(known), "\(text)")
            }
        }
        #expect(try UpscalerFixture.library.pixelUpscaler("Latent", tiling: UpscalerTiling()) == nil)
    }

    @Test("a hostile .pth in the upscaler folder is refused, naming the file, and nothing in it runs")
    func hostile() throws {
        let hostile = UpscalerFixture.esrgan["hostile"] as! [[String: Any]]
        let folder = TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/hostile-upscalers"
        let library = UpscalerLibrary(directories: [folder])
        for h in hostile {
            let canary = h["canary"] as! String
            try? FileManager.default.removeItem(atPath: canary)
            let name = ((h["file"] as! String) as NSString).lastPathComponent
            let stem = (name as NSString).deletingPathExtension
            do {
                _ = try library.pixelUpscaler(stem, tiling: UpscalerTiling())
                Issue.record("\(name) was accepted")
            } catch {
                #expect("\(error)".contains(name), "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: canary), "\(name) ran code")
        }
    }
}
