import Foundation
import TestSupport
import Testing
@testable import Imaging

/// The pixel operations of A1111's inpainting against the libraries' own outputs
/// (Tests/Fixtures/generators/make_inpaint_fixtures.py writes Fixtures/inpaint_primitives.json):
/// cv2.GaussianBlur's bit-exact 8-bit path, Pillow's GaussianBlur, RGBA <-> RGBa, paste with an
/// "L" mask, alpha_composite, masking.fill and the "Only masked" crop region, byte for byte.
enum PixelOpsFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("inpaint_primitives", in: .module)
    static func cases(_ key: String) -> [[String: Any]] { root[key] as! [[String: Any]] }
    /// A picture's bytes (`{mode, shape, uint8_base64}`).
    static func bytes(_ v: Any?) -> [UInt8] { [UInt8](Data(base64Encoded: (v as! [String: Any])["uint8_base64"] as! String)!) }
    /// A picture's shape: [height, width] or [height, width, channels].
    static func shape(_ v: Any?) -> [Int] { (v as! [String: Any])["shape"] as! [Int] }
    static func mode(_ v: Any?) -> String { (v as! [String: Any])["mode"] as! String }
    static func number(_ v: Any?) -> Double { (v as! NSNumber).doubleValue }
    /// An "L" mask from an "L" or "RGB" picture (Pillow's `convert("L")`: ITU-R 601-2 luma, L24).
    static func luma(_ v: Any?) -> [UInt8] {
        let b = bytes(v)
        guard mode(v) == "RGB" else { return b }
        return (0..<(b.count / 3)).map { i in
            let sum = UInt32(b[i * 3]) * 19595 + UInt32(b[i * 3 + 1]) * 38470 + UInt32(b[i * 3 + 2]) * 7471 + 0x8000
            return UInt8(sum >> 16)
        }
    }
    static func differing(_ a: [UInt8], _ b: [UInt8]) -> Int { a.count == b.count ? zip(a, b).filter { $0 != $1 }.count : -1 }
}

@Suite struct PixelOpsTests {
    @Test("cv2.GaussianBlur (bit-exact 8-bit path, (k, 1) and (1, k), kernels wider than the picture) byte for byte",
          arguments: Array(PixelOpsFixture.cases("cv2_gaussian_blur").indices))
    func openCVBlur(_ index: Int) {
        let c = PixelOpsFixture.cases("cv2_gaussian_blur")[index]
        let shape = PixelOpsFixture.shape(c["input"]), ksize = c["ksize"] as! [Int], sigma = PixelOpsFixture.number(c["sigma"])
        let kernelAxis = ksize[0] == 1 ? ksize[1] : ksize[0]
        let kernel = OpenCVGaussianBlur.fixedPointKernel(kernelAxis, sigma: sigma).map(Int.init)
        #expect(kernel == c["kernel_q8"] as! [Int], "ksize \(ksize) sigma \(sigma): kernel \(kernel)")
        let out = OpenCVGaussianBlur.blur(PixelOpsFixture.bytes(c["input"]), width: shape[1], height: shape[0],
                                          kernelWidth: ksize[0], kernelHeight: ksize[1], sigmaX: sigma)
        let differing = PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"]))
        #expect(differing == 0, "\(shape) ksize \(ksize) sigma \(sigma): \(differing) bytes differ")
    }

