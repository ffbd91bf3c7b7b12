import CImageIO
import Engine
import Foundation

/// PNG files through libpng: 8-bit RGB written with text chunks (tEXt for Latin-1 text, iTXt
/// otherwise, as A1111 writes `parameters`), any PNG read as 8-bit RGBA with its text chunks.
public enum PNGFile {
    /// A decoded image.
    public struct Image: Sendable {
        public let width: Int, height: Int
        /// 8-bit RGBA, rows top to bottom.
        public let rgba: [UInt8]
        /// Text chunks in file order.
        public let text: [(key: String, value: String)]
        public func text(_ key: String) -> String? { text.first { $0.key == key }?.value }
    }

    /// Encodes RGB pixels (width x height x 3 bytes) with text chunks.
    public static func encode(rgb: [UInt8], width: Int, height: Int, text: [(String, String)]) throws -> [UInt8] {
        guard width > 0, height > 0, let pixels = Shape.count([width, height, 3]), rgb.count == pixels else {
            throw FormatError.unsupported(file: "<png>", reason: "\(rgb.count) bytes do not make a \(width)x\(height) RGB image")
        }
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { throw FormatError.io(file: "<png>", reason: "open_memstream failed") }
        var error = [CChar](repeating: 0, count: 256)
        let keys = text.map { strdup($0.0) }, values = text.map { strdup($0.1) }
        defer { keys.forEach { free($0) }; values.forEach { free($0) } }
        let chunks = text.indices.map { i in
            sd_png_text(key: keys[i], text: values[i], international: text[i].1.unicodeScalars.allSatisfy { $0.value < 256 } ? 0 : 1)
        }
        let status = rgb.withUnsafeBufferPointer { px in
            sd_png_write_rgb(stream, px.baseAddress, UInt32(width), UInt32(height), chunks, Int32(chunks.count), &error, error.count)
        }
        fclose(stream)
        defer { free(buffer) }
        guard status == 0, let buffer else { throw FormatError.io(file: "<png>", reason: "libpng: \(cString(error))") }
        return Array(UnsafeRawBufferPointer(start: buffer, count: size))
    }

    /// Writes a PNG atomically.
    public static func write(rgb: [UInt8], width: Int, height: Int, text: [(String, String)], to path: String) throws {
        try AtomicFile.write(try encode(rgb: rgb, width: width, height: height, text: text), to: path)
    }

    /// Writes a PNG at `path` unless a file has that name (see `AtomicFile.create`); false when taken.
    public static func create(rgb: [UInt8], width: Int, height: Int, text: [(String, String)], at path: String) throws -> Bool {
        try AtomicFile.create(try encode(rgb: rgb, width: width, height: height, text: text), at: path)
    }

    /// Reads a PNG file.
    public static func read(_ path: String) throws -> Image {
        guard let f = fopen(path, "rb") else { throw FormatError.io(file: path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        try checkChunkLengths(f, path)
        var image = sd_png_image()
        var error = [CChar](repeating: 0, count: 256)
        guard sd_png_read(f, &image, &error, error.count) == 0 else {
            throw FormatError.corrupt(file: path, reason: "PNG: \(cString(error))")
        }
        defer { sd_png_free(&image) }
        let rgba = Array(UnsafeBufferPointer(start: image.rgba, count: Int(image.width) * Int(image.height) * 4))
        var text: [(String, String)] = []
        if image.texts_size > 0 {
            let parts = UnsafeRawBufferPointer(start: image.texts, count: image.texts_size).split(separator: 0, omittingEmptySubsequences: false)
            for i in stride(from: 0, to: Int(image.text_count) * 2, by: 2) {
                text.append((String(decoding: parts[i], as: UTF8.self), String(decoding: parts[i + 1], as: UTF8.self)))
            }
        }
        return Image(width: Int(image.width), height: Int(image.height), rgba: rgba, text: text)
    }
}

extension PNGFile {
    /// Walks the chunk headers and refuses a chunk that claims more bytes than the file has left:
    /// libpng allocates a text chunk's claimed length before reading it, so a 400-byte file naming
    /// a 1.8 GB iTXt chunk cost 1.8 GB (found by `scripts/fuzz.sh png`). Leaves `file` at its start.
    static func checkChunkLengths(_ file: UnsafeMutablePointer<FILE>, _ path: String) throws {
        defer { fseek(file, 0, SEEK_SET) }
        guard fseek(file, 0, SEEK_END) == 0 else { return }
        let size = Int(ftell(file))
        var header = [UInt8](repeating: 0, count: 8)
        // Not a PNG: libpng says so in its own words.
        guard fseek(file, 0, SEEK_SET) == 0, fread(&header, 1, 8, file) == 8, header == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { return }
        var position = 8
        while position + 12 <= size {
            guard fseek(file, position, SEEK_SET) == 0, fread(&header, 1, 8, file) == 8 else { return }
            let length = header[0..<4].reduce(0) { $0 << 8 | Int($1) }
            let type = String(decoding: header[4..<8].map { (32...126).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            guard length <= size - position - 12 else {
                throw FormatError.corrupt(file: path, reason: "PNG: the \(type) chunk at byte \(position) claims \(length) bytes; the file has \(size - position - 12) left")
            }
            if type == "IEND" { return }
            position += 12 + length
        }
    }
}

/// A NUL-terminated C buffer as a String.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
