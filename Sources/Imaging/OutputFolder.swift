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

    /// Saves RGB pixels with text chunks as the next `NNNNN-SEED.png`; returns the file path.
    /// The number is claimed atomically (the file is created only if its name is free), so
    /// sessions sharing the folder never overwrite each other's images: when another process
    /// took the number, the next one is tried.
    @discardableResult
    public func save(rgb: [UInt8], width: Int, height: Int, seed: Int64, text: [(String, String)]) throws -> String {
        try Folder.create(path)
        var index = nextIndex()
        for _ in 0..<10_000 {
            let file = path + "/" + String(format: "%05d-%lld.png", index, seed)
            if try PNGFile.create(rgb: rgb, width: width, height: height, text: text, at: file) { return file }
            index = max(index + 1, nextIndex())
        }
        throw FormatError.io(file: path, reason: "no free image number after 10,000 tries")
    }
}
