import Foundation

/// One 77-token window of a prompt: BOS, up to 75 tokens (padded with EOS), EOS, and the
/// emphasis multiplier of each position. Embeddings occupy placeholder tokens (id 0) and are
/// listed in `fixes` with their offset among the tokens after BOS.
public struct PromptChunk: @unchecked Sendable, Equatable {
    public var tokens: [Int]
    public var multipliers: [Float]
    public var fixes: [(offset: Int, embedding: Embedding)] = []

    public static func == (a: PromptChunk, b: PromptChunk) -> Bool {
        a.tokens == b.tokens && a.multipliers == b.multipliers && a.fixes.map(\.offset) == b.fixes.map(\.offset)
            && a.fixes.map(\.embedding.name) == b.fixes.map(\.embedding.name)
    }
}

/// A1111's `tokenize_line`: the prompt's (text, weight) pieces are tokenized and packed into
/// chunks of 75 tokens; when a chunk fills up and a comma lies within the last `commaBacktrack`
/// tokens, the tokens after the comma move to the next chunk; "BREAK" starts a new chunk.
public struct PromptChunker: Sendable {
    public static let chunkLength = 75
    /// The id of ",</w>".
    public static let comma = 267
    public var commaBacktrack = 20

    public init(commaBacktrack: Int = 20) { self.commaBacktrack = commaBacktrack }

    private static let reference = try! NSRegularExpression(pattern: #"<(embedding:)?([^<>:\s][^<>:]*)>"#)

    /// Splits text at the explicit references `<embedding:name>` and `<name>` (sdshell's extension:
    /// they always mean the embedding, so a name cannot trigger by accident). References to names
    /// that are not loaded stay text (A1111 extra-network tags such as `<lora:x:1>` included).
    static func explicitReferences(_ text: String, embeddings: EmbeddingDatabase?) -> [(text: String, embedding: Embedding?)] {
        guard text.contains("<"), let db = embeddings else { return [(text, nil)] }
        let ns = text as NSString
        var out: [(text: String, embedding: Embedding?)] = [], last = 0
        for m in reference.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let name = ns.substring(with: m.range(at: 2))
            guard let e = db.embeddings[name] ?? db.embeddings.first(where: { $0.key.lowercased() == name.lowercased() })?.value else { continue }
            if m.range.location > last { out.append((ns.substring(with: NSRange(location: last, length: m.range.location - last)), nil)) }
            out.append(("", e))
            last = m.range.location + m.range.length
        }
        if last < ns.length { out.append((ns.substring(from: last), nil)) }
        return out.isEmpty ? [("", nil)] : out
    }

    /// Chunks for parsed pieces (text and weight; weight -1 with text "BREAK" marks a break) and
    /// the prompt's token count as A1111 reports it.
    public func chunks(_ pieces: [(text: String, weight: Float)], tokenizer: CLIPTokenizer,
                       embeddings: EmbeddingDatabase? = nil) -> (chunks: [PromptChunk], tokenCount: Int) {
        var chunks: [PromptChunk] = []
        var tokens: [Int] = [], multipliers: [Float] = []
        var fixes: [(offset: Int, embedding: Embedding)] = []
        var tokenCount = 0, lastComma = -1
        func nextChunk(isLast: Bool = false) {
            tokenCount += isLast ? tokens.count : Self.chunkLength
            let pad = Self.chunkLength - tokens.count
            if pad > 0 { tokens += Array(repeating: CLIPTokenizer.eos, count: pad); multipliers += Array(repeating: 1, count: pad) }
            chunks.append(PromptChunk(tokens: [CLIPTokenizer.bos] + tokens + [CLIPTokenizer.eos], multipliers: [1] + multipliers + [1],
                                      fixes: fixes))
            tokens = []; multipliers = []; fixes = []; lastComma = -1
        }
        func place(_ embedding: Embedding, weight: Float) {
            // An embedding is never split across chunks: it moves whole to the next one.
            if tokens.count + embedding.vectorCount > Self.chunkLength { nextChunk() }
            fixes.append((tokens.count, embedding))
            tokens += Array(repeating: 0, count: embedding.vectorCount)
            multipliers += Array(repeating: weight, count: embedding.vectorCount)
        }
        for piece in pieces {
            if piece.text == "BREAK" && piece.weight == -1 { nextChunk(); continue }
            for segment in Self.explicitReferences(piece.text, embeddings: embeddings) {
                if let explicit = segment.embedding {
                    if tokens.count == Self.chunkLength { nextChunk() }
                    place(explicit, weight: piece.weight)
                    continue
                }
            let ids = tokenizer.encode(segment.text)
            var position = 0
            while position < ids.count {
                let token = ids[position]
                if token == Self.comma {
                    lastComma = tokens.count
                } else if commaBacktrack != 0, tokens.count == Self.chunkLength, lastComma != -1, tokens.count - lastComma <= commaBacktrack {
                    let cut = lastComma + 1
                    let movedTokens = Array(tokens[cut...]), movedMultipliers = Array(multipliers[cut...])
                    tokens.removeSubrange(cut...); multipliers.removeSubrange(cut...)
                    nextChunk()
                    tokens = movedTokens; multipliers = movedMultipliers
                }
                if tokens.count == Self.chunkLength { nextChunk() }
                if let (embedding, length) = embeddings?.match(ids, at: position) {
                    place(embedding, weight: piece.weight)
                    position += length
                    continue
                }
                tokens.append(token)
                multipliers.append(piece.weight)
                position += 1
            }
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { nextChunk(isLast: true) }
        return (chunks, tokenCount)
    }
}
