import CZlib
import Foundation

/// zlib and gzip decompression (zlib's inflate with header auto-detection). Output is bounded: a
/// few hundred kilobytes of compressed zeros inflate to gigabytes (a "zip bomb").
public enum Inflate {
    /// Largest output `decompress` produces unless told otherwise.
    public static let defaultMaximumBytes = 64 << 20

    /// Why decompression stopped.
    public enum Failure: Error, Equatable {
        /// Not a complete zlib or gzip stream.
        case corrupt
        /// The output would exceed the given number of bytes.
        case tooLarge(maximumBytes: Int)
    }

    /// The decompressed bytes, or nil when the data is not a complete zlib or gzip stream or
    /// inflates to more than `maximumBytes`.
    public static func decompress(_ data: Data, maximumBytes: Int = defaultMaximumBytes) -> Data? {
        try? inflating(data, maximumBytes: maximumBytes)
    }

    /// The decompressed bytes; throws `Failure` for a damaged stream or one that inflates to more
    /// than `maximumBytes` (decompression stops there, without allocating more).
    public static func inflating(_ data: Data, maximumBytes: Int = defaultMaximumBytes) throws(Failure) -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw .corrupt }
        defer { inflateEnd(&stream) }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var status: Int32 = Z_OK
        let outcome = data.withUnsafeBytes { (src: UnsafeRawBufferPointer) -> Failure? in
            stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(src.count)
            repeat {
                let produced = chunk.withUnsafeMutableBufferPointer { buf -> Int in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = uInt(buf.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return buf.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else { return .corrupt }
                guard produced <= maximumBytes - out.count else { return .tooLarge(maximumBytes: maximumBytes) }
                out.append(contentsOf: chunk[0..<produced])
                if status == Z_OK && produced == 0 && stream.avail_in == 0 { return .corrupt }   // truncated
            } while status != Z_STREAM_END
            return nil
        }
        if let outcome { throw outcome }
        return out
    }
}
