import Foundation

extension NSRegularExpression {
    /// Python's `re.split(pattern, text)` for patterns without groups: the text between matches.
    func split(_ s: String) -> [String] {
        let ns = s as NSString
        var parts: [String] = [], last = 0
        for m in matches(in: s, range: NSRange(location: 0, length: ns.length)) {
            parts.append(ns.substring(with: NSRange(location: last, length: m.range.location - last)))
            last = m.range.location + m.range.length
        }
        parts.append(ns.substring(from: last))
        return parts
    }
}
