import CZlib
import Foundation

/// gzip decompression through zlib (for the shipped CLIP vocabulary).
enum Gzip {
    static func decompress(_ data: Data, file: String) throws -> String {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw TokenizerError.missingVocabulary("\(file): zlib initialisation failed")
        }
        defer { inflateEnd(&stream) }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var status: Int32 = Z_OK
        try data.withUnsafeBytes { (src: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(src.count)
            repeat {
                try chunk.withUnsafeMutableBufferPointer { buf in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = uInt(buf.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    guard status == Z_OK || status == Z_STREAM_END else {
                        throw TokenizerError.missingVocabulary("\(file): gzip data is corrupt (zlib status \(status))")
                    }
                    out.append(buf.baseAddress!, count: buf.count - Int(stream.avail_out))
                }
            } while status != Z_STREAM_END
        }
        return String(decoding: out, as: UTF8.self)
    }
}
