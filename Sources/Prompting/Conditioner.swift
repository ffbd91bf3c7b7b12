import Engine
import Models

/// Text to cross-attention context as A1111 builds it: chunks of 77 tokens encoded separately by
/// the text encoder (with `clipSkip`), A1111's "Original" emphasis (scale by the multipliers, then
/// restore the mean), and the chunks concatenated along the sequence.
public struct Conditioner {
    public let textEncoder: CLIPTextModel
    public let tokenizer: CLIPTokenizer
    public var chunker = PromptChunker()
    /// Embeddings matched in prompts (none when nil).
    public var embeddings: EmbeddingDatabase?

    public init(textEncoder: CLIPTextModel, tokenizer: CLIPTokenizer) {
        self.textEncoder = textEncoder
        self.tokenizer = tokenizer
    }

    /// The chunks of a prompt, with A1111's attention syntax and BREAK applied.
    public func chunks(_ prompt: String) -> [PromptChunk] {
        chunker.chunks(PromptAttention.parse(prompt).map { ($0.text, Float($0.weight)) }, tokenizer: tokenizer,
                       embeddings: embeddings).chunks
    }

    /// The chunk's token-embedding rows with embedding vectors in place of their placeholders
    /// (A1111's `EmbeddingsWithFixes`), or nil when the chunk holds no embedding.
    func tokenRows(_ chunk: PromptChunk) throws -> Tensor? {
        guard !chunk.fixes.isEmpty else { return nil }
        let rows = try textEncoder.tokenEmbeddings(chunk.tokens)            // [77, C]
        var parts: [Tensor] = []
        var next = 0
        for fix in chunk.fixes {
            let start = fix.offset + 1                                       // after BOS
            if start > next { parts.append(try rows.sliced(dim: 0, next, start)) }
            parts.append(fix.embedding.vectors)
            next = start + fix.embedding.vectorCount
        }
        if next < rows.shape[0] { parts.append(try rows.sliced(dim: 0, next, rows.shape[0])) }
        return try Tensor.concat(parts, dim: 0).reshaped([1, rows.shape[0], -1])
    }

    /// Context [1, 77 x chunks, width] for the chunks.
    public func encode(_ chunks: [PromptChunk], clipSkip: Int = 1) throws -> Tensor {
        let parts = try chunks.map { chunk -> Tensor in
            var z = try textEncoder(ids: [chunk.tokens], clipSkip: clipSkip, tokenRows: tokenRows(chunk))
            if chunk.multipliers.contains(where: { $0 != 1 }) {
                // Means as tensors, so that gradients (training) flow through the restore too.
                let originalMean = try z.mean(dims: [0, 1, 2], keepDim: true)
                z = try z * Tensor(shape: [1, chunk.multipliers.count, 1], data: chunk.multipliers)
                let newMean = try z.mean(dims: [0, 1, 2], keepDim: true)
                z = try z * (originalMean / newMean)
            }
            return z
        }
        return parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1)
    }
}
