import ArgumentParser
import Foundation
import Formats
import Models

/// `sdshell inspect FILE`: what a model or embedding file is.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a file's format, kind, hashes, metadata and tensors (name, dtype, shape).")

    @Argument(help: "A .safetensors, .ckpt, .pt or .bin file, or a diffusers folder.")
    var file: String

    @Flag(help: "Skip hashing (large checkpoints take a while the first time).")
    var noHash = false

    func run() throws {
        do {
            let model = try ModelFile.open(file)
            var description = try FileDescription(model, hashes: noHash ? nil : HashCache())
            if EmbeddingFile.recognize(model) == nil {
                description.lines.insert(contentsOf: ArchitectureDetector.describe(model), at: 2)
            }
            for w in description.warnings { complain(w) }
            say(description.lines.joined(separator: "\n"))
        } catch let e as FormatError {
            complain("error: " + e.description)
            throw ExitCode.failure
        }
    }
}
