import Formats
import Foundation

/// gzip decompression of the shipped CLIP vocabulary.
enum Gzip {
    static func decompress(_ data: Data, file: String) throws -> String {
        guard let out = Inflate.decompress(data) else { throw TokenizerError.missingVocabulary("\(file): gzip data is corrupt") }
        return String(decoding: out, as: UTF8.self)
    }
}
