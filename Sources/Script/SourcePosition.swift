/// A place in a script: file name (or `<prompt>`, `<-e>`), 1-based line and column.
public struct SourcePosition: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file; self.line = line; self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// An error in a script, reported as `file:line:col: message`.
public struct ScriptError: Error, Sendable, Equatable, CustomStringConvertible {
    public var position: SourcePosition
    public var message: String
    /// The input ended inside an open bracket or `"""` string: at the prompt, read more lines.
    public var incomplete = false

    public init(_ position: SourcePosition, _ message: String) {
        self.position = position; self.message = message
    }

    public var description: String { "\(position): \(message)" }
}
