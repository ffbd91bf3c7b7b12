import Foundation
import Formats

/// Where generated images go, named as A1111 names them: `NNNNN-SEED.png` with a five-digit
/// counter one above the highest in the folder.
public struct OutputFolder {
    public let path: String

    public init(root: String, kind: String = "txt2img") { path = root + "/" + kind }

    /// The next free counter value.
    public func nextIndex() -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let used = names.compactMap { name -> Int? in
            guard let dash = name.firstIndex(of: "-") else { return nil }
            return Int(name[..<dash])
        }
        return (used.max() ?? -1) + 1
    }

    /// Saves an image with its infotext in a `parameters` chunk; returns the file path.
    @discardableResult
    public func save(_ image: GeneratedImage) throws -> String {
        try save(rgb: image.rgb, width: image.width, height: image.height, seed: image.seed,
                 text: [("parameters", image.infotext.encoded)])
    }

    /// Saves RGB pixels with text chunks as the next `NNNNN-SEED.png`; returns the file path.
    @discardableResult
    public func save(rgb: [UInt8], width: Int, height: Int, seed: Int64, text: [(String, String)]) throws -> String {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let file = path + "/" + String(format: "%05d-%lld.png", nextIndex(), seed)
        try PNGFile.write(rgb: rgb, width: width, height: height, text: text, to: file)
        return file
    }
}