    @Test("Pillow GaussianBlur on RGBa (A1111 fill's radii) byte for byte, with its box radius and weights",
          arguments: Array(PixelOpsFixture.cases("pil_gaussian_blur").indices))
    func pillowBlur(_ index: Int) {
        let c = PixelOpsFixture.cases("pil_gaussian_blur")[index]
        let shape = PixelOpsFixture.shape(c["input"]), radius = PixelOpsFixture.number(c["radius"])
        let box = PillowGaussianBlur.boxRadius(Float(radius), passes: 3)
        #expect(Double(box) == PixelOpsFixture.number(c["box_radius"]), "radius \(radius): box radius \(box)")
        if box != 0 {
            let line = PillowGaussianBlur.LineBlur(length: shape[1], radius: box)
            #expect(line.radius == c["box_int_radius"] as! Int && Int(line.ww) == c["ww"] as! Int && Int(line.fw) == c["fw"] as! Int,
                    "radius \(radius): \(line.radius) \(line.ww) \(line.fw)")
        }
        let out = PillowGaussianBlur.blur(PixelOpsFixture.bytes(c["input"]), width: shape[1], height: shape[0],
                                          channels: shape[2], radius: radius)
        let differing = PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"]))
        #expect(differing == 0, "\(shape) radius \(radius): \(differing) bytes differ")
    }

    @Test("RGBA -> RGBa and RGBa -> RGBA (Pillow's rgbA2rgba / rgba2rgbA) byte for byte")
    func premultiplication() {
        for c in PixelOpsFixture.cases("premultiply") {
            let out = PillowCompositing.premultiplied(rgba: PixelOpsFixture.bytes(c["input"]))
            #expect(PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"])) == 0)
        }
        for c in PixelOpsFixture.cases("unpremultiply") {
            let out = PillowCompositing.unpremultiplied(rgba: PixelOpsFixture.bytes(c["input"]))
            #expect(PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"])) == 0)
        }
    }

    @Test("Image.paste with an L mask and Image.alpha_composite byte for byte")
    func pasteAndComposite() {
        for c in PixelOpsFixture.cases("paste_l_mask") {
            let shape = PixelOpsFixture.shape(c["dest"])
            let out = PillowCompositing.paste(PixelOpsFixture.bytes(c["source"]), into: PixelOpsFixture.bytes(c["dest"]),
                                              mask: PixelOpsFixture.bytes(c["mask"]), channels: shape[2])
            #expect(PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"])) == 0, "paste \(shape)")
            // The offset variant at (0, 0) is the same paste.
            let placed = PillowCompositing.paste(PixelOpsFixture.bytes(c["source"]), width: shape[1], height: shape[0],
                                                 into: PixelOpsFixture.bytes(c["dest"]), width: shape[1], height: shape[0],
                                                 x: 0, y: 0, mask: PixelOpsFixture.bytes(c["mask"]), channels: shape[2])
            #expect(placed == out)
        }
        for c in PixelOpsFixture.cases("alpha_composite") {
            let out = PillowCompositing.alphaComposite(destination: PixelOpsFixture.bytes(c["dest"]), source: PixelOpsFixture.bytes(c["source"]))
            #expect(PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"])) == 0, "alpha_composite \(PixelOpsFixture.shape(c["dest"]))")
        }
    }

    @Test("A1111's masking.fill byte for byte", arguments: Array(PixelOpsFixture.cases("fill").indices))
    func fill(_ index: Int) {
        let c = PixelOpsFixture.cases("fill")[index]
        let shape = PixelOpsFixture.shape(c["picture"])
        let out = InpaintFill.fill(rgb: PixelOpsFixture.bytes(c["picture"]), width: shape[1], height: shape[0],
                                   mask: PixelOpsFixture.luma(c["mask"]))
        let differing = PixelOpsFixture.differing(out, PixelOpsFixture.bytes(c["output"]))
        #expect(differing == 0, "fill \(shape) (\(PixelOpsFixture.mode(c["mask"])) mask): \(differing) bytes differ")
    }

    @Test("A1111's get_crop_region_v2 and expand_crop_region (Only masked)")
    func cropRegion() {
        for c in PixelOpsFixture.cases("crop_region") {
            let shape = PixelOpsFixture.shape(c["mask"]), padding = c["padding"] as! Int
            let region = InpaintCropRegion.region(mask: PixelOpsFixture.bytes(c["mask"]), width: shape[1], height: shape[0], padding: padding)
            guard let expected = c["crop_region"] as? [Int], let expectedExpanded = c["expanded_region"] as? [Int] else {
                let blank = region == nil
                #expect(blank, "blank mask \(shape): \(String(describing: region))")
                continue
            }
            guard let region else { Issue.record("mask \(shape) padding \(padding): no region, expected \(expected)"); continue }
            #expect([region.x1, region.y1, region.x2, region.y2] == expected, "mask \(shape) padding \(padding)")
            let e = InpaintCropRegion.expanded(region, processingWidth: c["width"] as! Int, processingHeight: c["height"] as! Int,
                                               imageWidth: shape[1], imageHeight: shape[0])
            #expect([e.x1, e.y1, e.x2, e.y2] == expectedExpanded, "\(expected) to \(c["width"]!)x\(c["height"]!)")
        }
    }

    @Test("Pixel-op edge cases: radius 0 and 1x1 pictures, kernels wider than the picture, offset paste clipping")
    func edgeCases() {
        let picture: [UInt8] = [10, 200, 30, 255, 90, 0, 60, 128]
        #expect(PillowGaussianBlur.blur(picture, width: 2, height: 1, channels: 4, radius: 0) == picture)
        #expect(PillowGaussianBlur.blur([7, 8, 9], width: 1, height: 1, channels: 3, radius: 256) == [7, 8, 9])
        #expect(OpenCVGaussianBlur.blur([42], width: 1, height: 1, kernelWidth: 41, kernelHeight: 1, sigmaX: 8) == [42])
        // A flat picture stays flat whatever the kernel (the fixed-point kernels sum to 256).
        let flat = [UInt8](repeating: 77, count: 16 * 16)
        #expect(OpenCVGaussianBlur.blur(flat, width: 16, height: 16, kernelWidth: 1, kernelHeight: 41, sigmaX: 8) == flat)
        #expect(OpenCVGaussianBlur.fixedPointKernel(41, sigma: 8).reduce(0, +) == 256)
        // Pasting a 2x2 source at (1, 1) into a 2x2 destination touches only the bottom-right pixel.
        let placed = PillowCompositing.paste([1, 2, 3, 4], width: 2, height: 2, into: [0, 0, 0, 0], width: 2, height: 2,
                                             x: 1, y: 1, mask: nil, channels: 1)
        #expect(placed == [0, 0, 0, 1])
        let blank = InpaintCropRegion.region(mask: [0, 0, 0, 0], width: 2, height: 2, padding: 3) == nil
        #expect(blank)
    }
}
