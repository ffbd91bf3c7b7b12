import Foundation

/// The text cleaning of transformers' slow CLIPTokenizer with ftfy installed (A1111's setup):
/// `whitespace_clean(ftfy.fix_text(text))`, lowercased by Python's rules. ftfy 6.3 is followed
/// step by step with its own tables (`Resources/ftfy_tables.json`, from
/// Tests/Fixtures/generators/make_ftfy_tables.py): per line, repeated until nothing changes: HTML entities (off from
/// the first line holding `<` on), C1 controls as Windows-1252, Latin ligatures, character width,
/// curly quotes, line breaks, ANSI escapes, control characters, NFC; with ftfy's mojibake
/// repair (`MojibakeRepair`) after the HTML step.
public enum TextCleaner {
    struct Tables: Decodable {
        let html_entities: [String: String]
        let invalid_charrefs: [String: String]
        let invalid_codepoints: [UInt32]
        let ligatures: [String: String]
        let width_map: [String: String]
        let control_chars: [UInt32]
        let c1_map: [String: String]
    }

    /// Scalar replacement map (code point -> text; empty text removes).
    private static let scalarMap: [UInt32: String] = {
        var m: [UInt32: String] = [:]
        for (k, v) in tables.ligatures { m[UInt32(k)!] = v }
        for (k, v) in tables.width_map { m[UInt32(k)!] = v }
        return m
    }()

    static let tables: Tables = {
        guard let url = Bundle.module.url(forResource: "ftfy_tables", withExtension: "json"),
              let data = try? Data(contentsOf: url), let t = try? JSONDecoder().decode(Tables.self, from: data) else {
            fatalError("Prompting resources: ftfy_tables.json missing or unreadable")
        }
        return t
    }()
    private static let controlChars = Set(tables.control_chars)
    private static let invalidCodepoints = Set(tables.invalid_codepoints)

    /// The text exactly as the tokenizer splits it.
    public static func clean(_ text: String) -> String {
        lowercase(whitespaceClean(fixText(text)))
    }

    /// ftfy.fix_text.
    static func fixText(_ text: String) -> String {
        var out = ""
        var unescape = true
        var rest = Substring(text)
        while !rest.isEmpty {
            let end = rest.firstIndex(of: "\n").map { rest.index(after: $0) } ?? rest.endIndex
            var segment = String(rest[..<end])
            rest = rest[end...]
            if segment.contains("<") { unescape = false }
            while true {
                let original = segment
                if unescape { segment = unescapeHTML(segment) }
                segment = MojibakeRepair.fix(segment)
                segment = mapScalars(segment)
                segment = segment.replacingOccurrences(of: "\r\n", with: "\n")
                segment = String(String.UnicodeScalarView(segment.unicodeScalars.map {
                    ["\r", "\u{2028}", "\u{2029}", "\u{85}"].contains($0) ? "\n" : $0
                }))
                segment = removeTerminalEscapes(segment)
                segment = String(String.UnicodeScalarView(segment.unicodeScalars.filter { !controlChars.contains($0.value) }))
                segment = segment.precomposedStringWithCanonicalMapping
                if Array(segment.unicodeScalars) == Array(original.unicodeScalars) { break }
            }
            out += segment
        }
        return out
    }

    /// C1 controls (as Windows-1252), ligatures, character width and curly quotes: scalar by scalar.
    private static func mapScalars(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            let v = u.value
            if (0x80...0x9F).contains(v), let r = tables.c1_map[String(v)] { out.append(contentsOf: r.unicodeScalars); continue }
            if let r = scalarMap[v] { out.append(contentsOf: r.unicodeScalars); continue }
            if v == 0x2BC || (0x2018...0x201B).contains(v) { out.append("'"); continue }
            if (0x201C...0x201F).contains(v) { out.append("\""); continue }
            out.append(u)
        }
        return String(out)
    }

    private static let ansi = try! NSRegularExpression(pattern: "\u{1B}\\[((?:\\d|;)*)([a-zA-Z])")

    private static func removeTerminalEscapes(_ s: String) -> String {
        guard s.unicodeScalars.contains("\u{1B}") else { return s }
        return ansi.stringByReplacingMatches(in: s, range: NSRange(location: 0, length: (s as NSString).length), withTemplate: "")
    }

    private static let entity = try! NSRegularExpression(pattern: "&#?[0-9A-Za-z]{1,24};")

    /// ftfy's `unescape_html`: named entities from its table, numeric references as html.unescape.
    static func unescapeHTML(_ s: String) -> String {
        guard s.contains("&") else { return s }
        let ns = s as NSString
        var out = "", last = 0
        for m in entity.matches(in: s, range: NSRange(location: 0, length: ns.length)) {
            out += ns.substring(with: NSRange(location: last, length: m.range.location - last))
            let text = ns.substring(with: m.range)
            out += tables.html_entities[text] ?? numericReference(text) ?? text
            last = m.range.location + m.range.length
        }
        return out + ns.substring(from: last)
    }

    /// html.unescape of "&#NNN;" / "&#xHH;".
    private static func numericReference(_ text: String) -> String? {
        guard text.hasPrefix("&#") else { return nil }
        let body = text.dropFirst(2).dropLast()
        let value: UInt32?
        if body.hasPrefix("x") || body.hasPrefix("X") { value = UInt32(body.dropFirst(), radix: 16) } else { value = UInt32(body) }
        guard let n = value else { return nil }
        if let r = tables.invalid_charrefs[String(n)] { return r }
        if (0xD800...0xDFFF).contains(n) || n > 0x10FFFF { return "\u{FFFD}" }
        if invalidCodepoints.contains(n) { return "" }
        return Unicode.Scalar(n).map { String($0) }
    }

    /// Unicode White_Space, as the `regex` module's `\s`.
    static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// `re.sub(r"\s+", " ", text).strip()`.
    static func whitespaceClean(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for u in s.unicodeScalars {
            if isWhitespace(u) { pendingSpace = !out.isEmpty; continue }
            if pendingSpace { out.append(" "); pendingSpace = false }
            out.append(u)
        }
        return String(out)
    }

    /// Python's str.lower(): full lowercase mapping with the final-sigma rule.
    static func lowercase(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (i, u) in scalars.enumerated() {
            if u.value == 0x3A3 {
                // Final_Sigma: preceded by a cased letter and not followed by one (case-ignorable skipped).
                var j = i - 1
                while j >= 0 && scalars[j].properties.isCaseIgnorable { j -= 1 }
                let before = j >= 0 && scalars[j].properties.isCased
                var k = i + 1
                while k < scalars.count && scalars[k].properties.isCaseIgnorable { k += 1 }
                let after = k < scalars.count && scalars[k].properties.isCased
                out.append(before && !after ? "\u{3C2}" : "\u{3C3}")
                continue
            }
            out.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars)
        }
        return String(out)
    }
}
