import ArgumentParser
import Diffusion
import Script

/// `sdshell generate`: the shell's `model` then `generate` statements from the command line.
/// Its parameters are the rows of `GenerationParameters` (`--steps 20`, `--sampler "DPM++ 2M"`,
/// `--size 512x768`, `--vae-tiling`, ...), so defaults, images, the journal and messages are the
/// shell's.
struct GenerateCommand: ParsableCommand {
    static let rows = GenerationParameters.all + Settings.sessionDefinitions.filter { $0.name == "outdir" }

    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate images from a prompt (txt2img), as the shell's `generate` statement does.",
        usage: "sdshell generate --model MODEL PROMPT [--precision auto|full|half] [--PARAMETER VALUE ...]",
        discussion: "Parameters (name, default, meaning; the same as the shell's `help generate`):\n"
            + CommandLineStatement.helpLines(rows).joined(separator: "\n"))

    @ArgumentParser.Argument(parsing: .captureForPassthrough, help: "--model MODEL, the prompt, and parameters as --name value.")
    var arguments: [String] = []

    /// The statements the arguments stand for.
    static func statements(_ arguments: [String]) throws -> String {
        let given = try CommandLineStatement.parse(arguments, rows: rows, ownOptions: ["model", "precision"], command: GenerateCommand.self)
        guard let model = given.own["model"] else { throw ValidationError("--model MODEL is required (a .safetensors, .ckpt or diffusers folder)") }
        guard given.positional.count == 1 else {
            throw ValidationError(given.positional.isEmpty ? "a prompt is required" : "one prompt only (quote a prompt with spaces): \(given.positional)")
        }
        return (given.options(["outdir"]).isEmpty ? "" : "set\(given.options(["outdir"]))\n")
            + "model \(Value.quote(model))" + (given.own["precision"].map { " precision=\(Value.quote($0))" } ?? "") + "\n"
            + "generate \(Value.quote(given.positional[0]))" + given.options(Set(GenerationParameters.names)) + "\n"
    }

    func run() throws {
        try CommandLineStatement.run(try Self.statements(arguments), file: "<sdshell generate>")
    }
}
