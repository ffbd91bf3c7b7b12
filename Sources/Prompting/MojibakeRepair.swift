import Foundation

/// ftfy's `fix_encoding` (6.3): text that was UTF-8 but decoded with a single-byte encoding
/// ("cafÃ©") is re-encoded with that encoding and decoded as UTF-8, when ftfy's badness
/// heuristic says the text looks mis-decoded. The encodings, their character maps and the
/// heuristic's regexes come from ftfy itself (`ftfy_tables.json`, Tests/Fixtures/generators/make_ftfy_tables.py).
enum MojibakeRepair {
    struct Tables: Decodable {
        struct Encoding: Decodable { let name: String; let chars: [String?]; let possible: String }
        let encodings: [Encoding]
        let badness: String, utf8_detector: String, altered_utf8: String, a_grave_word: String, lossy_utf8: String
    }
    private struct Codec {
        let name: String
        let decode: [Unicode.Scalar]          // byte -> scalar
        let encode: [UInt32: UInt8]           // scalar -> byte
        let allowedHigh: Set<UInt32>          // scalars >= 0x80 the text may contain
    }

    private static let tables: Tables = {
        struct Root: Decodable { let fix_encoding: Tables }
        guard let url = Bundle.module.url(forResource: "ftfy_tables", withExtension: "json"),
              let data = try? Data(contentsOf: url), let root = try? JSONDecoder().decode(Root.self, from: data) else {
            fatalError("Prompting resources: ftfy_tables.json missing or unreadable")
        }
        return root.fix_encoding
    }()

    private static let codecs: [Codec] = tables.encodings.map { e in
        let decode = e.chars.enumerated().map { b, c in c?.unicodeScalars.first ?? Unicode.Scalar(UInt8(b)) }
        var encode: [UInt32: UInt8] = [:]
        for (b, s) in decode.enumerated() where encode[s.value] == nil { encode[s.value] = UInt8(b) }
        if e.name.hasPrefix("sloppy") { encode[0xFFFD] = 0x1A }
        let high = Set(e.possible.unicodeScalars.map(\.value).filter { $0 >= 0x80 })
        return Codec(name: e.name, decode: decode, encode: encode, allowedHigh: high)
    }

    /// Python verbose-mode pattern to a plain one: whitespace and comments outside classes dropped.
    static func plain(_ verbose: String) -> String {
        var out = "", inClass = false, escaped = false, comment = false
        for ch in verbose {
            if comment { if ch == "\n" { comment = false }; continue }
            if escaped { out.append(ch); escaped = false; continue }
            if ch == "\\" { out.append(ch); escaped = true; continue }
            if inClass { if ch == "]" { inClass = false }; out.append(ch); continue }
            if ch == "[" { inClass = true; out.append(ch); continue }
            if ch == "#" { comment = true; continue }
            if ch.isWhitespace { continue }
            out.append(ch)
        }
        return out
    }

    private static let badness = try! NSRegularExpression(pattern: plain(tables.badness))
    private static let utf8Detector = try! NSRegularExpression(pattern: plain(tables.utf8_detector))
    private static let alteredUTF8 = try! NSRegularExpression(pattern: plain(tables.altered_utf8))
    private static let aGraveWord = try! NSRegularExpression(pattern: tables.a_grave_word)
    private static let lossyUTF8 = try! NSRegularExpression(pattern: plain(tables.lossy_utf8))

    static func isBad(_ s: String) -> Bool {
        badness.firstMatch(in: s, range: NSRange(location: 0, length: (s as NSString).length)) != nil
    }

    private static func possible(_ s: String, _ codec: Codec) -> Bool {
        s.unicodeScalars.allSatisfy { $0.value < 0x80 ? $0.value != 0x1A : codec.allowedHigh.contains($0.value) }
    }

