import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Imaging
@testable import Models
@testable import Prompting

/// Inpainting on the tiny SD 1.x model (latent mask) and on the tiny 9-channel inpainting model
/// its generator makes, against A1111 1.10's Img2Img processing with a mask restated with
/// diffusers modules, k-diffusion samplers, Pillow and OpenCV
/// (Tests/Fixtures/generators/make_inpaint_fixtures.py; the posterior mean where A1111 samples):
/// the mask read, blurred, resized or cropped; the picture fitted, cropped and filled; the latent
/// mask; the masked-picture conditioning; the final latents and the images with the unmasked
/// pixels put back; the infotext.
enum InpaintFixture {
    static let fixture = NamedRuns(TestFixtures.json("inpaint", in: .module))
    static var runs: [[String: Any]] { fixture.runs }
    static var names: [String] { fixture.names }
    static func run(_ name: String) -> [String: Any] { fixture.run(name) }
    static func bytes(_ v: Any?) -> [UInt8] { NamedRuns.bytes(v) }
    /// An 8-bit mask as one byte a pixel (A1111's resize modes 1 and 2 return an "L" mask as RGB).
    static func mask(_ v: Any?) -> [UInt8] {
        let all = bytes(v), shape = (v as! [String: Any])["shape"] as! [Int]
        return shape.count == 3 ? stride(from: 0, to: all.count, by: shape[2]).map { all[$0] } : all
    }
    static let inpaintModelPath = TestFixtures.repositoryRoot + "/Tests/Fixtures/tiny-sd-inpaint.safetensors"
    nonisolated(unsafe) static let inpaintPipeline = TextToImage(model: try! StableDiffusionModel(path: inpaintModelPath),
                                                                 tokenizer: try! CLIPTokenizer.shipped())
    static func pipeline(_ r: [String: Any]) -> TextToImage {
        r["model"] as! String == "tiny-sd-inpaint" ? inpaintPipeline : HiresFixture.pipeline
    }

    static func settings(_ r: [String: Any]) -> GenerationSettings { FixtureSettings.from(r["settings"] as! [String: Any]) }

    static func imageToImage(_ r: [String: Any]) throws -> ImageToImage {
        let j = r["settings"] as! [String: Any]
        var mask = try Inpainting.readMask(TestFixtures.repositoryRoot + "/" + (j["mask"] as! String))
        mask.blur = j["mask_blur"] as! Int
        mask.invert = j["inpainting_mask_invert"] as! Int == 1
        mask.content = Inpainting.MaskedContent(rawValue: j["inpainting_fill"] as! Int)!
        mask.onlyMasked = j["inpaint_full_res"] as! Int == 1
        mask.padding = j["inpaint_full_res_padding"] as! Int
        return ImageToImage(initImage: try RGBImage.read(TestFixtures.repositoryRoot + "/" + (j["init"] as! String)),
                            resizeMode: ImageToImage.ResizeMode(rawValue: j["resize_mode"] as! Int)!,
                            denoise: (j["denoise"] as! NSNumber).doubleValue, exactSteps: j["exact_steps"] as! Bool, inpainting: mask)
    }

    static var inpaintNames: [String] { runs.filter { $0["kind"] as? String == "inpaint" }.map { $0["name"] as! String } }
}

@Suite(.serialized) struct InpaintingTests {
    @Test("the mask, the fitted or cropped and filled picture, the overlay and the latent mask equal A1111's byte for byte",
          arguments: InpaintFixture.inpaintNames)
    func preparation(_ name: String) throws {
        let r = InpaintFixture.run(name), m = r["mask"] as! [String: Any], picture = r["picture"] as! [String: Any]
        let s = InpaintFixture.settings(r), i2i = try InpaintFixture.imageToImage(r)
        let binary = i2i.inpainting!.invert ? PillowCompositing.inverted(i2i.inpainting!.mask) : i2i.inpainting!.mask
        #expect(binary == InpaintFixture.mask(m["binary"]), "\(name): binary mask (inverted where asked)")
        let prepared = try i2i.inpainting!.prepare(i2i.initImage, width: s.width, height: s.height, resizeMode: i2i.resizeMode)
        #expect(prepared.generationMask == InpaintFixture.mask(m["processed"]), "\(name): processed mask")
        #expect(prepared.picture.rgb == InpaintFixture.bytes(picture["encoded_input"]), "\(name): the picture encoded")
        #expect(prepared.overlay == InpaintFixture.bytes(picture["overlay"]), "\(name): overlay")
        if let to = m["paste_to"] as? [Int] {
            #expect(prepared.pasteTo.map { [$0.x, $0.y, $0.width, $0.height] } == to, "\(name): paste_to \(String(describing: prepared.pasteTo))")
        } else {
            #expect(prepared.pasteTo == nil, "\(name): no paste_to")
        }
        let p = InpaintFixture.pipeline(r)
        let latentShape = [4, s.height / p.model.vaeScale, s.width / p.model.vaeScale]
        let masks = try Inpainting.latentMasks(prepared.generationMask!, width: s.width, height: s.height, latentShape: latentShape)
        let expected = (m["latmask"] as! [[NSNumber]]).flatMap { $0.map(\.floatValue) }
        #expect(Array(try masks.repaint.toArray().prefix(expected.count)) == expected, "\(name): latent mask")
    }

