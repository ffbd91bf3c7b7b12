import Formats
import Foundation

/// Parses sdscript text into statements.
///
/// A statement that starts with a word which is not a command, keyword or near-miss of one
/// (`portrait of a cat`) and is followed, before a blank line, by an A1111 parameters line
/// (`Steps: 20, Sampler: ...`) is pasted infotext. When the input ends before such a statement
/// is complete (an open bracket, `"""` string, trailing `\` or pasted prompt without its
/// parameters line), the error is marked `incomplete` so the prompt can read more lines.
public struct Parser {
    var lexer: Lexer
    var lookahead: [Token] = []
    /// Command names and keywords (infotext detection leaves these alone).
    let knownWords: Set<String>

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

    /// Pasted A1111 infotext at the start of a statement, if the upcoming lines are one.
    mutating func pastedInfotext() throws -> Statement? {
        guard lexer.brackets.isEmpty else { return nil }
        // Skip blank lines and comments first so the statement starts at a real line.
        while let c = lexer.peek(), c == " " || c == "\t" || c == "\r" || c == "\n" || c == ";" {
            lexer.advance()
        }
        if lexer.peek() == "#" { return nil }
        let start = lexer.position
        let lines = lexer.upcomingLines()
        guard let first = lines.first?.trimmingCharacters(in: .whitespaces), let word = first.split(separator: " ").first.map(String.init),
              word.first?.isLetter == true || word.first == "(" || word.first == "[" else { return nil }
        let bare = String(word.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
        if knownWords.contains(bare) || NameSuggestion.nearest(bare, in: knownWords) != nil {
            return nil
        }
        var block: [String] = []
        for line in lines {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
            block.append(line)
            if Infotext.isParametersLine(line) {
                lexer.skipLines(block.count)
                return .infotext(block.joined(separator: "\n"), start)
            }
        }
        // Prose without quotes or `=` that reaches the end of the input: a paste still arriving.
        if block.count == lines.count, !first.contains("\""), !first.contains("=") {
            var e = ScriptError(start, "unknown command `\(bare)` (pasted generation parameters need their `Steps: ...` line)")
            e.incomplete = true
            throw e
        }
        return nil
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
            _ = try expect("{", "`{` to start the loop body")
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

    mutating func additive() throws -> Expression {
        var value = try unary()
        while try peek().kind == .symbol("+") {
            let t = try take()
            value = .add(value, try unary(), t.position)
        }
        return value
    }

    mutating func unary() throws -> Expression {
        if try peek().kind == .symbol("-") {
            let t = try take()
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
                    var inner = Parser(source, file: position.file, knownWords: knownWords)
                    inner.lexer = Lexer(source, file: position.file, line: position.line, column: position.column)
                    let e = try inner.expression()
                    let rest = try inner.peek()
                    guard rest.kind == .endOfInput else { throw inner.unexpected(rest, expected: "`}` to end the interpolation") }
                    return .value(e)
                }
            }, t.position)
        case .symbol("("):
            let e = try expression()
            _ = try expect(")", "`)`")
            return e
        case .symbol("["):
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
