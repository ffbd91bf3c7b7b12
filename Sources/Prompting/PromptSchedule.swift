import Foundation

/// A1111's prompt editing (`get_learned_conditioning_prompt_schedules`, webui 1.7+ defaults):
/// `[from:to:when]`, `[to:when]`, `[from::when]` switch text at a step (`when` with a "." is a
/// fraction of the steps, truncated; otherwise a step number), `[a|b|c]` alternates every step;
/// brackets that are not one of these stay literal text. A prompt the grammar rejects (a `|`
/// outside an alternation) is used unchanged for every step.
public enum PromptSchedule {
    indirect enum Node {
        case text(String)
        case sequence([Node])
        case scheduled(before: Node?, after: Node, when: String)
        case alternate([Node])
    }

    /// The prompt for each span of steps: (last step of the span, text).
    public static func schedule(_ prompt: String, steps: Int) -> [(endStep: Int, text: String)] {
        var parser = Parser(Array(prompt))
        guard let tree = parser.start() else { return [(steps, prompt)] }
        var boundaries: Set<Int> = [steps]
        collect(tree, steps: steps, into: &boundaries)
        return boundaries.sorted().map { ($0, render(tree, step: $0, steps: steps)) }
    }

    /// The step a `when` means: fractions (with ".") times the steps, truncated; then at most `steps`.
    static func step(_ when: String, steps: Int) -> Int {
        let v = Double(when) ?? 0
        let raw = when.contains(".") ? v * Double(steps) : v
        // Bounded before converting: a prompt from a file may say [a:b:1e300] (or NaN).
        guard raw.isFinite else { return raw > 0 ? steps : 0 }
        return Int(min(Double(steps), max(-1, raw)).rounded(.towardZero))
    }

    private static func collect(_ n: Node, steps: Int, into out: inout Set<Int>) {
        switch n {
        case .text: break
        case let .sequence(items): for i in items { collect(i, steps: steps, into: &out) }
        case let .scheduled(before, after, when):
            let s = step(when, steps: steps)
            if s >= 1 { out.insert(s) }
            if let before { collect(before, steps: steps, into: &out) }
            collect(after, steps: steps, into: &out)
        case let .alternate(options):
            for s in 1...max(steps, 1) { out.insert(s) }
            for o in options { collect(o, steps: steps, into: &out) }
        }
    }

    private static func render(_ n: Node, step: Int, steps: Int) -> String {
        switch n {
        case let .text(t): return t
        case let .sequence(items): return items.map { render($0, step: step, steps: steps) }.joined()
        case let .scheduled(before, after, when):
            return step <= Self.step(when, steps: steps) ? (before.map { render($0, step: step, steps: steps) } ?? "") : render(after, step: step, steps: steps)
        case let .alternate(options): return render(options[(step - 1) % options.count], step: step, steps: steps)
        }
    }

    /// Recursive descent over A1111's grammar; at "[" the forms are tried in order scheduled,
    /// alternate, plain bracket, and a failed bracket is literal only at the top level.
    struct Parser {
        let s: [Character]
        var i = 0
        init(_ s: [Character]) { self.s = s }

        var current: Character? { i < s.count ? s[i] : nil }
        static let special: Set<Character> = ["\\", "[", "]", "(", ")", ":", "|"]

        mutating func start() -> Node? {
            var items: [Node] = []
            while true {
                items += prompt()
                guard let c = current else { break }
                if "[]():".contains(c) { items.append(.text(String(c))); i += 1; continue }
                return nil                                   // '|' (or a lone backslash) outside any construct
            }
            return .sequence(items)
        }

        /// Items up to a character that ends a prompt.
        mutating func prompt() -> [Node] {
            var items: [Node] = []
            while let c = current {
                if c == "\\" {
                    guard i + 1 < s.count else { break }
                    items.append(.text(String(s[i...(i + 1)]))); i += 2
                } else if !Self.special.contains(c) {
                    let start = i
                    while let d = current, !Self.special.contains(d) { i += 1 }
                    items.append(.text(String(s[start..<i])))
                } else if c == "[", let n = bracket() {
                    items.append(n)
                } else if c == "(", let n = paren() {
                    items.append(n)
                } else {
                    break
                }
            }
            return items
        }

        mutating func skipWhitespace() { while let c = current, c.isWhitespace { i += 1 } }

        /// lark's SIGNED_NUMBER.
        mutating func number() -> String? {
            let start = i
            if let c = current, c == "+" || c == "-" { i += 1 }
            var digits = 0
            while let c = current, c.isASCII, c.isNumber { i += 1; digits += 1 }
            if current == "." {
                i += 1
                var frac = 0
                while let c = current, c.isASCII, c.isNumber { i += 1; frac += 1 }
                if digits == 0 && frac == 0 { i = start; return nil }
            } else if digits == 0 { i = start; return nil }
            if let c = current, c == "e" || c == "E" {
                let save = i
                i += 1
                if let d = current, d == "+" || d == "-" { i += 1 }
                var exp = 0
                while let d = current, d.isASCII, d.isNumber { i += 1; exp += 1 }
                if exp == 0 { i = save }
            }
            return String(s[start..<i])
        }

        /// `:` [ws] NUMBER [ws] `]` after a scheduled prompt.
        mutating func when() -> String? {
            guard current == ":" else { return nil }
            i += 1
            skipWhitespace()
            guard let n = number() else { return nil }
            skipWhitespace()
            guard current == "]" else { return nil }
            i += 1
            return n
        }

        mutating func bracket() -> Node? {
            let save = i
            i += 1
            let inner = i
            // [from:to:when]
            let first = prompt()
            if current == ":" {
                i += 1
                let second = prompt()
                if let w = when() { return .scheduled(before: .sequence(first), after: .sequence(second), when: w) }
            }
            // [to:when]
            i = inner
            let only = prompt()
            if let w = when() { return .scheduled(before: nil, after: .sequence(only), when: w) }
            // [a|b|...]
            i = inner
            var options = [Node.sequence(prompt())]
            while current == "|" { i += 1; options.append(.sequence(prompt())) }
            if options.count > 1, current == "]" { i += 1; return .alternate(options) }
            // [text]
            i = inner
            let plain = prompt()
            if current == "]" { i += 1; return .sequence([.text("[")] + plain + [.text("]")]) }
            i = save
            return nil
        }

        mutating func paren() -> Node? {
            let save = i
            i += 1
            let first = prompt()
            if current == ")" { i += 1; return .sequence([.text("(")] + first + [.text(")")]) }
            if current == ":" {
                i += 1
                let second = prompt()
                if current == ")" { i += 1; return .sequence([.text("(")] + first + [.text(":")] + second + [.text(")")]) }
            }
            i = save
            return nil
        }
    }
}
