import Foundation
@testable import Imaging
import Formats
import Testing
@testable import Training

@Suite struct ImageFitTests {
    static let folder = Bundle.module.resourcePath! + "/Fixtures/images"

    /// Every input x size against Pillow's ImageOps.fit(BICUBIC) (Tests/Fixtures/generators/make_training_image_fixtures.py):
    /// shrinking, enlarging, wide and tall inputs, square and non-square outputs, an RGBA input.
    @Test(arguments: ["wide-37x23", "tall-20x41-rgba", "small-8x6", "square-16x16"])
    func fitEqualsPillow(input: String) throws {
        let png = try PNGFile.read("\(Self.folder)/\(input).png")
        var rgb = [UInt8](); rgb.reserveCapacity(png.width * png.height * 3)
        for p in stride(from: 0, to: png.rgba.count, by: 4) { rgb += png.rgba[p..<p + 3] }
        for (w, h) in [(16, 16), (16, 24), (24, 8)] {
            let expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(input)-\(w)x\(h).rgb")))
            let fitted = ImageFit.fit(rgb: rgb, width: png.width, height: png.height, outWidth: w, outHeight: h)
            let differing = zip(fitted, expected).filter { $0 != $1 }.count
            #expect(fitted.count == expected.count && differing == 0, "\(input) to \(w)x\(h): \(differing) bytes differ")
        }
    }
}
