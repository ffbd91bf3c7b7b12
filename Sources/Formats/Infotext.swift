import Foundation

/// A1111's generation parameters text ("infotext"): the prompt, an optional `Negative prompt:`
/// line, and a last line of `Key: value` pairs. Values holding `,`, `:` or a newline are quoted
/// with JSON string syntax (non-ASCII kept), as A1111's `quote`.
public struct Infotext: Sendable, Equatable {
    public var prompt: String
    public var negativePrompt: String
    /// Parameters in order, values unquoted.
    public var parameters: [(key: String, value: String)]

    public init(prompt: String, negativePrompt: String = "", parameters: [(key: String, value: String)]) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.parameters = parameters
    }

    public static func == (a: Infotext, b: Infotext) -> Bool {
        a.prompt == b.prompt && a.negativePrompt == b.negativePrompt && a.parameters.map(\.key) == b.parameters.map(\.key)
            && a.parameters.map(\.value) == b.parameters.map(\.value)
    }

    public subscript(_ key: String) -> String? { parameters.first { $0.key == key }?.value }

    /// A1111's `quote`: raw unless the value holds `,`, `:` or a newline, then a JSON string
    /// (non-ASCII kept, as `json.dumps(ensure_ascii=False)`).
    static func quote(_ v: String) -> String {
        v.contains(",") || v.contains(":") || v.contains("\n") ? JSONText.quote(v) : v
    }

    /// The text as A1111 writes it.
    public var encoded: String {
        var text = prompt
        if !negativePrompt.isEmpty { text += "\nNegative prompt: " + negativePrompt }
        text += "\n" + parameters.map { $0.key == $0.value ? $0.key : "\($0.key): \(Self.quote($0.value))" }.joined(separator: ", ")
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static let paramPattern = try! NSRegularExpression(pattern: #"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#)

    private static func matches(_ line: String) -> [(String, String)] {
        let ns = line as NSString
        return paramPattern.matches(in: line, range: NSRange(location: 0, length: ns.length)).map {
            (ns.substring(with: $0.range(at: 1)), ns.substring(with: $0.range(at: 2)))
        }
    }

    /// Whether a line is an A1111 parameters line: `Steps: N, ...` with at least three pairs.
    public static func isParametersLine(_ line: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        return t.hasPrefix("Steps:") && matches(t).count >= 3
    }

    /// Parses infotext as A1111's `parse_generation_parameters`: the last line holds parameters
    /// when at least three `Key: value` pairs match; quoted values are JSON strings.
    public static func parse(_ text: String) -> Infotext {
        var lines = text.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n")
        var last = lines.removeLast()
        if matches(last).count < 3 { lines.append(last); last = "" }
        var prompt = "", negative = "", doneWithPrompt = false
        for raw in lines {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Negative prompt:") {
                doneWithPrompt = true
                line = String(line.dropFirst(16)).trimmingCharacters(in: .whitespaces)
            }
            if doneWithPrompt { negative += (negative.isEmpty ? "" : "\n") + line } else { prompt += (prompt.isEmpty ? "" : "\n") + line }
        }
        let parameters = matches(last).map { k, v -> (key: String, value: String) in
            var value = v
            if v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\""),
               let s = try? JSONSerialization.jsonObject(with: Data(v.utf8), options: [.fragmentsAllowed]) as? String {
                value = s
            }
            return (k, value)
        }
        return Infotext(prompt: prompt, negativePrompt: negative, parameters: parameters)
    }
}
