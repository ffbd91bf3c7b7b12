import CZlib
import Foundation

/// zlib and gzip decompression (zlib's inflate with header auto-detection).
public enum Inflate {
    /// The decompressed bytes, or nil when the data is not a complete zlib or gzip stream.
    public static func decompress(_ data: Data) -> Data? {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var status: Int32 = Z_OK
        let ok = data.withUnsafeBytes { (src: UnsafeRawBufferPointer) -> Bool in
            stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(src.count)
            repeat {
                let produced = chunk.withUnsafeMutableBufferPointer { buf -> Int in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = uInt(buf.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return buf.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else { return false }
                out.append(contentsOf: chunk[0..<produced])
                if status == Z_OK && produced == 0 && stream.avail_in == 0 { return false }   // truncated
            } while status != Z_STREAM_END
            return true
        }
        return ok ? out : nil
    }
}
