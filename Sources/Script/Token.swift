/// A lexical token of sdscript.
public enum TokenKind: Sendable, Equatable {
    case identifier(String)
    case integer(Int64)
    case real(Double)
    /// `512x768`: a size is a value of its own.
    case size(width: Int, height: Int)
    /// A string's pieces: literal text and `{expression}` sources (lexed and parsed later).
    case string([StringPiece])
    case symbol(String)          // = ( ) [ ] { } , + - ..
    /// End of a statement: a newline or `;`.
    case end
    case endOfInput
}

/// A piece of a string literal.
public enum StringPiece: Sendable, Equatable {
    case text(String)
    /// The source of an interpolated expression and where it starts.
    case interpolation(String, SourcePosition)
}

public struct Token: Sendable, Equatable {
    public var kind: TokenKind
    public var position: SourcePosition
    /// How the token is named in "expected ..., found ..." messages.
    public var spelling: String {
        switch kind {
        case let .identifier(n): return "`\(n)`"
        case let .integer(v): return "`\(v)`"
        case let .real(v): return "`\(v)`"
        case let .size(w, h): return "`\(w)x\(h)`"
        case .string: return "a string"
        case let .symbol(s): return "`\(s)`"
        case .end: return "the end of the statement"
        case .endOfInput: return "the end of the input"
        }
    }
}
