import ArgumentParser
import Diffusion
import Foundation
import Models
import Script

/// `sdshell generate`: the script statement `generate` from the command line. Its parameters are
/// the rows of `GenerationParameters` (`--steps 20`, `--sampler "DPM++ 2M"`, `--size 512x768`,
/// `--vae-tiling`, ...), checked by the same rules and run by the same interpreter as
/// `model "M"` then `generate "PROMPT" ...` in a script, so defaults, images, the journal and
/// messages are the same as the shell's.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate images from a prompt (txt2img), as the shell's `generate` statement does.",
        usage: "sdshell generate --model MODEL PROMPT [--precision full|half] [--outdir DIR] [--PARAMETER VALUE ...]",
        discussion: "Parameters (name, default, meaning; the same as the shell's `help generate`):\n"
            + GenerationParameters.helpLines(option: { "--\(cliName($0)) \($1)" }).joined(separator: "\n")
            + "\n  --outdir \"outputs\"                 where images and the journal go")

    @ArgumentParser.Argument(parsing: .captureForPassthrough, help: "--model MODEL, the prompt, and parameters as --name value.")
    var arguments: [String] = []

    /// A row's name on the command line (`clip_skip` is `--clip-skip`).
    static func cliName(_ name: String) -> String { name.replacingOccurrences(of: "_", with: "-") }

    /// The parsed command line: the model, its precision, the prompt and the parameter values by name.
    struct Request {
        var model: String?
        var precision = WeightPrecision.full
        var prompt: String?
        var values: [(name: String, value: Value)] = []
    }

    /// Reads `arguments`: `--name value` or `--name=value` for each parameter (a boolean alone is
    /// true), checked by the parameter's own rule.
    static func parse(_ arguments: [String]) throws -> Request {
        var request = Request()
        let rows = GenerationParameters.all + Settings.sessionDefinitions.filter { $0.name == "outdir" }
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            i += 1
            if argument == "--help" || argument == "-h" { throw CleanExit.helpRequest(GenerateCommand.self) }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                guard request.prompt == nil else { throw ValidationError("one prompt only (a second: \"\(argument)\"; quote a prompt with spaces)") }
                request.prompt = argument
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
            switch name {
            case "model": request.model = try value()
            case "precision":
                let v = try value()
                guard let p = WeightPrecision(rawValue: v) else { throw ValidationError("--precision must be full or half, not \"\(v)\"") }
                request.precision = p
            default:
                guard let row = rows.first(where: { $0.name == name }) else {
                    throw ValidationError("unknown option --\(cliName(name))\(NameSuggestion.hint("--" + cliName(name), in: rows.map { "--" + cliName($0.name) }))")
                }
                if row.kind == .boolean, text == nil, i >= arguments.count || ParameterKind.boolean.parse(arguments[i]) == nil { text = "true" }
                let raw = try value()
                guard let parsed = row.kind.parse(raw) else { throw ValidationError("--\(cliName(name)): \"\(raw)\" is not \(Value.kindName(row.kind))") }
                do { request.values.append((name, try row.checked(parsed))) } catch { throw ValidationError("--\(cliName(name)): \(error.message)") }
            }
        }
        guard request.model != nil else { throw ValidationError("--model MODEL is required (a .safetensors, .ckpt or diffusers folder)") }
        guard request.prompt != nil else { throw ValidationError("a prompt is required") }
        return request
    }

    /// The statements the request runs.
    static func statements(_ r: Request) -> String {
        let outdir = r.values.first { $0.name == "outdir" }
        let options = r.values.filter { $0.name != "outdir" }.map { " \($0.name)=\($0.value.literal)" }.joined()
        return (outdir.map { "set outdir=\($0.value.literal)\n" } ?? "")
            + "model \(Value.quote(r.model ?? ""))" + (r.precision == .full ? "" : " precision=\(Value.quote(r.precision.rawValue))") + "\n"
            + "generate \(Value.quote(r.prompt ?? ""))" + options + "\n"
    }

    func run() throws {
        let request = try Self.parse(arguments)
        installInterruptHandler()
        signal(SIGXFSZ, SIG_IGN)
        let host = TerminalHost()
        let interpreter = Interpreter(host: host)
        do {
            for statement in try Parser.parse(Self.statements(request), file: "<sdshell generate>") {
                try interpreter.execute(statement)
                if interruptFlag != 0 { throw Interrupted(position: statement.position) }
            }
        } catch let e as Interrupted {
            host.warn("\(e)")
            throw ExitCode(terminationSignal != 0 ? 128 + terminationSignal : 130)
        } catch let e as ScriptError {
            host.warn("\(e)")
            throw ExitCode.failure
        }
    }
}

extension Value {
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
