import Engine
import Formats
import Models
import Prompting

/// embedding-merge's arithmetic on embeddings and words, for `embedding combine`: an expression
/// of embedding names, quoted words (`'cat'`: their token rows, one vector a token), numbers,
/// `+` and `-` (vector by vector: equal counts, or one side a single vector applied to each),
/// `*` and `/` by a number, concatenation `[a, b, ...]`, slices `x[1:3]` and `x[2]` (Python's
/// rules, negative indices from the end), and parentheses. The result holds each text encoder's
/// vectors side by side, [n, the widths summed], as the trainer and the embedding writer take them.
public struct EmbeddingCombination {
    public enum Error: Swift.Error, CustomStringConvertible {
        case syntax(String, at: Int)
        case value(String)
        public var description: String {
            switch self {
            case let .syntax(m, at): return "\(m) at character \(at + 1)"
            case let .value(m): return m
            }
        }
    }

    /// The longest expression read (characters), and the deepest nesting of brackets and
    /// parentheses (each level is a recursion: bounded so a hostile text cannot exhaust the stack).
    public static let maximumLength = 4_000
    public static let maximumDepth = 64

    private let characters: [Character]
    private var position = 0
    private var depth = 0
    private let lookup: (String) throws -> Tensor?
    private let word: (String) throws -> Tensor

    /// Evaluates `text`; `embedding` gives an embedding's vectors by name (nil: no such
    /// embedding), `word` a word's token rows.
    public static func evaluate(_ text: String, embedding: @escaping (String) throws -> Tensor?, word: @escaping (String) throws -> Tensor) throws -> Tensor {
        guard text.count <= maximumLength else { throw Error.value("the expression is longer than \(maximumLength) characters") }
        var parser = EmbeddingCombination(characters: Array(text), lookup: embedding, word: word)
        let value = try parser.sum()
        parser.skipSpaces()
        guard parser.position == parser.characters.count else { throw Error.syntax("unexpected \"\(parser.characters[parser.position])\"", at: parser.position) }
        guard case let .vectors(v) = value else { throw Error.value("the expression is a number, not vectors") }
        guard v.shape[0] >= 1, v.shape[0] <= EmbeddingFile.maximumVectors else {
            throw Error.value("the result has \(v.shape[0]) vectors; an embedding has 1 to \(EmbeddingFile.maximumVectors)")
        }
        return v
    }

