import ArgumentParser
import Prompting

/// `sdshell tokens PROMPT`: chunks, token counts, weights and matched embeddings.
struct TokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Show how a prompt is tokenized: chunks, weights, embeddings.")

    @Argument(help: "The prompt.") var prompt: String
    @Option(help: "Embeddings folder.") var embeddings = "embeddings"
    @Option(help: "Text encoder width the embeddings must have (768 for SD 1.x).") var width = 768

    func run() throws {
        let tokenizer = try CLIPTokenizer.shipped()
        let db = EmbeddingDatabase(directories: [embeddings], width: width, tokenizer: tokenizer)
        for m in db.reload() { say(m) }
        say(TokenReport(prompt: prompt, tokenizer: tokenizer, embeddings: db).lines.joined(separator: "\n"))
    }
}
