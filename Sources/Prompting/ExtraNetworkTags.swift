import Formats

/// A1111's extra-network tags in prompts: `<lora:NAME:1>`, `<hypernet:NAME:0.5>`, any
/// `<WORD:ARGS>` (its `re_extra_net`, `<(\w+):([^>]+)>`). A1111 removes them from the prompt
/// before conditioning (the infotext keeps them); sdshell does the same and applies the `lora`
/// ones (`loras`).
public enum ExtraNetworkTags {
    /// The tags in `text`, in order.
    public static func find(_ text: String) -> [String] { ranges(text).map { String(text[$0]) } }

    /// `text` without its tags.
    public static func strip(_ text: String) -> String {
        var out = "", last = text.startIndex
        for r in ranges(text) { out += text[last..<r.lowerBound]; last = r.upperBound }
        return out + text[last...]
    }

    /// A `<lora:...>` tag as A1111's Lora extension reads it.
    public struct LoRA: Sendable, Equatable {
        public let name: String
        /// The text-encoder and UNet multipliers.
        public let textEncoder: Float, unet: Float
        public init(name: String, textEncoder: Float, unet: Float) { self.name = name; self.textEncoder = textEncoder; self.unet = unet }
    }

    /// The `<lora:NAME[:TE[:UNET]]>` tags of `texts`, in order: `te=` and `unet=` may name the
    /// multipliers; TE defaults to 1 and UNET to TE (A1111's `extra_networks_lora`). A weight
    /// that is not a finite number is an error naming the tag.
    public static func loras(_ texts: [String]) throws -> [LoRA] {
        var out: [LoRA] = []
        for text in texts {
            for r in ranges(text) {
                let inner = text[text.index(after: r.lowerBound)..<text.index(before: r.upperBound)]
                let items = inner.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard items[0] == "lora" else { continue }
                var positional: [String] = [], named: [String: String] = [:]
                for item in items.dropFirst() {
                    if let eq = item.firstIndex(of: "=") {
                        named[String(item[..<eq])] = String(item[item.index(after: eq)...])
                    } else {
                        positional.append(item)
                    }
                }
                let tag = String(text[r]).escapingControlCharacters
                func number(_ s: String) throws -> Float {
                    guard let v = Double(s.trimmingCharacters(in: .whitespaces)), v.isFinite, abs(v) <= 1000 else {
                        throw TagError(message: "\(tag): \"\(s.escapingControlCharacters)\" is not a weight (a number such as 0.8)")
                    }
                    return Float(v)
                }
                guard let name = positional.first, !name.isEmpty else { throw TagError(message: "\(tag) names no network") }
                var te: Float = positional.count > 1 ? try number(positional[1]) : 1
                if let v = named["te"] { te = try number(v) }
                var unet: Float = positional.count > 2 ? try number(positional[2]) : te
                if let v = named["unet"] { unet = try number(v) }
                out.append(LoRA(name: name, textEncoder: te, unet: unet))
            }
        }
        return out
    }

    /// `<` word characters `:` one or more characters other than `>`, then `>`.
    static func ranges(_ text: String) -> [Range<String.Index>] {
        var found: [Range<String.Index>] = []
        var i = text.startIndex
        while let open = text[i...].firstIndex(of: "<") {
            var j = text.index(after: open)
            while j < text.endIndex, text[j].isLetter || text[j].isNumber || text[j] == "_" { j = text.index(after: j) }
            guard j > text.index(after: open), j < text.endIndex, text[j] == ":",
                  let close = text[j...].firstIndex(of: ">"), close > text.index(after: j) else {
                i = text.index(after: open)
                continue
            }
            found.append(open..<text.index(after: close))
            i = text.index(after: close)
        }
        return found
    }
}

/// A malformed extra-network tag.
public struct TagError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
