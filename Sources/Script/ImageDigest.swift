import Formats

/// The content digest journals record for an image: sha256 of its size and 8-bit RGB pixels, so
/// metadata (dates, versions) never makes a reproduced image count as different.
public enum ImageDigest {
    public static func of(rgb: [UInt8], width: Int, height: Int) -> String {
        "pixels-sha256:" + FileHash.sha256(bytes: Array("\(width)x\(height):".utf8) + rgb)
    }

    /// The digest of a PNG file's pixels (alpha dropped).
    public static func of(png path: String) throws -> String {
        let image = try PNGFile.read(path)
        var rgb = [UInt8](), i = 0
        rgb.reserveCapacity(image.width * image.height * 3)
        while i < image.rgba.count { rgb.append(image.rgba[i]); rgb.append(image.rgba[i + 1]); rgb.append(image.rgba[i + 2]); i += 4 }
        return of(rgb: rgb, width: image.width, height: image.height)
    }
}
