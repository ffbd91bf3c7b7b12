import Foundation
import Testing
@testable import Formats

/// PNG through libpng and A1111's infotext.
@Suite struct PNGInfotextTests {
    static let a1111Example = """
        a red circle, (blue:1.2) background
        Negative prompt: ugly, blurry
        Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, TI hashes: "emb: 0123456789ab", Version: v1.10.1
        """

    @Test("A1111's example infotext parses and re-encodes to the same text")
    func roundTrip() {
        let info = Infotext.parse(Self.a1111Example)
        #expect(info.prompt == "a red circle, (blue:1.2) background")
        #expect(info.negativePrompt == "ugly, blurry")
        #expect(info["Steps"] == "20" && info["Sampler"] == "DPM++ 2M" && info["Size"] == "512x512")
        #expect(info["TI hashes"] == "emb: 0123456789ab")
        #expect(info.parameters.count == 10)
        #expect(info.encoded == Self.a1111Example)
    }

    @Test("quoting: values with commas, colons or newlines are JSON strings; others raw")
    func quoting() {
        let info = Infotext(prompt: "p\nsecond line", parameters: [("Steps", "8"), ("Note", "a, \"b\": c\nd"), ("Model", "ünï"), ("Flag", "Flag")])
        #expect(info.encoded == "p\nsecond line\nSteps: 8, Note: \"a, \\\"b\\\": c\\nd\", Model: ünï, Flag")
        let back = Infotext.parse(info.encoded + ", X: 1")
        #expect(back["Note"] == "a, \"b\": c\nd" && back.prompt == "p\nsecond line" && back["Model"] == "ünï")
    }

    @Test("a last line with fewer than three parameters is part of the prompt")
    func shortLastLine() {
        let info = Infotext.parse("hello\nworld: big")
        #expect(info.prompt == "hello\nworld: big" && info.parameters.isEmpty)
    }

    @Test("PNG written here reads back with pixels and text (Latin-1 as tEXt, other text as iTXt)")
    func pngRoundTrip() throws {
        let rgb = (0..<(7 * 3 * 3)).map { UInt8(($0 * 11) % 256) }
        let bytes = try PNGFile.encode(rgb: rgb, width: 7, height: 3, text: [("parameters", Self.a1111Example), ("note", "ünïcödé ✓")])
        let path = NSTemporaryDirectory() + "sdshell-\(UUID().uuidString).png"
        try AtomicFile.write(bytes, to: path)
        let img = try PNGFile.read(path)
        #expect(img.width == 7 && img.height == 3)
        #expect(img.rgba.enumerated().filter { $0.offset % 4 != 3 }.map(\.element) == rgb)
        #expect(img.text("parameters") == Self.a1111Example && img.text("note") == "ünïcödé ✓")
        #expect(String(decoding: bytes, as: UTF8.self).contains("tEXtparameters"))
        #expect(String(decoding: bytes, as: Latin1.self).contains("iTXtnote"))
    }

    @Test("a PNG written by Pillow reads with its pixels and parameters")
    func pillowFile() throws {
        let img = try PNGFile.read(Manifest.path("pil_parameters.png"))
        #expect(img.width == 5 && img.height == 4)
        let rgb = img.rgba.enumerated().filter { $0.offset % 4 != 3 }.map(\.element)
        #expect(rgb == (0..<60).map { UInt8(($0 * 7) % 256) })
        #expect(Infotext.parse(img.text("parameters")!) == Infotext.parse(Self.a1111Example))
        #expect(img.text("comment") == "ünïcödé ✓")
    }

    @Test("a truncated PNG is an error naming the file")
    func truncated() throws {
        let bytes = try PNGFile.encode(rgb: [UInt8](repeating: 9, count: 48), width: 4, height: 4, text: [])
        let path = NSTemporaryDirectory() + "sdshell-cut-\(UUID().uuidString).png"
        try AtomicFile.write(Array(bytes.prefix(bytes.count / 2)), to: path)
        #expect(throws: FormatError.self) { try PNGFile.read(path) }
    }
}

/// ISO-8859-1 decoding for byte inspection.
enum Latin1: Unicode.Encoding {
    typealias CodeUnit = UInt8
    typealias EncodedScalar = CollectionOfOne<UInt8>
    static var encodedReplacementCharacter: EncodedScalar { CollectionOfOne(0x3F) }
    static func decode(_ content: EncodedScalar) -> Unicode.Scalar { Unicode.Scalar(content.first!) }
    static func encode(_ content: Unicode.Scalar) -> EncodedScalar? { content.value < 256 ? CollectionOfOne(UInt8(content.value)) : nil }
    struct ForwardParser: Unicode.Parser {
        typealias Encoding = Latin1
        init() {}
        mutating func parseScalar<I: IteratorProtocol>(from input: inout I) -> Unicode.ParseResult<EncodedScalar> where I.Element == UInt8 {
            guard let b = input.next() else { return .emptyInput }
            return .valid(CollectionOfOne(b))
        }
    }
    typealias ReverseParser = ForwardParser
}
