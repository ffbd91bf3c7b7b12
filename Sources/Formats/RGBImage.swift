import CImageIO
import Foundation

/// A picture as 8-bit RGB, rows top to bottom, 3 bytes a pixel: what training reads its dataset
/// as. PNG (any colour type; alpha dropped, as Pillow's `convert("RGB")` does) and JPEG (libjpeg-turbo,
/// greyscale expanded) are recognised by their first bytes, not by the file name.
public struct RGBImage: Sendable, Equatable {
    public let width: Int, height: Int
    public let rgb: [UInt8]

    public init(width: Int, height: Int, rgb: [UInt8]) {
        precondition(rgb.count == width * height * 3)
        self.width = width; self.height = height; self.rgb = rgb
    }

    /// Reads a PNG or JPEG file. Anything else, or a damaged file, is an error naming the file.
    public static func read(_ path: String) throws -> RGBImage {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FormatError.io(file: path, reason: "cannot open")
        }
        let magic = [UInt8](handle.readData(ofLength: 8))
        try? handle.close()
        if magic.starts(with: [0x89, 0x50, 0x4e, 0x47]) {
            let png = try PNGFile.read(path)
            var rgb = [UInt8](repeating: 0, count: png.width * png.height * 3)
            for pixel in 0..<(png.width * png.height) {
                rgb[pixel * 3] = png.rgba[pixel * 4]
                rgb[pixel * 3 + 1] = png.rgba[pixel * 4 + 1]
                rgb[pixel * 3 + 2] = png.rgba[pixel * 4 + 2]
            }
            return RGBImage(width: png.width, height: png.height, rgb: rgb)
        }
        if magic.starts(with: [0xff, 0xd8, 0xff]) { return try readJPEG(path) }
        throw FormatError.unsupported(file: path, reason: "not a PNG or JPEG image")
    }

    /// A picture with its alpha channel (one byte a pixel) when it has transparency: a PNG
    /// whose alpha is not 255 everywhere. Opaque PNGs, and JPEGs, give nil.
    public static func readWithAlpha(_ path: String) throws -> (image: RGBImage, alpha: [UInt8]?) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw FormatError.io(file: path, reason: "cannot open") }
        let magic = [UInt8](handle.readData(ofLength: 4))
        try? handle.close()
        guard magic == [0x89, 0x50, 0x4e, 0x47] else { return (try read(path), nil) }
        let png = try PNGFile.read(path)
        let n = png.width * png.height
        var rgb = [UInt8](repeating: 0, count: n * 3), alpha = [UInt8](repeating: 0, count: n)
        for p in 0..<n {
            rgb[p * 3] = png.rgba[p * 4]; rgb[p * 3 + 1] = png.rgba[p * 4 + 1]; rgb[p * 3 + 2] = png.rgba[p * 4 + 2]
            alpha[p] = png.rgba[p * 4 + 3]
        }
        let image = RGBImage(width: png.width, height: png.height, rgb: rgb)
        return (image, alpha.contains { $0 != 255 } ? alpha : nil)
    }

    private static func readJPEG(_ path: String) throws -> RGBImage {
        guard let f = fopen(path, "rb") else { throw FormatError.io(file: path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        var image = sd_rgb_image()
        var error = [CChar](repeating: 0, count: 256)
        guard sd_jpeg_read(f, &image, &error, error.count) == 0 else {
            throw FormatError.corrupt(file: path, reason: "JPEG: \(cString(error))")
        }
        defer { sd_rgb_free(&image) }
        let count = Int(image.width) * Int(image.height) * 3
        return RGBImage(width: Int(image.width), height: Int(image.height),
                        rgb: Array(UnsafeBufferPointer(start: image.rgb, count: count)))
    }
}
