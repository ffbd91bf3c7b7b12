import ArgumentParser
import Prompting

/// `sdshell embeddings`: the embeddings a folder holds, and the files skipped with the reason.
struct EmbeddingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embeddings", abstract: "List loaded and skipped embeddings.")

    @Option(help: "Embeddings folder.") var dir = "embeddings"
    @Option(help: "Text encoder width the embeddings must have (768 for SD 1.x, 1024 for SD 2.x).") var width = 768

    func run() throws {
        let db = EmbeddingDatabase(directories: [dir], width: width, tokenizer: try CLIPTokenizer.shipped())
        db.reload()
        say(EmbeddingListing(db).lines.joined(separator: "\n"))
    }
}
