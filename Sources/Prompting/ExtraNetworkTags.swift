/// A1111's extra-network tags in prompts: `<lora:NAME:1>`, `<hypernet:NAME:0.5>`, any
/// `<WORD:ARGS>` (its `re_extra_net`, `<(\w+):([^>]+)>`). A1111 removes them from the prompt
/// before conditioning (the infotext keeps them); sdshell does the same and, having no LoRA yet,
/// says which were not applied.
public enum ExtraNetworkTags {
    /// The tags in `text`, in order.
    public static func find(_ text: String) -> [String] { ranges(text).map { String(text[$0]) } }

    /// `text` without its tags.
    public static func strip(_ text: String) -> String {
        var out = "", last = text.startIndex
        for r in ranges(text) { out += text[last..<r.lowerBound]; last = r.upperBound }
        return out + text[last...]
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
