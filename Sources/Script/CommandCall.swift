/// A command's arguments, evaluated and checked against its spec: positional values in order,
/// options by name (each with where it was written).
struct CommandCall {
    let spec: CommandSpec
    let position: SourcePosition
    var positional: [Value] = []
    var positionalPositions: [SourcePosition] = []
    /// Options in the order written.
    var options: [(name: String, value: (Value, SourcePosition))] = []

    /// Commands whose positional words stand for themselves when no variable has that name.
    static let wordCommands: Set<String> = ["embeddings", "embedding", "help", "show", "backend", "model"]

    init(spec: CommandSpec, arguments: [Argument], position: SourcePosition, interpreter: Interpreter) throws {
        self.spec = spec
        self.position = position
        for argument in arguments {
            if let name = argument.name {
                guard spec.allOptions.contains(name) else {
                    throw ScriptError(argument.position, "`\(spec.name)` has no option `\(name)`\(NameSuggestion.hint(name, in: spec.allOptions))")
                }
                guard !options.contains(where: { $0.name == name }) else {
                    throw ScriptError(argument.position, "option `\(name)` is given twice")
                }
                options.append((name, (try interpreter.evaluate(argument.value), argument.position)))
            } else {
                // A bare word that is not a variable stands for itself: `embeddings reload`, `help grid`.
                if Self.wordCommands.contains(spec.name), case let .variable(word, _) = argument.value, interpreter.variables[word] == nil {
                    positional.append(.string(word))
                } else {
                    positional.append(try interpreter.evaluate(argument.value))
                }
                positionalPositions.append(argument.position)
            }
        }
    }

    func option(_ name: String) -> Value? { options.first { $0.name == name }?.value.0 }
    func optionPosition(_ name: String) -> SourcePosition { options.first { $0.name == name }?.value.1 ?? position }

    /// The positional string at `index`, or an error saying what was expected.
    func string(at index: Int, _ what: String) throws -> String {
        guard index < positional.count else { throw ScriptError(position, "`\(spec.name)` needs \(what) (usage: \(spec.usage))") }
        guard case let .string(s) = positional[index] else {
            throw ScriptError(positionalPositions[index], "expected \(what) as a string, found \(positional[index].kindName)")
        }
        return s
    }

    /// Refuses positional arguments beyond `count`.
    func atMost(_ count: Int) throws {
        if positional.count > count {
            throw ScriptError(positionalPositions[count], "`\(spec.name)` takes \(count == 0 ? "no" : "at most \(count)") positional argument\(count == 1 ? "" : "s") (usage: \(spec.usage))")
        }
    }

    func optionString(_ name: String) throws -> String? {
        guard let v = option(name) else { return nil }
        guard case let .string(s) = v else { throw ScriptError(optionPosition(name), "\(name) must be a string, not \(v.kindName)") }
        return s
    }

    func optionInteger(_ name: String) throws -> Int? {
        guard let v = option(name) else { return nil }
        guard case let .integer(i) = v else { throw ScriptError(optionPosition(name), "\(name) must be an integer, not \(v.kindName)") }
        return Int(i)
    }

    func optionBool(_ name: String) throws -> Bool? {
        guard let v = option(name) else { return nil }
        guard case let .boolean(b) = v else { throw ScriptError(optionPosition(name), "\(name) must be true or false, not \(v.kindName)") }
        return b
    }

    /// The statement as written back: positional literals, then options.
    func source(_ extra: [(String, Value)] = []) -> String {
        // `embedding new`: the sub-command word is written bare.
        let words = positional.enumerated().map { i, v in spec.name == "embedding" && i == 0 ? v.description : v.literal }
        return ([spec.name] + words + options.map { "\($0.name)=\($0.value.0.literal)" } + extra.map { "\($0.0)=\($0.1.literal)" })
            .joined(separator: " ")
    }
}