    /// Bytes as Latin-1 text, so byte regexes can run on them.
    private static func latin1(_ bytes: [UInt8]) -> String { String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })) }
    private static func bytes(_ latin1: String) -> [UInt8] { latin1.unicodeScalars.map { UInt8($0.value) } }

    private static func substitute(_ regex: NSRegularExpression, in s: String, _ f: (String) -> String) -> String {
        let ns = s as NSString
        var out = "", last = 0
        for m in regex.matches(in: s, range: NSRange(location: 0, length: ns.length)) {
            out += ns.substring(with: NSRange(location: last, length: m.range.location - last))
            out += f(ns.substring(with: m.range))
            last = m.range.location + m.range.length
        }
        return out + ns.substring(from: last)
    }

    /// UTF-8, also accepting CESU-8 surrogate pairs and C0 80 (ftfy's "utf-8-variants").
    static func decodeUTF8(_ b: [UInt8], variants: Bool) -> String? {
        var scalars = String.UnicodeScalarView()
        var i = 0
        func cont(_ k: Int) -> UInt32? { k < b.count && b[k] & 0xC0 == 0x80 ? UInt32(b[k] & 0x3F) : nil }
        while i < b.count {
            let c = b[i]
            if c < 0x80 { scalars.append(Unicode.Scalar(c)); i += 1; continue }
            if variants && c == 0xC0 && i + 1 < b.count && b[i + 1] == 0x80 { scalars.append("\u{0}"); i += 2; continue }
            if variants && c == 0xED, i + 5 < b.count, (0xA0...0xAF).contains(b[i + 1]), b[i + 3] == 0xED, (0xB0...0xBF).contains(b[i + 4]),
               let c2 = cont(i + 2), let c5 = cont(i + 5) {
                let hi = 0xD000 | (UInt32(b[i + 1] & 0x3F) << 6) | c2, lo = 0xD000 | (UInt32(b[i + 4] & 0x3F) << 6) | c5
                guard let u = Unicode.Scalar(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)) else { return nil }
                scalars.append(u); i += 6; continue
            }
            var value: UInt32, n: Int
            switch c {
            case 0xC2...0xDF: value = UInt32(c & 0x1F); n = 1
            case 0xE0...0xEF: value = UInt32(c & 0x0F); n = 2
            case 0xF0...0xF4: value = UInt32(c & 0x07); n = 3
            default: return nil
            }
            for k in 1...n { guard let v = cont(i + k) else { return nil }; value = value << 6 | v }
            if (n == 2 && value < 0x800) || (n == 3 && (value < 0x10000 || value > 0x10FFFF)) { return nil }
            guard let u = Unicode.Scalar(value) else { return nil }
            scalars.append(u); i += n + 1
        }
        return String(scalars)
    }

    /// ftfy.fix_encoding: one-step repairs until nothing changes.
    static func fix(_ text: String) -> String {
        var t = text
        while true {
            let next = step(t)
            if Array(next.unicodeScalars) == Array(t.unicodeScalars) { return t }
            t = next
        }
    }

    private static func step(_ text: String) -> String {
        if text.isEmpty || text.unicodeScalars.allSatisfy({ $0.value < 0x80 }) || !isBad(text) { return text }
        var possibleNames: [String] = []
        for codec in codecs where possible(text, codec) {
            possibleNames.append(codec.name)
            var b = text.unicodeScalars.map { codec.encode[$0.value] ?? UInt8(truncatingIfNeeded: $0.value) }
            if alteredUTF8.firstMatch(in: latin1(b), range: NSRange(location: 0, length: b.count)) != nil {
                var s = substitute(aGraveWord, in: latin1(b)) { _ in "\u{C3}\u{A0} " }
                s = substitute(alteredUTF8, in: s) { $0.replacingOccurrences(of: " ", with: "\u{A0}") }
                b = bytes(s)
            }
            if codec.name.hasPrefix("sloppy") {
                b = bytes(substitute(lossyUTF8, in: latin1(b)) { _ in "\u{EF}\u{BF}\u{BD}" })
            }
            if let fixed = decodeUTF8(b, variants: b.contains(0xED) || b.contains(0xC0)) { return fixed }
        }
        if utf8Detector.firstMatch(in: text, range: NSRange(location: 0, length: (text as NSString).length)) != nil {
            let fixed = substitute(utf8Detector, in: text) { sub in
                sub.unicodeScalars.count < text.unicodeScalars.count && isBad(sub) ? fix(sub) : sub
            }
            if Array(fixed.unicodeScalars) != Array(text.unicodeScalars) { return fixed }
        }
        if possibleNames.contains("latin-1"), let cp1252 = codecs.first(where: { $0.name == "sloppy-windows-1252" }) {
            // Latin-1 text meant as Windows-1252 (strict: the five undefined bytes fail).
            let undefined: Set<UInt32> = [0x81, 0x8D, 0x8F, 0x90, 0x9D]
            if !text.unicodeScalars.contains(where: { undefined.contains($0.value) }) {
                let fixed = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 256 ? cp1252.decode[Int($0.value)] : $0 }))
                if Array(fixed.unicodeScalars) != Array(text.unicodeScalars) { return fixed }
            }
        }
        return text
    }
}
