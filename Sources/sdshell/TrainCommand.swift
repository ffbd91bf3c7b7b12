import ArgumentParser
import Diffusion
import Foundation
import Script
import Training

/// `sdshell train`: the shell's `model`, `embedding new` (when the embedding does not exist yet)
/// and `train` statements from the command line, so that a training here and in a script is the
/// same job: the same defaults, checks, saves, resume, journal, and Ctrl-C (stop, save, exit 130).
/// Run it again on the same embedding to resume where the last save left it.
struct TrainCommand: ParsableCommand {
    static let rows = TrainingParameters.all + GenerationParameters.all.filter { $0.name == "embeddings_dir" }
        + Settings.sessionDefinitions.filter { $0.name == "outdir" }

    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a textual-inversion embedding on a folder of pictures (resumes if saved state exists).",
        usage: "sdshell train --model MODEL NAME --data DIR [--init-text TEXT] [--vectors N] [--OPTION VALUE ...]",
        discussion: "A new embedding NAME is made from --init-text (default \"*\") with --vectors vectors (default 1).\n"
            + "Options (name, default, meaning; the same as the shell's `train`):\n"
            + CommandLineStatement.helpLines(rows, noDefault: "-").joined(separator: "\n"))

    @ArgumentParser.Argument(parsing: .captureForPassthrough, help: "--model MODEL, the embedding's name, and options as --name value.")
    var arguments: [String] = []

    /// The statements the arguments stand for.
    static func statements(_ arguments: [String]) throws -> String {
        let given = try CommandLineStatement.parse(arguments, rows: rows, ownOptions: ["model", "init_text", "vectors"], command: TrainCommand.self)
        guard let model = given.own["model"] else { throw ValidationError("--model MODEL is required (a .safetensors, .ckpt or diffusers folder)") }
        guard given.positional.count == 1 else { throw ValidationError("one embedding name is required (got \(given.positional.count))") }
        let name = given.positional[0]
        let vectors = given.own["vectors"] ?? "1"
        guard Int(vectors) != nil else { throw ValidationError("--vectors must be an integer, not \"\(vectors)\"") }
        let folder = given.values.first { $0.name == "embeddings_dir" }?.value.description ?? "embeddings"
        let exists = EmbeddingCreation.fileExtensions.contains {
            FileManager.default.fileExists(atPath: folder + "/" + EmbeddingCreation.fileName(name, extension: $0))
        }
        let session = given.options(["embeddings_dir", "outdir"])
        return (session.isEmpty ? "" : "set\(session)\n")
            + "model \(Value.quote(model))\n"
            + (exists ? "" : "embedding new \(Value.quote(name)) init=\(Value.quote(given.own["init_text"] ?? "*")) vectors=\(vectors)\n")
            + "train \(Value.quote(name))" + given.options(Set(TrainingParameters.names)) + "\n"
    }

    func run() throws {
        try CommandLineStatement.run(try Self.statements(arguments), file: "<sdshell train>")
    }
}
