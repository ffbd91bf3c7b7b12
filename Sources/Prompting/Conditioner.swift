import Engine
import Models

/// Text to cross-attention context as A1111 builds it: chunks of 77 tokens encoded separately by
/// the text encoder (with `clipSkip`), A1111's "Original" emphasis (scale by the multipliers, then
/// restore the mean), and the chunks concatenated along the sequence.
public struct Conditioner {
    public let textEncoder: CLIPTextModel
    public let tokenizer: CLIPTokenizer
    public var chunker = PromptChunker()

    public init(textEncoder: CLIPTextModel, tokenizer: CLIPTokenizer) {
        self.textEncoder = textEncoder
        self.tokenizer = tokenizer
    }

    /// The chunks of a prompt, with A1111's attention syntax and BREAK applied.
    public func chunks(_ prompt: String) -> [PromptChunk] {
        chunker.chunks(PromptAttention.parse(prompt).map { ($0.text, Float($0.weight)) }, tokenizer: tokenizer).chunks
    }

    /// Context [1, 77 x chunks, width] for the chunks.
    public func encode(_ chunks: [PromptChunk], clipSkip: Int = 1) throws -> Tensor {
        let parts = try chunks.map { chunk -> Tensor in
            var z = try textEncoder(ids: [chunk.tokens], clipSkip: clipSkip)
            if chunk.multipliers.contains(where: { $0 != 1 }) {
                let originalMean = try z.mean(dims: [0, 1, 2]).toArray()[0]
                z = try z * Tensor(shape: [1, chunk.multipliers.count, 1], data: chunk.multipliers)
                let newMean = try z.mean(dims: [0, 1, 2]).toArray()[0]
                z = try z * (originalMean / newMean)
            }
            return z
        }
        return parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1)
    }
}