    @Test("inpainting: final latents within 1e-4 of A1111's and images (unmasked pixels put back) within 2 levels, batch 1-2",
          arguments: InpaintFixture.names)
    func run(_ name: String) throws {
        let r = InpaintFixture.run(name), reference = r["img2img"] as! [String: Any]
        let p = InpaintFixture.pipeline(r)
        let s = InpaintFixture.settings(r)
        let i2i = r["kind"] as! String == "inpaint" ? try InpaintFixture.imageToImage(r) : nil
        if let ic = r["image_conditioning"] as? [String: Any] {
            let prepared = try i2i.map { try $0.inpainting!.prepare($0.initImage, width: s.width, height: s.height, resizeMode: $0.resizeMode) }
            let mine = try p.imageConditioning(picture: prepared?.picture, mask: prepared?.generationMask, batch: s.batchSize,
                                               size: (s.width, s.height))
            let error = FamilyPipelineTests.relative(try mine.toArray(), FamilyFixture.floats(ic))
            #expect(error <= 1e-5, "\(name): masked-picture conditioning off by \(error)")
        }
        let images = try withNoGrad { try p.generate(s, from: i2i) }
        let latents = images.flatMap(\.latent)
        let expectedLatents = FamilyFixture.floats(r["blended"] ?? reference["latents"])
        let error = FamilyPipelineTests.relative(latents, expectedLatents)
        print("\(name): final latents within \(error) of A1111's")
        #expect(error <= 1e-4, "\(name): final latents off by \(error)")
        let image = r["image"] as! [String: Any], shape = image["shape"] as! [Int]
        #expect(images.allSatisfy { $0.width == shape[2] && $0.height == shape[1] }, "\(name): image size")
        FamilyPipelineTests.expectImagesClose(images.flatMap(\.rgb), InpaintFixture.bytes(image), name)
        // The infotext: A1111's keys and order (sdshell adds the model's name and hash, and its
        // version, and names the schedule A1111 calls "Automatic").
        let ours = ["Model", "Model hash", "Version", "Schedule type"]
        let expected = (r["infotext_parameters"] as! [[[String]]])[0].filter { !ours.contains($0[0]) }.map { "\($0[0]): \($0[1])" }
        let written = images[0].infotext.parameters.filter { !ours.contains($0.key) }.map { "\($0.key): \($0.value)" }
        #expect(written == expected, "\(name): infotext \(written)")
    }

    @Test("an init picture with transparency is laid over white as A1111's images.flatten does")
    func initPictureFlattened() throws {
        let path = TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/inpaint/alpha_rect_24x24.png"
        let png = try PNGFile.read(path)
        let flat = try ImageToImage.readInitPicture(path)
        var seen = Set<UInt8>()
        for p in 0..<(png.width * png.height) {
            let a = Int(png.rgba[p * 4 + 3])
            seen.insert(UInt8(a))
            for c in 0..<3 {
                // Pillow's DIV255(255 (255 - a) + v a).
                let t = 255 * (255 - a) + Int(png.rgba[p * 4 + c]) * a + 128
                #expect(Int(flat.rgb[p * 3 + c]) == ((t >> 8) + t) >> 8, "pixel \(p) channel \(c) alpha \(a)")
            }
        }
        #expect(seen.contains(0) && seen.contains(255) && seen.count > 2, "the picture has clear, opaque and partial pixels")
        // An opaque picture reads as it is.
        let square = TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/inpaint/square_24x24.png"
        #expect(try ImageToImage.readInitPicture(square) == (try RGBImage.read(square)))
    }
}
