/// Turns sdscript text into tokens on demand, with positions.
///
/// Newlines end statements, except inside `(` and `[` (where a statement may span lines) and
/// after a `\` at the end of a line. Inside `{ }` (a `for` body) newlines separate statements.
/// Strings keep the A1111 prompt syntax untouched: only `\"`, `\\`, `\n`, `\t` and `\{` are
/// escapes, any other backslash stays as written. Windows line ends (`\r\n`) read as `\n`.
public struct Lexer {
    let text: [Character]
    public let file: String
    var index = 0
    var line = 1, column = 1
    /// Open `(`, `[` and `{`, innermost last.
    var brackets: [Character] = []
    /// The input ended right after a `\` continuation.
    var continuesPastEnd = false

    public init(_ source: String, file: String, line: Int = 1, column: Int = 1) {
        // `\r\n` is one Character in Swift; reading it as `\n` makes a CRLF script run as its LF version.
        text = source.map { $0 == "\r\n" ? "\n" : $0 }
        self.file = file
        self.line = line
        self.column = column
    }

    public var position: SourcePosition { SourcePosition(file: file, line: line, column: column) }
    public var atEnd: Bool { index >= text.count }

    mutating func advance() {
        if text[index] == "\n" { line += 1; column = 1 } else { column += 1 }
        index += 1
    }

    func peek(_ offset: Int = 0) -> Character? { index + offset < text.count ? text[index + offset] : nil }

    func incomplete(_ message: String) -> ScriptError {
        var e = ScriptError(position, message)
        e.incomplete = true
        return e
    }

    /// The line that starts at text offset `start` (without its newline) and the offset of the
    /// next line (nil when this line is the last), without consuming anything: lookahead by
    /// index, so looking at a few upcoming lines costs their length, not the rest of the input.
    /// With `limit`, the text stops after that many characters (and `next` is nil if it was cut).
    public func line(from start: Int, limit: Int = .max) -> (text: String, next: Int?) {
        var end = start
        while end < text.count, text[end] != "\n" {
            if end - start == limit { return (String(text[start..<end]), nil) }
            end += 1
        }
        return (String(text[start..<end]), end < text.count ? end + 1 : nil)
    }

    /// Consumes `count` whole lines (the current one included).
    public mutating func skipLines(_ count: Int) {
        var left = count
        while index < text.count, left > 0 {
            if text[index] == "\n" { left -= 1 }
            advance()
        }
    }

