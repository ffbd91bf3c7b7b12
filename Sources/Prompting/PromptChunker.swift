/// One 77-token window of a prompt: BOS, up to 75 tokens (padded with EOS), EOS, and the
/// emphasis multiplier of each position.
public struct PromptChunk: Sendable, Equatable {
    public var tokens: [Int]
    public var multipliers: [Float]
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

    /// Chunks for parsed pieces (text and weight; weight -1 with text "BREAK" marks a break) and
    /// the prompt's token count as A1111 reports it.
    public func chunks(_ pieces: [(text: String, weight: Float)], tokenizer: CLIPTokenizer) -> (chunks: [PromptChunk], tokenCount: Int) {
        var chunks: [PromptChunk] = []
        var tokens: [Int] = [], multipliers: [Float] = []
        var tokenCount = 0, lastComma = -1
        func nextChunk(isLast: Bool = false) {
            tokenCount += isLast ? tokens.count : Self.chunkLength
            let pad = Self.chunkLength - tokens.count
            if pad > 0 { tokens += Array(repeating: CLIPTokenizer.eos, count: pad); multipliers += Array(repeating: 1, count: pad) }
            chunks.append(PromptChunk(tokens: [CLIPTokenizer.bos] + tokens + [CLIPTokenizer.eos], multipliers: [1] + multipliers + [1]))
            tokens = []; multipliers = []; lastComma = -1
        }
        for piece in pieces {
            if piece.text == "BREAK" && piece.weight == -1 { nextChunk(); continue }
            for token in tokenizer.encode(piece.text) {
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
                tokens.append(token)
                multipliers.append(piece.weight)
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { nextChunk(isLast: true) }
        return (chunks, tokenCount)
    }
}
