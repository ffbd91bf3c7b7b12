extension String {
    /// The text with the characters that could steer a terminal made visible: text that comes from
    /// files (safetensors metadata, pickle global names, PNG text chunks) is printed through this,
    /// so that a file cannot move the cursor, rewrite earlier lines, retitle the window or hide text.
    ///
    /// Replaced, each by a visible escape:
    /// - C0 controls (U+0000–U+001F) except line feed and tab, e.g. ESC → `\x1b`, carriage return → `\x0d`;
    /// - DEL (U+007F) → `\x7f`;
    /// - C1 controls (U+0080–U+009F), e.g. CSI → `\u{9b}`;
    /// - the line and paragraph separators U+2028 and U+2029;
    /// - the bidirectional embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069
    ///   (which can make text display in an order other than the one it is read in).
    ///
    /// Everything else, "\n" and "\t" included, is kept as it is; a string without such characters
    /// comes back unchanged.
    public var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: Self.needsEscape) else { return self }
        var out = String.UnicodeScalarView()
        for u in unicodeScalars {
            guard Self.needsEscape(u) else { out.append(u); continue }
            let hex = String(u.value, radix: 16)
            let escaped = u.value < 0x80 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{" + hex + "}"
            out.append(contentsOf: escaped.unicodeScalars)
        }
        return String(out)
    }

    private static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x0A, 0x09: return false
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
