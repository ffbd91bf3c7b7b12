import Foundation

/// The text repairs CLIP's tokenizer applies before splitting (transformers' slow tokenizer:
/// `whitespace_clean(ftfy.fix_text(text))`), limited to what changes prompts.
public enum TextCleaner {
    public static func clean(_ text: String) -> String {
        var s = fixText(text)
        // whitespace_clean: runs of whitespace become one space; strip.
        s = s.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        return s
    }

    /// The subset of ftfy.fix_text that prompts meet: HTML entities, curly quotes, fullwidth
    /// characters and ligatures (NFKC for those), and NFC normalisation.
    static func fixText(_ text: String) -> String {
        var s = text
        if !s.contains("<") { s = unescapeHTML(s) }
        s = s.replacingOccurrences(of: "\u{2018}", with: "'").replacingOccurrences(of: "\u{2019}", with: "'")
            .replacingOccurrences(of: "\u{201C}", with: "\"").replacingOccurrences(of: "\u{201D}", with: "\"")
        s = String(s.unicodeScalars.map { u -> String in
            // Fullwidth forms (U+FF01..U+FF5E) to ASCII, the ideographic space to a space.
            if (0xFF01...0xFF5E).contains(u.value) { return String(Unicode.Scalar(u.value - 0xFEE0)!) }
            if u.value == 0x3000 { return " " }
            // Latin ligatures (U+FB00..U+FB06).
            if (0xFB00...0xFB06).contains(u.value) { return String(u).precomposedStringWithCompatibilityMapping }
            return String(u)
        }.joined())
        return s.precomposedStringWithCanonicalMapping
    }

    private static let named: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}"]

    /// HTML entity unescaping (named entities of the common set, decimal and hex references).
    static func unescapeHTML(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].prefix(12).firstIndex(of: ";") {
                let body = String(s[s.index(after: i)..<semi])
                var replacement: String? = named[body]
                if body.hasPrefix("#x") || body.hasPrefix("#X"), let v = UInt32(body.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) {
                    replacement = String(u)
                } else if body.hasPrefix("#"), let v = UInt32(body.dropFirst()), let u = Unicode.Scalar(v) {
                    replacement = String(u)
                }
                if let replacement { out += replacement; i = s.index(after: semi); continue }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }
}
