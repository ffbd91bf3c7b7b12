import Foundation
@testable import Formats

/// Builders for hostile inputs made in memory (nothing large is committed or written: zero strides
/// and compressed runs make huge claims in a few bytes).
enum HostileFiles {
    static func path(_ name: String) -> String { NSTemporaryDirectory() + "sdshell-hostile-\(UUID().uuidString)-\(name)" }

    static func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let p = path(name)
        try AtomicFile.write(bytes, to: p)
        return p
    }

    static func le32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, Array.init) }
    static func le64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(truncatingIfNeeded: v).littleEndian, Array.init) }
    static func be32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
    static func floats(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    /// Protocol-2 pickle opcodes, written by hand so that any shape, stride and global can be said.
    struct Pickle {
        var bytes: [UInt8] = [0x80, 2]
        mutating func int(_ v: Int) { bytes += [0x8A, 8] + HostileFiles.le64(v) }   // LONG1, 8 bytes
        mutating func string(_ s: String) { let u = Array(s.utf8); bytes += [0x58] + HostileFiles.le32(u.count) + u }
        mutating func global(_ module: String, _ name: String) { bytes += [0x63] + Array("\(module)\n\(name)\n".utf8) }
        /// `_rebuild_tensor_v2` of float storage "0" holding `storageElements` elements.
        mutating func tensor(shape: [Int], strides: [Int], storageElements: Int, legacy: Bool) {
            global("torch._utils", "_rebuild_tensor_v2")
            bytes.append(0x28)                                                          // MARK (args)
            bytes.append(0x28); string("storage"); global("torch", "FloatStorage"); string("0"); string("cpu")
            int(storageElements)
            if legacy { bytes.append(0x4E) }                                            // view metadata None
            bytes += [0x74, 0x51]                                                       // TUPLE, BINPERSID
            int(0)
            bytes.append(0x28); shape.forEach { int($0) }; bytes.append(0x74)
            bytes.append(0x28); strides.forEach { int($0) }; bytes.append(0x74)
            bytes.append(0x89)                                                          // requires_grad False
            global("collections", "OrderedDict"); bytes += [0x29, 0x52]                 // OrderedDict()
            bytes += [0x74, 0x52]                                                       // TUPLE, REDUCE
        }
        /// {keys[0]: {keys[1]: ... tensor}} and STOP.
        static func nested(_ keys: [String], shape: [Int], strides: [Int], storageElements: Int, legacy: Bool) -> [UInt8] {
            var p = Pickle()
            for k in keys { p.bytes.append(0x7D); p.string(k) }                         // EMPTY_DICT, key
            p.tensor(shape: shape, strides: strides, storageElements: storageElements, legacy: legacy)
            p.bytes += [UInt8](repeating: 0x73, count: keys.count) + [0x2E]             // SETITEM..., STOP
            return p.bytes
        }
    }

    /// A torch zip archive of one float storage "0" and a tensor under `keys`.
    static func torchZip(_ keys: [String], shape: [Int], strides: [Int], storage: [Float]) throws -> String {
        var zip = ZipWriter()
        zip.add("archive/data.pkl", Pickle.nested(keys, shape: shape, strides: strides, storageElements: storage.count, legacy: false))
        zip.add("archive/data/0", floats(storage))
        return try write(zip.finish(), "zip.pt")
    }

    /// A legacy (pre-1.6) torch.save file of one float storage "0" and a tensor under `keys`.
    static func torchLegacy(_ keys: [String], shape: [Int], strides: [Int], storage: [Float]) throws -> String {
        // The magic number 0x1950a86a20f9469cfc6c as a LONG1, the protocol version 1001, sys info {}.
        var b: [UInt8] = [0x80, 2, 0x8A, 10, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
        b += [0x80, 2, 0x4D, 0xE9, 0x03, 0x2E]
        b += [0x80, 2, 0x7D, 0x2E]
        b += Pickle.nested(keys, shape: shape, strides: strides, storageElements: storage.count, legacy: true)
        var list = Pickle()
        list.bytes += [0x5D, 0x28]; list.string("0"); list.bytes += [0x65, 0x2E]    // ["0"]
        b += list.bytes
        b += le64(storage.count) + floats(storage)
        return try write(b, "legacy.pt")
    }

    /// A safetensors file from a header's JSON text (data: `dataBytes` zero bytes).
    static func safetensors(header: String, dataBytes: Int = 0) throws -> String {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        return try write(le64(json.count) + json + [UInt8](repeating: 0, count: dataBytes), "st.safetensors")
    }

    /// A zlib stream of `n` zero bytes (n >= 1) in a few bytes per 258 of output: one fixed-Huffman
    /// block of a literal 0 and copies of length 258 at distance 1.
    static func zlibZeros(_ n: Int) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var buffer = 0, count = 0
        func bit(_ b: Int) {
            buffer |= b << count; count += 1
            if count == 8 { out.append(UInt8(buffer)); buffer = 0; count = 0 }
        }
        func huffman(_ code: Int, _ length: Int) { for i in stride(from: length - 1, through: 0, by: -1) { bit((code >> i) & 1) } }
        bit(1); bit(1); bit(0)                                  // BFINAL, BTYPE 01 (fixed codes)
        huffman(0b0011_0000, 8)                                 // literal 0
        var produced = 1
        while produced + 258 <= n { huffman(0b1100_0101, 8); huffman(0, 5); produced += 258 }   // length 258, distance 1
        while produced < n { huffman(0b0011_0000, 8); produced += 1 }
        huffman(0, 7)                                           // end of block
        if count > 0 { out.append(UInt8(buffer)) }
        return out + be32(UInt32(n % 65521) << 16 | 1)         // Adler-32 of n zeros
    }

    /// A zlib stream holding `data` in stored (uncompressed) blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, data.count - i), last: UInt8 = i + n == data.count ? 1 : 0
            out += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)] + data[i..<(i + n)]
            i += n
        } while i < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return out + be32(b << 16 | a)
    }

    /// A PNG from chunks (the signature, IHDR for 8-bit RGB, `chunks`, IEND), CRCs computed.
    static func png(width: UInt32, height: UInt32, chunks: [(String, [UInt8])] = []) -> [UInt8] {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(UInt32(data.count)) + body + be32(body.withUnsafeBytes { ZipWriter.crc32($0) })
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
        for (t, d) in chunks { out += chunk(t, d) }
        return out + chunk("IEND", [])
    }

    /// An RGB picture hiding `data` in its pixels as A1111's trainer does: the bytes' high and low
    /// nibbles, xor-ed with the LCG stream, in two blocks `columns` wide on either side of a
    /// two-column gap whose low nibbles are zero (every channel is lit so nothing is cropped).
    static func pixelEmbedding(_ data: [UInt8], columns: Int = 64) -> (rgb: [UInt8], width: Int, height: Int) {
        let rows = (data.count + columns * 3 - 1) / (columns * 3)
        let n = rows * columns * 3
        let key = EmbeddingImage.lcgStream(n)
        let padded = data + [UInt8](repeating: 0, count: n - data.count)
        let width = 2 * columns + 2
        var rgb = [UInt8](repeating: 0x10, count: width * rows * 3)
        for y in 0..<rows {
            for x in 0..<columns {
                for c in 0..<3 {
                    let k = (y * columns + x) * 3 + c
                    rgb[(y * width + x) * 3 + c] = 0x10 | ((padded[k] & 0x0F) ^ (key[k] & 0x0F))
                    rgb[(y * width + columns + 2 + x) * 3 + c] = 0x10 | ((padded[k] >> 4) ^ (key[k] & 0x0F))
                }
            }
        }
        return (rgb, width, rows)
    }
}