    /// The same for a model: names are the database's embeddings, words the model's token rows.
    public static func evaluate(_ text: String, database: EmbeddingDatabase, model: StableDiffusionModel, tokenizer: CLIPTokenizer) throws -> Tensor {
        try evaluate(text, embedding: { name in
            guard let e = database.embeddings[name] else { return nil }
            let parts = (0..<e.widths.count).map { e.vectors(forEncoder: $0) }
            guard e.widths == model.embeddingWidths else {
                throw Error.value("\(name) has vectors of width \(e.widths.map(String.init).joined(separator: " + ")); the model's are \(model.embeddingWidths.map(String.init).joined(separator: " + "))")
            }
            return parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1)
        }, word: { text in
            let ids = tokenizer.encode(text)
            guard !ids.isEmpty else { throw Error.value("'\(text)' has no tokens") }
            let parts = try model.textEncoders.map { try $0.encoder.tokenEmbeddings(ids).to(.f32) }
            return parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1)
        })
    }

    private enum Value {
        case number(Double)
        case vectors(Tensor)
    }

    private init(characters: [Character], lookup: @escaping (String) throws -> Tensor?, word: @escaping (String) throws -> Tensor) {
        self.characters = characters; self.lookup = lookup; self.word = word
    }

    private mutating func skipSpaces() { while position < characters.count, characters[position].isWhitespace { position += 1 } }

    private mutating func take(_ c: Character) -> Bool {
        skipSpaces()
        guard position < characters.count, characters[position] == c else { return false }
        position += 1
        return true
    }

    // sum := product (('+' | '-') product)*
    private mutating func sum() throws -> Value {
        var value = try product()
        while true {
            if take("+") { value = try combine(value, try product(), subtract: false) } else if take("-") { value = try combine(value, try product(), subtract: true) } else { return value }
        }
    }

    // product := postfix (('*' | '/') postfix)*
    private mutating func product() throws -> Value {
        var value = try postfix()
        while true {
            if take("*") { value = try scale(value, try postfix(), divide: false) } else if take("/") { value = try scale(value, try postfix(), divide: true) } else { return value }
        }
    }

    // postfix := primary ('[' index ']')*
    private mutating func postfix() throws -> Value {
        var value = try primary()
        while take("[") {
            guard case let .vectors(v) = value else { throw Error.syntax("a number cannot be sliced", at: position) }
            let n = v.shape[0]
            func resolve(_ i: Int) -> Int { i < 0 ? max(n + i, 0) : min(i, n) }
            let start = try integer(), colon = take(":")
            let end = colon ? try integer() : nil
            guard take("]") else { throw Error.syntax("expected \"]\"", at: position) }
            if colon {
                let (a, b) = (resolve(start ?? 0), resolve(end ?? n))
                guard a < b else { throw Error.value("the slice [\(start.map(String.init) ?? ""):\(end.map(String.init) ?? "")] of \(n) vectors is empty") }
                value = .vectors(try v.sliced(dim: 0, a, b).contiguous())
            } else {
                guard let i = start, i >= -n, i < n else { throw Error.value("index \(start.map(String.init) ?? "") is outside \(n) vectors") }
                let j = i < 0 ? n + i : i
                value = .vectors(try v.sliced(dim: 0, j, j + 1).contiguous())
            }
        }
        return value
    }

    private mutating func integer() throws -> Int? {
        skipSpaces()
        var text = ""
        if position < characters.count, characters[position] == "-" { text.append("-"); position += 1 }
        while position < characters.count, characters[position].isNumber, text.count < 8 { text.append(characters[position]); position += 1 }
        if text.isEmpty { return nil }
        guard let i = Int(text) else { throw Error.syntax("expected a whole number", at: position) }
        return i
    }

    // primary := number | 'word' | name | '[' sum (',' sum)* ']' | '(' sum ')' | '-' primary
    private mutating func primary() throws -> Value {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw Error.syntax("nested more than \(Self.maximumDepth) deep", at: position) }
        skipSpaces()
        guard position < characters.count else { throw Error.syntax("the expression ends too soon", at: position) }
        let c = characters[position]
        if c == "(" {
            position += 1
            let v = try sum()
            guard take(")") else { throw Error.syntax("expected \")\"", at: position) }
            return v
        }
        if c == "[" {
            position += 1
            var parts: [Tensor] = []
            repeat {
                guard case let .vectors(v) = try sum() else { throw Error.value("only vectors can be concatenated") }
                parts.append(v)
            } while take(",")
            guard take("]") else { throw Error.syntax("expected \"]\" or \",\"", at: position) }
            return .vectors(try Tensor.concat(parts, dim: 0))
        }
        if c == "'" || c == "\"" {
            position += 1
            var text = ""
            while position < characters.count, characters[position] != c { text.append(characters[position]); position += 1 }
            guard position < characters.count else { throw Error.syntax("an unterminated quoted word", at: position) }
            position += 1
            return .vectors(try word(text))
        }
        if c == "-" {
            position += 1
            return try scale(try primary(), .number(-1), divide: false)
        }
        if c.isNumber || c == "." {
            var text = ""
            while position < characters.count, characters[position].isNumber || characters[position] == "." || characters[position] == "e"
                    || (characters[position] == "-" && text.last == "e") {
                text.append(characters[position]); position += 1
            }
            guard let d = Double(text), d.isFinite, abs(d) <= 1e6 else { throw Error.syntax("\"\(text)\" is not a number within ±1e6", at: position) }
            return .number(d)
        }
        // A name: letters, digits, `_`, `-` and `.` (embedding names often have hyphens; write
        // subtraction with spaces around the minus).
        var name = ""
        while position < characters.count, characters[position].isLetter || characters[position].isNumber || "_-.".contains(characters[position]) {
            name.append(characters[position]); position += 1
        }
        guard !name.isEmpty else { throw Error.syntax("unexpected \"\(c)\"", at: position) }
        guard let v = try lookup(name) else { throw Error.value("no embedding named \"\(name)\" (quote a word: '\(name)')") }
        return .vectors(try v.to(.f32))
    }

    private func combine(_ a: Value, _ b: Value, subtract: Bool) throws -> Value {
        switch (a, b) {
        case let (.number(x), .number(y)): return .number(subtract ? x - y : x + y)
        case let (.vectors(x), .vectors(y)):
            guard x.shape[1] == y.shape[1] else { throw Error.value("vectors of widths \(x.shape[1]) and \(y.shape[1]) cannot be added") }
            guard x.shape[0] == y.shape[0] || x.shape[0] == 1 || y.shape[0] == 1 else {
                throw Error.value("\(x.shape[0]) vectors and \(y.shape[0]) vectors cannot be added (equal counts, or one vector for all)")
            }
            return .vectors(try withNoGrad { subtract ? try x - y : try x + y })
        default: throw Error.value("a number and vectors cannot be added (multiply vectors by a number)")
        }
    }

    private func scale(_ a: Value, _ b: Value, divide: Bool) throws -> Value {
        switch (a, b) {
        case let (.number(x), .number(y)): return .number(divide ? x / y : x * y)
        case let (.vectors(v), .number(s)), let (.number(s), .vectors(v)):
            if divide, case .number = a { throw Error.value("a number cannot be divided by vectors") }
            guard !divide || s != 0 else { throw Error.value("division by zero") }
            return .vectors(try withNoGrad { divide ? try v / Tensor.full(v.shape, Float(s)) : try v * Float(s) })
        default: throw Error.value("vectors can only be multiplied by a number")
        }
    }
}
