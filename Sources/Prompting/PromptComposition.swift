import Foundation

/// A1111's `AND` (composable diffusion, `get_multicond_prompt_list`): a prompt splits on the word
/// AND (case-sensitive, whole word); each part may end in `:weight`; identical parts share one
/// conditioning.
public enum PromptComposition {
    private static let and = try! NSRegularExpression(pattern: #"\bAND\b"#)
    private static let weight = try! NSRegularExpression(pattern: #"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$"#)

    /// For each prompt, (index into `flat`, weight) pairs; `flat` holds the distinct part texts.
    public static func parse(_ prompts: [String]) -> (indexes: [[(index: Int, weight: Double)]], flat: [String]) {
        var flat: [String] = [], seen: [String: Int] = [:]
        let indexes = prompts.map { prompt -> [(index: Int, weight: Double)] in
            and.split(prompt).map { part in
                var text = part, w = 1.0
                let ns = part as NSString
                if let m = weight.firstMatch(in: part, range: NSRange(location: 0, length: ns.length)) {
                    text = ns.substring(with: m.range(at: 1))
                    if m.range(at: 2).location != NSNotFound { w = PromptAttention.pythonFloat(ns.substring(with: m.range(at: 2))) ?? 1 }
                }
                if let i = seen[text] { return (i, w) }
                seen[text] = flat.count
                flat.append(text)
                return (flat.count - 1, w)
            }
        }
        return (indexes, flat)
    }
}
