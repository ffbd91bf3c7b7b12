import Engine
import Foundation

/// Textual-inversion embeddings carried in PNG images, as A1111's trainer writes them: in a
/// `sd-ti-embedding` text chunk (base64 of JSON, tensors as `{"TORCHTENSOR": nested lists}`), or
/// hidden in the pixels (zlib-compressed JSON split into 4-bit halves, xor-ed with an LCG stream,
/// in two blocks on either side of a black gap). The text chunk wins when both are present.
public struct EmbeddingImage: Sendable {
    public let name: String?
    /// [vectors, width]
    public let vectors: [[Float]]
    public let step: Int?
    public let checkpointHash: String?
    public let checkpointName: String?

    /// The embedding in a PNG, nil when the image carries none.
    public static func read(_ path: String) throws -> EmbeddingImage? {
        let image = try PNGFile.read(path)
        if let b64 = image.text("sd-ti-embedding") {
            guard let data = Data(base64Encoded: b64.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw FormatError.corrupt(file: path, reason: "sd-ti-embedding is not base64")
            }
            return try parse(data, file: path)
        }
        guard let data = try pixelData(image, file: path) else { return nil }
        return try parse(data, file: path)
    }

    /// The `sd-ti-embedding` text A1111 writes into a training's preview: base64 of the JSON of
    /// its embedding dict, the vectors as `{"TORCHTENSOR": nested lists}` with each value printed
    /// so that it reads back to the same float32 (Python's repr of the value as a double).
    public static func encoded(name: String, vectors: [Float], shape: [Int], step: Int, checkpointHash: String?, checkpointName: String?) -> String {
        func string(_ s: String?) -> String {
            guard let s else { return "null" }
            let data = try? JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
            return data.map { String(decoding: $0, as: UTF8.self).dropFirst().dropLast().description } ?? "null"
        }
        let width = shape[1]
        let rows = (0..<shape[0]).map { r in
            "[" + vectors[(r * width)..<((r + 1) * width)].map { "\(Double($0))" }.joined(separator: ", ") + "]"
        }
        let json = "{\"string_to_token\": {\"*\": 265}, \"string_to_param\": {\"*\": {\"TORCHTENSOR\": [" + rows.joined(separator: ", ") + "]}}, "
            + "\"name\": \(string(name)), \"step\": \(step), \"sd_checkpoint\": \(string(checkpointHash)), \"sd_checkpoint_name\": \(string(checkpointName))}"
        return Data(json.utf8).base64EncodedString()
    }

    /// Most bytes the data hidden in the pixels may inflate to: A1111's embeddings take tens of
    /// kilobytes of JSON (a 75-vector SD 1.x embedding about 1.2 MB), and the JSON is parsed into
    /// objects many times its size.
    static let maximumDataBytes = 16 << 20

    static func parse(_ data: Data, file: String) throws -> EmbeddingImage {
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let params = json["string_to_param"] as? [String: Any], let first = params.values.first as? [String: Any],
              let tensor = first["TORCHTENSOR"] else {
            throw FormatError.corrupt(file: file, reason: "the embedded data has no string_to_param tensor")
        }
        var rows: [[Float]]
        if let m = tensor as? [[NSNumber]] { rows = m.map { $0.map(\.floatValue) } } else if let v = tensor as? [NSNumber] {
            rows = [v.map(\.floatValue)]
        } else { throw FormatError.corrupt(file: file, reason: "the embedded tensor is not a list of vectors") }
        guard let w = rows.first?.count, w > 0, rows.allSatisfy({ $0.count == w }) else {
            throw FormatError.corrupt(file: file, reason: "the embedded vectors have unequal widths")
        }
        guard rows.count <= EmbeddingFile.maximumVectors, w <= EmbeddingFile.maximumWidth else {
            throw FormatError.unsupported(file: file, reason: EmbeddingFile.sizeRefusal(vectors: rows.count, width: w))
        }
        if rows.isEmpty { rows = [] }
        return EmbeddingImage(name: json["name"] as? String, vectors: rows, step: (json["step"] as? NSNumber)?.intValue,
                              checkpointHash: json["sd_checkpoint"] as? String, checkpointName: json["sd_checkpoint_name"] as? String)
    }

    /// A1111's `lcg`: seed = (1664525 seed + 1013904223) mod 2^32, yielding seed mod 255.
    static func lcgStream(_ n: Int) -> [UInt8] {
        var seed: UInt64 = 0
        return (0..<n).map { _ in
            seed = (1_664_525 &* seed &+ 1_013_904_223) & 0xFFFF_FFFF
            return UInt8(seed % 255)
        }
    }

    /// The data hidden in the pixels, or nil when the image has no such blocks.
    static func pixelData(_ image: PNGFile.Image, file: String) throws -> Data? {
        let h = image.height, w = image.width
        func px(_ y: Int, _ x: Int, _ c: Int) -> UInt8 { image.rgba[(y * w + x) * 4 + c] }
        // crop_black: keep the rows and columns holding a pixel with all three channels above 0
        // (nothing cropped when no pixel is lit).
        var rowAny = [Bool](repeating: false, count: h), colAny = [Bool](repeating: false, count: w)
        for y in 0..<h { for x in 0..<w where px(y, x, 0) > 0 && px(y, x, 1) > 0 && px(y, x, 2) > 0 { rowAny[y] = true; colAny[x] = true } }
        var ys = 0..<h, xs = 0..<w
        if let r0 = rowAny.firstIndex(of: true), let r1 = rowAny.lastIndex(of: true), let c0 = colAny.firstIndex(of: true),
           let c1 = colAny.lastIndex(of: true) {
            ys = r0..<(r1 + 1); xs = c0..<(c1 + 1)
        }
        // Low nibbles; black columns (all nibbles zero) separate the two blocks.
        var black: [Int] = []
        for x in xs where ys.allSatisfy({ y in (0..<3).allSatisfy { px(y, x, $0) & 0x0F == 0 } }) { black.append(x) }
        guard black.count >= 2, let first = black.first, let last = black.last else { return nil }
        func block(_ cols: Range<Int>) -> [UInt8] {
            var out: [UInt8] = []
            for y in ys { for x in cols { for c in 0..<3 { out.append(px(y, x, c) & 0x0F) } } }
            let key = lcgStream(out.count)
            return zip(out, key).map { $0 ^ ($1 & 0x0F) }
        }
        let lower = block(xs.lowerBound..<first), upper = block((last + 1)..<xs.upperBound)
        guard lower.count == upper.count, !lower.isEmpty else { return nil }
        let bytes = zip(upper, lower).map { ($0 << 4) | $1 }
        do {
            return try Inflate.inflating(Data(bytes), maximumBytes: maximumDataBytes)
        } catch .tooLarge {
            throw FormatError.unsupported(file: file, reason: "the embedding data in the pixels inflates to more than \(maximumDataBytes) bytes")
        } catch {
            return nil
        }
    }
}
