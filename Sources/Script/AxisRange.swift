import Foundation

/// A1111's X/Y/Z plot syntax for the values of a numeric axis (`xyz_grid.py`): comma-separated
/// items (CSV quoting), each a number or a range: `1-5` (every integer, both ends), `1-5 (+2)`
/// (a step, signed), `1-10 [5]` (a count, evenly spaced as `np.linspace`, truncated to integers
/// for integer axes). For real axes a stepped range is `np.arange(start, end + step, step)`.
enum AxisRange {
    /// The most values one axis may expand to.
    static let maximumValues = 1000

    struct Failure: Error { let message: String }

    private static let number = #"([+-]?\s*\d+(?:\.\d*)?)"#
    private static let integerStep = try! NSRegularExpression(pattern: #"^\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*$"#)
    private static let integerCount = try! NSRegularExpression(pattern: #"^\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*\])?\s*$"#)
    private static let realStep = try! NSRegularExpression(pattern: #"^\s*"# + number + #"\s*-\s*"# + number + #"(?:\s*\(([+-]\d+(?:\.\d*)?)\s*\))?\s*$"#)
    private static let realCount = try! NSRegularExpression(pattern: #"^\s*"# + number + #"\s*-\s*"# + number + #"(?:\s*\[(\d+)\s*\])?\s*$"#)

    /// The values `text` stands for, as integers or reals.
    static func values(_ text: String, integer: Bool) throws(Failure) -> [Value] {
        var out: [Value] = []
        for item in items(text) where !item.isEmpty {
            if integer, let g = groups(integerStep, item) {
                let (start, end) = (try int(g[0]), try int(g[1]))
                let step = g[2] == nil ? 1 : try int(g[2])
                guard step != 0 else { throw Failure(message: "the step of \"\(item)\" is 0") }
                // range(start, end + 1, step)
                var v = start
                while step > 0 ? v < end + 1 : v > end + 1 {
                    out.append(.integer(v)); v += step
                    if out.count > maximumValues { throw tooMany(text) }
                }
            } else if integer, let g = groups(integerCount, item) {
                let (start, end) = (try int(g[0]), try int(g[1]))
                let count = g[2] == nil ? 1 : try int(g[2])
                guard count <= Int64(maximumValues) else { throw tooMany(text) }
                out += linspace(Double(start), Double(end), Int(count)).map { .integer(Int64($0.rounded(.towardZero))) }
            } else if !integer, let g = groups(realStep, item) {
                let (start, end) = (try real(g[0]), try real(g[1]))
                let step = g[2] == nil ? 1 : try real(g[2])
                guard step != 0 else { throw Failure(message: "the step of \"\(item)\" is 0") }
                // np.arange(start, end + step, step): ceil((stop - start) / step) values.
                let n = ((end + step - start) / step).rounded(.up)
                guard n <= Double(maximumValues) else { throw tooMany(text) }
                if n > 0 { out += (0..<Int(n)).map { .real(start + Double($0) * step) } }
            } else if !integer, let g = groups(realCount, item) {
                let (start, end) = (try real(g[0]), try real(g[1]))
                let count = g[2] == nil ? 1 : try int(g[2])
                guard count <= Int64(maximumValues) else { throw tooMany(text) }
                out += linspace(start, end, Int(count)).map { .real($0) }
            } else if integer, let v = Int64(item) {
                out.append(.integer(v))
            } else if !integer, let v = Double(item), v.isFinite {
                out.append(.real(v))
            } else {
                throw Failure(message: "\"\(item)\" is not \(integer ? "an integer" : "a number") or a range like 1-5, 1-5 (+2), 1-10 [5]")
            }
            if out.count > maximumValues { throw tooMany(text) }
        }
        guard !out.isEmpty else { throw Failure(message: "\"\(text)\" has no values") }
        return out
    }

    /// The comma-separated items (double quotes group as in CSV), trimmed.
    static func items(_ text: String) -> [String] {
        var items: [String] = [], current = "", quoted = false
        for c in text {
            if c == "\"" { quoted.toggle() } else if c == ",", !quoted { items.append(current); current = "" } else { current.append(c) }
        }
        items.append(current)
        return items.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// numpy's linspace(start, stop, num): evenly spaced, the last value exactly `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        guard num > 0 else { return [] }
        guard num > 1 else { return [start] }
        let step = (stop - start) / Double(num - 1)
        return (0..<num).map { $0 == num - 1 ? stop : start + Double($0) * step }
    }

    private static func tooMany(_ text: String) -> Failure { Failure(message: "\"\(text)\" makes more than \(maximumValues) values") }

    private static func int(_ s: String?) throws(Failure) -> Int64 {
        guard let s, let v = Int64(s.replacingOccurrences(of: " ", with: "")) else { throw Failure(message: "\"\(s ?? "")\" is not an integer") }
        guard abs(v) < 1 << 53 else { throw Failure(message: "\(v) is too large for a range") }
        return v
    }

    private static func real(_ s: String?) throws(Failure) -> Double {
        guard let s, let v = Double(s.replacingOccurrences(of: " ", with: "")), v.isFinite else { throw Failure(message: "\"\(s ?? "")\" is not a number") }
        return v
    }

    /// The capture groups of a whole-string match (nil for groups that did not take part), or nil.
    private static func groups(_ regex: NSRegularExpression, _ text: String) -> [String?]? {
        let ns = text as NSString
        guard let m = regex.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return (1..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? nil : ns.substring(with: m.range(at: $0)) }
    }
}
