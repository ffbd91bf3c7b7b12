import Foundation

/// A1111's attention syntax (`parse_prompt_attention`): `(text)` multiplies by 1.1, `[text]`
/// divides by 1.1, `(text:1.3)` sets a factor, `\(` `\)` `\[` `\]` `\\` are literal, unbalanced
/// brackets close at the end, `BREAK` (a whole word) becomes its own piece with weight -1, and
/// neighbouring pieces of equal weight merge. Weights are computed in double, as in Python.
public enum PromptAttention {
    private static let token = try! NSRegularExpression(
        pattern: #"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:"#)
    private static let breakPattern = try! NSRegularExpression(pattern: #"\s*\bBREAK\b\s*"#, options: [.dotMatchesLineSeparators])

    /// (text, weight) pieces of a prompt.
    public static func parse(_ text: String) -> [(text: String, weight: Double)] {
        var res: [(text: String, weight: Double)] = []
        var round: [Int] = [], square: [Int] = []
        func multiply(from start: Int, _ m: Double) { for p in start..<res.count { res[p].weight *= m } }
        let ns = text as NSString
        for m in token.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let piece = ns.substring(with: m.range)
            let weight = m.range(at: 1).location != NSNotFound ? ns.substring(with: m.range(at: 1)) : nil
            if piece.hasPrefix("\\") {
                res.append((String(piece.dropFirst()), 1.0))
            } else if piece == "(" {
                round.append(res.count)
            } else if piece == "[" {
                square.append(res.count)
            } else if let weight, !round.isEmpty {
                multiply(from: round.removeLast(), pythonFloat(weight) ?? 1.0)
            } else if piece == ")" && !round.isEmpty {
                multiply(from: round.removeLast(), 1.1)
            } else if piece == "]" && !square.isEmpty {
                multiply(from: square.removeLast(), 1 / 1.1)
            } else {
                for (i, part) in breakPattern.split(piece).enumerated() {
                    if i > 0 { res.append(("BREAK", -1)) }
                    res.append((part, 1.0))
                }
            }
        }
        for p in round { multiply(from: p, 1.1) }
        for p in square { multiply(from: p, 1 / 1.1) }
        if res.isEmpty { res = [("", 1.0)] }
        var i = 0
        while i + 1 < res.count {
            if res[i].weight == res[i + 1].weight {
                res[i].text += res[i + 1].text
                res.remove(at: i + 1)
            } else {
                i += 1
            }
        }
        return res
    }

    /// Python's float() of the weight text ("1.", ".5", "+2"); nil when Python would raise (A1111
    /// then fails the whole parse; here the factor is ignored).
    static func pythonFloat(_ text: String) -> Double? {
        // Python's float() accepts any Unicode decimal digits (e.g. Arabic-Indic).
        let s = String(text.unicodeScalars.map { u -> Character in
            if u.properties.numericType == .decimal, let v = u.properties.numericValue { return Character(String(Int(v))) }
            return Character(u)
        })
        return Double(s.hasSuffix(".") ? s + "0" : (s.hasPrefix(".") || s.hasPrefix("+.") || s.hasPrefix("-.") ? s.replacingOccurrences(of: ".", with: "0.") : s))
    }
}
