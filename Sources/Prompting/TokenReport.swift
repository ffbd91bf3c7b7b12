/// What `tokens PROMPT` shows: the prompt's 77-token chunks with their token counts, the weight
/// of each piece, and which embeddings matched where.
public struct TokenReport {
    public let lines: [String]

    public init(prompt: String, tokenizer: CLIPTokenizer, embeddings: EmbeddingDatabase?) {
        var lines: [String] = []
        let pieces = PromptAttention.parse(prompt)
        let (chunks, count) = PromptChunker().chunks(pieces.map { ($0.text, Float($0.weight)) }, tokenizer: tokenizer, embeddings: embeddings)
        lines.append("\(count) tokens in \(chunks.count) chunk\(chunks.count == 1 ? "" : "s") of 75")
        for (i, chunk) in chunks.enumerated() {
            let body = Array(chunk.tokens.dropFirst().dropLast())
            let used = body.lastIndex { $0 != CLIPTokenizer.eos }.map { $0 + 1 } ?? 0
            lines.append("chunk \(i + 1): \(used) of 75")
            var position = 0
            var fixes = chunk.fixes.makeIterator()
            var nextFix = fixes.next()
            while position < used {
                if let fix = nextFix, fix.offset == position {
                    let e = fix.embedding
                    lines.append("  [\(position)] embedding \(e.name): \(e.vectorCount) vector\(e.vectorCount == 1 ? "" : "s"), weight \(chunk.multipliers[position + 1])")
                    position += e.vectorCount
                    nextFix = fixes.next()
                    continue
                }
                lines.append("  [\(position)] \(body[position]) \(tokenizer.tokenText(body[position])) weight \(chunk.multipliers[position + 1])")
                position += 1
            }
        }
        self.lines = lines
    }
}
