import Formats

/// What `tokens PROMPT` shows: the prompt as generation uses it, after A1111's `AND` split
/// (each part with its weight) and prompt editing / alternation (each text in force over a range
/// of steps, for `steps` sampling steps), each text's 77-token chunks with their token counts, the
/// weight of each piece, and which embeddings matched where. A plain prompt shows its chunks only.
public struct TokenReport {
    public let lines: [String]

    public init(prompt: String, tokenizer: CLIPTokenizer, embeddings: EmbeddingDatabase?, steps: Int = 20) {
        var lines: [String] = []
        let composition = PromptComposition.parse([ExtraNetworkTags.strip(prompt)])
        let parts = composition.indexes[0]
        for (n, part) in parts.enumerated() {
            let text = composition.flat[part.index]
            if parts.count > 1 { lines.append("AND part \(n + 1) of \(parts.count), weight \(NumberText.shortest(part.weight)): \(text)") }
            let schedule = PromptSchedule.schedule(text, steps: max(1, steps))
            var first = 1
            for entry in schedule {
                if schedule.count > 1 {
                    let range = entry.endStep == first ? "step \(first)" : "steps \(first)-\(entry.endStep)"
                    lines.append("\(range) of \(steps): \(entry.text)")
                }
                lines += Self.chunkLines(entry.text, tokenizer: tokenizer, embeddings: embeddings)
                first = entry.endStep + 1
            }
        }
        self.lines = lines
    }

    /// The chunks of one text.
    static func chunkLines(_ text: String, tokenizer: CLIPTokenizer, embeddings: EmbeddingDatabase?) -> [String] {
        var lines: [String] = []
        let pieces = PromptAttention.parse(text)
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
        return lines
    }

}
