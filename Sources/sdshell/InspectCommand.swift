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

    /// The checkpoint layout and detected architecture, or why there is none.
    static func architecture(_ file: ModelFile) -> [String] {
        do {
            let weights = try ModelWeights(file)
            return ["layout: \(weights.layout.rawValue)"] + (try ArchitectureDetector.detect(weights)).summary
        } catch {
            return ["architecture: not a Stable Diffusion checkpoint (\(error))"]
        }
    }

    func run() throws {
        do {
            let model = try ModelFile.open(file)
            var description = try FileDescription(model, hashes: noHash ? nil : HashCache())
            if EmbeddingFile.recognize(model) == nil {
                description.lines.insert(contentsOf: Self.architecture(model), at: 2)
            }
            for w in description.warnings { FileHandle.standardError.write(Data((w + "\n").utf8)) }
            print(description.lines.joined(separator: "\n"))
        } catch let e as FormatError {
            FileHandle.standardError.write(Data(("error: " + e.description + "\n").utf8))
            throw ExitCode.failure
        }
    }
}