    /// Skips spaces, comments, continuations and (inside `(`/`[`) newlines.
    mutating func skipTrivia() {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\r" {
                advance()
            } else if c == "#" {
                while let d = peek(), d != "\n" { advance() }
            } else if c == "\\", continuationFollows() {
                advance()
                while let d = peek(), d != "\n" { advance() }
                if peek() == "\n" { advance() } else { continuesPastEnd = true }
            } else if c == "\n", let open = brackets.last, open != "{" {
                advance()
            } else {
                return
            }
        }
    }

    /// A `\` followed only by spaces up to the end of the line.
    func continuationFollows() -> Bool {
        var i = index + 1
        while i < text.count, text[i] == " " || text[i] == "\t" || text[i] == "\r" { i += 1 }
        return i >= text.count || text[i] == "\n"
    }

    /// The next token.
    public mutating func next() throws -> Token {
        skipTrivia()
        let start = position
        guard let c = peek() else {
            if let open = brackets.last { throw incomplete("`\(open)` is not closed") }
            if continuesPastEnd { throw incomplete("the line continues (`\\` at its end)") }
            return Token(kind: .endOfInput, position: start)
        }
        if c == "\n" || c == ";" {
            advance()
            return Token(kind: .end, position: start)
        }
        if c == "\"" { return Token(kind: .string(try string()), position: start) }
        if c.isNumber && c.isASCII { return Token(kind: try number(), position: start) }
        if c.isLetter || c == "_" {
            var name = ""
            while let d = peek(), d.isLetter || d.isNumber || d == "_" { name.append(d); advance() }
            return Token(kind: .identifier(name), position: start)
        }
        if c == ".", peek(1) == "." {
            advance(); advance()
            return Token(kind: .symbol(".."), position: start)
        }
        if "([{".contains(c) {
            brackets.append(c)
            advance()
            return Token(kind: .symbol(String(c)), position: start)
        }
        if ")]}".contains(c) {
            let expected: Character = c == ")" ? "(" : c == "]" ? "[" : "{"
            guard brackets.last == expected else { throw ScriptError(start, "unexpected `\(c)`") }
            brackets.removeLast()
            advance()
            return Token(kind: .symbol(String(c)), position: start)
        }
        if "=,+-".contains(c) {
            advance()
            return Token(kind: .symbol(String(c)), position: start)
        }
        throw ScriptError(start, "unexpected character `\(c)`")
    }

    /// `20`, `7.5`, `1e-3`, `512x768`; `1..4` leaves the `..` for the range.
    mutating func number() throws -> TokenKind {
        let start = position
        var digits = ""
        func takeDigits() { while let d = peek(), d.isASCII, d.isNumber { digits.append(d); advance() } }
        takeDigits()
        if peek() == "x", let d = peek(1), d.isASCII, d.isNumber {
            advance()
            let width = digits
            digits = ""
            takeDigits()
            guard let w = Int(width), let h = Int(digits) else { throw ScriptError(start, "the size \(width)x\(digits) is too large") }
            return .size(width: w, height: h)
        }
        var real = false
        if peek() == ".", let d = peek(1), d.isASCII, d.isNumber {
            real = true
            digits.append("."); advance()
            takeDigits()
        }
        if peek() == "e" || peek() == "E" {
            let sign = peek(1) == "-" || peek(1) == "+"
            if let d = peek(sign ? 2 : 1), d.isASCII, d.isNumber {
                real = true
                digits.append("e"); advance()
                if sign { digits.append(peek()!); advance() }
                takeDigits()
            }
        }
        if let d = peek(), d.isLetter || d == "_" { throw ScriptError(position, "unexpected `\(d)` after the number \(digits)") }
        if real {
            guard let v = Double(digits) else { throw ScriptError(start, "malformed number \(digits)") }
            return .real(v)
        }
        guard let v = Int64(digits) else { throw ScriptError(start, "the number \(digits) is too large (integers are 64-bit, at most \(Int64.max))") }
        return .integer(v)
    }

    /// A `"..."` or `"""..."""` string, split into text and `{expression}` pieces.
    mutating func string() throws -> [StringPiece] {
        let start = position
        let triple = peek(1) == "\"" && peek(2) == "\""
        for _ in 0..<(triple ? 3 : 1) { advance() }
        var pieces: [StringPiece] = [], text = ""
        while true {
            guard let c = peek() else {
                throw triple ? incomplete("the string started at \(start.line):\(start.column) is not closed (expected `\"\"\"`)")
                             : ScriptError(start, "unterminated string (expected `\"` before the end of the line; use `\"\"\"` for text over several lines)")
            }
            if triple, c == "\"", peek(1) == "\"", peek(2) == "\"" {
                advance(); advance(); advance()
                break
            }
            if !triple, c == "\"" { advance(); break }
            if !triple, c == "\n" { throw ScriptError(start, "unterminated string (expected `\"` before the end of the line; use `\"\"\"` for text over several lines)") }
            if c == "\\", let e = peek(1) {
                switch e {
                case "\"", "\\", "{": text.append(e); advance(); advance(); continue
                case "n": text.append("\n"); advance(); advance(); continue
                case "t": text.append("\t"); advance(); advance(); continue
                default: text.append(c); advance(); continue
                }
            }
            if c == "{" {
                let exprStart = position
                advance()
                var depth = 1, source = ""
                while let d = peek() {
                    if d == "{" { depth += 1 } else if d == "}" { depth -= 1; if depth == 0 { break } }
                    if d == "\n" && !triple { break }
                    source.append(d); advance()
                }
                guard peek() == "}" else { throw ScriptError(exprStart, "`{` in a string is not closed (expected `}`; write `\\{` for a literal brace)") }
                advance()
                if !text.isEmpty { pieces.append(.text(text)); text = "" }
                var inner = exprStart
                inner.column += 1
                pieces.append(.interpolation(source, inner))
                continue
            }
            text.append(c); advance()
        }
        if !text.isEmpty || pieces.isEmpty { pieces.append(.text(text)) }
        return pieces
    }
}
