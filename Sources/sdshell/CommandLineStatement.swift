import ArgumentParser
import Diffusion
import Foundation
import Script

/// `sdshell generate` and `sdshell train` as statements: their arguments, `--name value` (or
/// `--name=value`; a boolean alone is true) for the rows of a parameter table plus a few options
/// of the command's own, become the statements a script would write, run by the same
/// interpreter, so that defaults, checks, images, journals and messages are the script's.
struct CommandLineStatement {
    /// The positional arguments (the prompt, the embedding's name).
    var positional: [String] = []
    /// The command's own options by name (`model`, `precision`, ...), as given.
    var own: [String: String] = [:]
    /// The table rows given, with their values, in the order given.
    var values: [(name: String, value: Value)] = []

    /// A row's name on the command line (`clip_skip` is `--clip-skip`).
    static func cliName(_ name: String) -> String { name.replacingOccurrences(of: "_", with: "-") }

    /// The help lines of `rows` (`--steps 20   sampling steps`).
    static func helpLines(_ rows: [ParameterDefinition], noDefault: String = "native") -> [String] {
        GenerationParameters.helpLines(rows, option: { "--\(cliName($0)) \($1)" }, nativeSize: noDefault)
    }

    /// Reads `arguments`: `--help` shows `command`'s help; `ownOptions` are kept as text; every
    /// other option must be one of `rows`, read by its kind and checked by its rule.
    static func parse(_ arguments: [String], rows: [ParameterDefinition], ownOptions: Set<String>,
                      command: any ParsableCommand.Type) throws -> CommandLineStatement {
        var parsed = CommandLineStatement()
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            i += 1
            if argument == "--help" || argument == "-h" { throw CleanExit.helpRequest(command) }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                parsed.positional.append(argument)
                continue
            }
            let body = argument.dropFirst(2)
            let name = String(body.prefix { $0 != "=" }).replacingOccurrences(of: "-", with: "_")
            var text: String? = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
            func value() throws -> String {
                if let text { return text }
                guard i < arguments.count else { throw ValidationError("--\(cliName(name)) needs a value") }
                i += 1
                return arguments[i - 1]
            }
            if ownOptions.contains(name) {
                parsed.own[name] = try value()
                continue
            }
            guard let row = rows.first(where: { $0.name == name }) else {
                let known = (rows.map(\.name) + ownOptions).map { "--" + cliName($0) }
                throw ValidationError("unknown option --\(cliName(name))\(NameSuggestion.hint("--" + cliName(name), in: known))")
            }
            if row.kind == .boolean, text == nil, i >= arguments.count || ParameterKind.boolean.parse(arguments[i]) == nil { text = "true" }
            let raw = try value()
            guard let parsedValue = row.kind.parse(raw) else {
                throw ValidationError("--\(cliName(name)): \"\(raw)\" is not \(kindName(row.kind))")
            }
            do { parsed.values.append((name, try row.checked(parsedValue))) } catch { throw ValidationError("--\(cliName(name)): \(error.message)") }
        }
        return parsed
    }

    /// The given options of `names` as statement options (` steps=20 sampler="Euler a"`).
    func options(_ names: Set<String>) -> String {
        values.filter { names.contains($0.name) }.map { " \($0.name)=\($0.value.literal)" }.joined()
    }

    /// Runs `text` in a fresh interpreter on the terminal: an error prints `place: message` and
    /// exits 1; Ctrl-C (or SIGTERM, SIGHUP) ends the running job cleanly and exits 130 (128 + signal).
    static func run(_ text: String, file: String) throws {
        installInterruptHandler()
        // Over a file-size limit, writes fail with EFBIG (reported, previous files kept) instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        let host = TerminalHost()
        try run(text, file: file, interpreter: Interpreter(host: host), host: host)
    }

    /// Ends the process after an interrupted job: every image and journal entry is already on
    /// disk (written by rename), so the output streams are flushed and the process exits at once,
    /// without the C and C++ exit handlers. Under load those ran while the math libraries'
    /// worker threads were still winding down, and twice the process died in them (SIGSEGV,
    /// SIGABRT) instead of exiting with 128 + the signal.
    static func exitAfterInterrupt(_ code: Int32) -> Never {
        fflush(nil)
        _exit(code)
    }

    /// Runs `text`'s statements in `interpreter` (see `run(_:file:)`).
    static func run(_ text: String, file: String, interpreter: Interpreter, host: TerminalHost) throws {
        do {
            for statement in try Parser.parse(text, file: file) {
                try interpreter.execute(statement)
                if interruptFlag != 0 { throw Interrupted(position: statement.position) }
            }
        } catch let e as Interrupted {
            host.warn("\(e)")
            exitAfterInterrupt(terminationSignal != 0 ? 128 + terminationSignal : 130)
        } catch let e as ScriptError {
            host.warn("\(e)")
            throw ExitCode.failure
        }
    }

    /// A kind as messages name it.
    static func kindName(_ kind: ParameterKind) -> String {
        switch kind {
        case .integer: return "an integer"
        case .real: return "a number"
        case .string: return "a string"
        case .size: return "a size like 512x768"
        case .boolean: return "true or false"
        }
    }
}
