import Foundation
import Formats
import Testing

@Suite struct RGBImageTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/images"

    /// JPEGs written by Pillow (baseline 4:2:0, greyscale, progressive 4:2:0) decode to the bytes
    /// Pillow's libjpeg-turbo decodes (Tests/Fixtures/generators/make_training_image_fixtures.py).
    @Test(arguments: ["photo-30x20", "grey-17x9", "progressive-24x24"])
    func jpegDecodesLikePillow(name: String) throws {
        let image = try RGBImage.read("\(Self.folder)/\(name).jpg")
        let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(name).decoded.rgb")))
        #expect(image.rgb.count == expected.count)
        let worst = zip(image.rgb, expected).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst == 0, "\(name): largest difference \(worst)")
    }

    /// PNG with alpha reads as its RGB channels (Pillow's convert("RGB") drops alpha).
    @Test func pngDropsAlpha() throws {
        let path = "\(Self.folder)/tall-20x41-rgba.png"
        let image = try RGBImage.read(path)
        let png = try PNGFile.read(path)
        #expect(image.width == 20 && image.height == 41)
        #expect(image.rgb == png.rgba.enumerated().filter { $0.offset % 4 != 3 }.map(\.element))
    }

    @Test func damagedOrForeignFilesAreNamed() throws {
        for name in ["truncated-header.jpg", "truncated-body.jpg"] {
            let path = "\(Self.folder)/\(name)"
            #expect { try RGBImage.read(path) } throws: { "\($0)".contains(path) && "\($0)".contains("JPEG") }
        }
        let text = FileManager.default.temporaryDirectory.appendingPathComponent("not-an-image-\(UUID()).png").path
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: text) }
        #expect { try RGBImage.read(text) } throws: { "\($0)".contains(text) && "\($0)".contains("not a PNG or JPEG") }
    }
}
