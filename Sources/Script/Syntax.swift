/// An sdscript expression.
public indirect enum Expression: Sendable, Equatable {
    case integer(Int64, SourcePosition)
    case real(Double, SourcePosition)
    case size(width: Int, height: Int, SourcePosition)
    case boolean(Bool, SourcePosition)
    /// Text and interpolated expressions, joined at evaluation.
    case string([StringSegment], SourcePosition)
    case list([Expression], SourcePosition)
    /// `a..b`, inclusive, integers.
    case range(Expression, Expression, SourcePosition)
    case variable(String, SourcePosition)
    /// `a + b + c`: the terms, added left to right, and where each `+` is (one fewer than the
    /// terms). One flat node, so a long chain is no deeper than two terms.
    case add([Expression], [SourcePosition])
    case negate(Expression, SourcePosition)

    public var position: SourcePosition {
        switch self {
        case let .integer(_, p), let .real(_, p), let .size(_, _, p), let .boolean(_, p), let .string(_, p),
             let .list(_, p), let .range(_, _, p), let .variable(_, p), let .negate(_, p):
            return p
        case let .add(terms, operators):
            // The last `+`, as when a chain was a tree of pairs.
            return operators.last ?? terms.first?.position ?? SourcePosition(file: "", line: 0, column: 0)
        }
    }
}

/// A piece of a string expression.
public enum StringSegment: Sendable, Equatable {
    case text(String)
    case value(Expression)
}

/// `NAME=EXPR` or a positional argument of a command.
public struct Argument: Sendable, Equatable {
    public var name: String?
    public var value: Expression
    public var position: SourcePosition
}

/// An sdscript statement.
public enum Statement: Sendable, Equatable {
    case assign(name: String, value: Expression, SourcePosition)
    case loop(variable: String, sequence: Expression, body: [Statement], SourcePosition)
    /// A command with its arguments; a bare prompt string is `generate` with the string first.
    case command(name: String, arguments: [Argument], SourcePosition)
    /// Pasted A1111 infotext (prompt, `Negative prompt:`, parameters line).
    case infotext(String, SourcePosition)

    public var position: SourcePosition {
        switch self {
        case let .assign(_, _, p), let .loop(_, _, _, p), let .command(_, _, p), let .infotext(_, p): return p
        }
    }
}
