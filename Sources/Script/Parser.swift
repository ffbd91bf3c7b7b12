import Formats
import Foundation

/// Parses sdscript text into statements.
///
/// A statement that starts with a word which is not a command, keyword or near-miss of one
/// (`portrait of a cat`) and is followed, before a blank line, by an A1111 parameters line
/// (`Steps: 20, Sampler: ...`) is pasted infotext. When the input ends before such a statement
/// is complete (an open bracket, `"""` string, trailing `\` or pasted prompt without its
/// parameters line), the error is marked `incomplete` so the prompt can read more lines. A lone
/// unknown word or two (`clear`, `cd models`) is a command, never the start of a paste: the
/// interpreter reports it as unknown.
///
/// Nesting (brackets, `for` bodies, unary `-`, `{}` in strings) is limited to `maximumNesting`
/// levels, and `+` chains are parsed into one flat node, so no input makes parsing, evaluating or
/// freeing a statement recurse deeper than that. Parsing is linear in the input.
public struct Parser {
    var lexer: Lexer
    var lookahead: [Token] = []
    /// Command names and keywords (infotext detection leaves these alone).
    let knownWords: Set<String>
    /// The most levels of brackets, `for` bodies, `-` signs and string interpolations, one inside another.
    public static let maximumNesting = 100
    /// How many of those levels enclose the parse position.
    var depth = 0
    /// Where the last search for a pasted parameters line stopped without finding one (a blank
    /// line, or the end of the input): a statement starting before `end` would search the same
    /// lines, so it is not a paste either. Keeps infotext detection linear over a script.
    var searchedWithoutParameters: (end: Int, reachedEndOfInput: Bool)?
    /// Unknown first words seen so far: whether each is a near-miss of a command (then a command).
    var nearMisses: [String: Bool] = [:]

    public init(_ source: String, file: String, knownWords: Set<String> = CommandCatalog.words) {
        lexer = Lexer(source, file: file)
        self.knownWords = knownWords
    }

    /// Parses the whole input.
    public static func parse(_ source: String, file: String) throws -> [Statement] {
        var parser = Parser(source, file: file)
        return try parser.statements(until: nil)
    }

    mutating func peek(_ n: Int = 0) throws -> Token {
        while lookahead.count <= n { lookahead.append(try lexer.next()) }
        return lookahead[n]
    }

    @discardableResult
    mutating func take() throws -> Token {
        let t = try peek()
        lookahead.removeFirst()
        return t
    }

    mutating func expect(_ symbol: String, _ what: String) throws -> Token {
        let t = try take()
        guard t.kind == .symbol(symbol) else { throw unexpected(t, expected: what) }
        return t
    }

    func unexpected(_ t: Token, expected: String) -> ScriptError {
        var e = ScriptError(t.position, "expected \(expected), found \(t.spelling)")
        e.incomplete = t.kind == .endOfInput && !lexer.brackets.isEmpty
        return e
    }

    /// Statements up to the end of input, or up to `}` when parsing a block.
    mutating func statements(until closing: String?) throws -> [Statement] {
        var out: [Statement] = []
        while true {
            if lookahead.isEmpty, let pasted = try pastedInfotext() { out.append(pasted); continue }
            let t = try peek()
            switch t.kind {
            case .end: try take(); continue
            case .endOfInput:
                if closing != nil { throw unexpected(t, expected: "`}`") }
                return out
            case .symbol("}") where closing == "}":
                try take()
                return out
            default:
                out.append(try statement())
                let after = try peek()
                switch after.kind {
                case .end: try take()
                case .endOfInput: break
                case .symbol("}") where closing == "}": break
                default: throw unexpected(after, expected: "the end of the statement (a newline or `;`)")
                }
            }
        }
    }

    /// One more level of nesting at `position`, refused past `maximumNesting`.
    mutating func enter(_ position: SourcePosition) throws {
        depth += 1
        guard depth <= Self.maximumNesting else {
            throw ScriptError(position, "nesting deeper than \(Self.maximumNesting) levels (brackets, `for` bodies, `-` signs and `{}` in strings)")
        }
    }

    /// Pasted A1111 infotext at the start of a statement, if the upcoming lines are one.
    mutating func pastedInfotext() throws -> Statement? {
        guard lexer.brackets.isEmpty else { return nil }
        // Skip blank lines and comments first so the statement starts at a real line.
        while let c = lexer.peek(), c == " " || c == "\t" || c == "\r" || c == "\n" || c == ";" {
            lexer.advance()
        }
        if lexer.peek() == "#" { return nil }
        let start = lexer.position
        // The start of the statement's line (enough to tell a command from prose; a bounded
        // look, so many statements on one line stay linear).
        let first = lexer.line(from: lexer.index, limit: 200).text.trimmingCharacters(in: .whitespaces)
        guard let word = first.split(separator: " ").first.map(String.init),
              word.first?.isLetter == true || word.first == "(" || word.first == "[" else { return nil }
        let bare = String(word.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
        if knownWords.contains(bare) { return nil }
        let nearMiss = nearMisses[bare] ?? (NameSuggestion.nearest(bare, in: knownWords) != nil)
        nearMisses[bare] = nearMiss
        if nearMiss { return nil }
        let reachedEnd: Bool
        if let searched = searchedWithoutParameters, lexer.index < searched.end {
            reachedEnd = searched.reachedEndOfInput
        } else {
            // The block: lines up to a blank line or the end, looked at one by one by index.
            var offset: Int? = lexer.index, count = 0
            while let o = offset {
                let (line, next) = lexer.line(from: o)
                if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
                count += 1
                if Infotext.isParametersLine(line) {
                    let text = String(lexer.text[lexer.index..<(next.map { $0 - 1 } ?? lexer.text.count)])
                    lexer.skipLines(count)
                    return .infotext(text, start)
                }
                offset = next
            }
            reachedEnd = offset == nil
            searchedWithoutParameters = (offset ?? lexer.text.count, reachedEnd)
        }
        // Prose without quotes or `=` that reaches the end of the input: a paste still arriving.
        if reachedEnd, !first.contains("\""), !first.contains("="), Self.looksLikeProse(first) {
            var e = ScriptError(start, "unknown command `\(bare)` (pasted generation parameters need their `Steps: ...` line)")
            e.incomplete = true
            throw e
        }
        return nil
    }

    /// Whether a line could begin a pasted prompt rather than be a mistyped command: three or more
    /// words, or prompt punctuation. `clear`, `cls`, `cd models` are not.
    static func looksLikeProse(_ line: String) -> Bool {
        line.split(whereSeparator: \.isWhitespace).count >= 3 || line.contains { ",()[]:|<>".contains($0) }
    }

    mutating func statement() throws -> Statement {
        let t = try peek()
        switch t.kind {
        case .identifier("let"):
            try take()
            let name = try identifier("a variable name after `let`")
            _ = try expect("=", "`=` after `let \(name)`")
            return .assign(name: name, value: try expression(), t.position)
        case .identifier("for"):
            try take()
            let name = try identifier("a loop variable after `for`")
            let inToken = try take()
            guard inToken.kind == .identifier("in") else { throw unexpected(inToken, expected: "`in` after `for \(name)`") }
            let sequence = try expression()
            let open = try expect("{", "`{` to start the loop body")
            try enter(open.position)
            defer { depth -= 1 }
            return .loop(variable: name, sequence: sequence, body: try statements(until: "}"), t.position)
        case .identifier(let name):
            try take()
            return .command(name: name, arguments: try arguments(), t.position)
        case .string:
            // A bare prompt: `"text" options` is `generate "text" options`.
            return .command(name: "generate", arguments: try arguments(), t.position)
        default:
            throw unexpected(t, expected: "a command, a prompt string, `let` or `for`")
        }
    }

    mutating func identifier(_ what: String) throws -> String {
        let t = try take()
        guard case let .identifier(name) = t.kind else { throw unexpected(t, expected: what) }
        return name
    }

    /// Positional arguments and `NAME=EXPR` options up to the end of the statement.
    mutating func arguments() throws -> [Argument] {
        var out: [Argument] = []
        while true {
            let t = try peek()
            switch t.kind {
            case .end, .endOfInput, .symbol("}"): return out
            case let .identifier(name) where try peek(1).kind == .symbol("="):
                try take(); try take()
                out.append(Argument(name: name, value: try expression(), position: t.position))
            default:
                out.append(Argument(name: nil, value: try expression(), position: t.position))
            }
        }
    }

    /// `additive ('..' additive)?`
    mutating func expression() throws -> Expression {
        let first = try additive()
        if try peek().kind == .symbol("..") {
            let t = try take()
            return .range(first, try additive(), t.position)
        }
        return first
    }

    /// `unary ('+' unary)*`, as one flat node however long the chain.
    mutating func additive() throws -> Expression {
        let first = try unary()
        guard try peek().kind == .symbol("+") else { return first }
        var terms = [first], operators: [SourcePosition] = []
        while try peek().kind == .symbol("+") {
            operators.append(try take().position)
            terms.append(try unary())
        }
        return .add(terms, operators)
    }

    mutating func unary() throws -> Expression {
        if try peek().kind == .symbol("-") {
            let t = try take()
            try enter(t.position)
            defer { depth -= 1 }
            return .negate(try unary(), t.position)
        }
        return try primary()
    }

    mutating func primary() throws -> Expression {
        let t = try take()
        switch t.kind {
        case let .integer(v): return .integer(v, t.position)
        case let .real(v): return .real(v, t.position)
        case let .size(w, h): return .size(width: w, height: h, t.position)
        case .identifier("true"): return .boolean(true, t.position)
        case .identifier("false"): return .boolean(false, t.position)
        case let .identifier(name): return .variable(name, t.position)
        case let .string(pieces):
            return .string(try pieces.map { piece in
                switch piece {
                case let .text(s): return .text(s)
                case let .interpolation(source, position):
                    try enter(position)
                    defer { depth -= 1 }
                    var inner = Parser(source, file: position.file, knownWords: knownWords)
                    inner.lexer = Lexer(source, file: position.file, line: position.line, column: position.column)
                    inner.depth = depth
                    let e = try inner.expression()
                    let rest = try inner.peek()
                    guard rest.kind == .endOfInput else { throw inner.unexpected(rest, expected: "`}` to end the interpolation") }
                    return .value(e)
                }
            }, t.position)
        case .symbol("("):
            try enter(t.position)
            defer { depth -= 1 }
            let e = try expression()
            _ = try expect(")", "`)`")
            return e
        case .symbol("["):
            try enter(t.position)
            defer { depth -= 1 }
            var items: [Expression] = []
            if try peek().kind == .symbol("]") { try take(); return .list([], t.position) }
            while true {
                items.append(try expression())
                let sep = try take()
                if sep.kind == .symbol("]") { break }
                guard sep.kind == .symbol(",") else { throw unexpected(sep, expected: "`,` or `]` in the list") }
                if try peek().kind == .symbol("]") { try take(); break }   // trailing comma
            }
            return .list(items, t.position)
        default:
            throw unexpected(t, expected: "a value (number, string, size, list, variable)")
        }
    }
}
