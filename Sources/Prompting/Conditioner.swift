import Engine
import Models

/// A prompt's conditioning: the cross-attention context [1, 77 x chunks, width] and, for SDXL,
/// the pooled text embedding [1, P] of its first chunk.
public struct TextConditioning {
    public var context: Tensor
    public var pooled: Tensor?

    public init(context: Tensor, pooled: Tensor? = nil) { self.context = context; self.pooled = pooled }
}

/// Text to cross-attention context as A1111 builds it: chunks of 77 tokens encoded separately by
/// each of the model's text encoders, read as its family reads them (`TextEncoderReading`: layer,
/// final norm, padding, clip skip), A1111's "Original" emphasis on each encoder's output (scale
/// by the multipliers, then restore the mean), the encoders' outputs side by side (SDXL) and the
/// chunks concatenated along the sequence.
public struct Conditioner {
    /// The model's text encoders, in context order, with how each is read.
    public let encoders: [(encoder: CLIPTextModel, reading: TextEncoderReading)]
    /// The first text encoder (the one embeddings are trained for).
    public var textEncoder: CLIPTextModel { encoders[0].encoder }
    public let tokenizer: CLIPTokenizer
    public var chunker = PromptChunker()
    /// Embeddings matched in prompts (none when nil).
    public var embeddings: EmbeddingDatabase?

    public init(encoders: [(encoder: CLIPTextModel, reading: TextEncoderReading)], tokenizer: CLIPTokenizer) {
        precondition(!encoders.isEmpty, "a conditioner needs a text encoder")
        self.encoders = encoders
        self.tokenizer = tokenizer
    }

    /// An SD 1.x conditioner for one CLIP text encoder.
    public init(textEncoder: CLIPTextModel, tokenizer: CLIPTokenizer) {
        self.init(encoders: [(textEncoder, ModelFamily.sd1.textEncoderReadings[0])], tokenizer: tokenizer)
    }

    /// The model's conditioner.
    public init(model: StableDiffusionModel, tokenizer: CLIPTokenizer) {
        self.init(encoders: model.textEncoders, tokenizer: tokenizer)
    }

    /// The chunks of a prompt, with A1111's attention syntax and BREAK applied.
    public func chunks(_ prompt: String) -> [PromptChunk] {
        chunker.chunks(PromptAttention.parse(prompt).map { ($0.text, Float($0.weight)) }, tokenizer: tokenizer,
                       embeddings: embeddings).chunks
    }

    /// A chunk's ids for an encoder: OpenCLIP's are 0 after the first end token (A1111's id_pad).
    static func ids(_ chunk: PromptChunk, _ reading: TextEncoderReading) -> [Int] {
        guard reading.padsWithZero, let end = chunk.tokens.firstIndex(of: CLIPTokenizer.eos) else { return chunk.tokens }
        return chunk.tokens.enumerated().map { $0.offset > end ? 0 : $0.element }
    }

    /// The chunk's token-embedding rows with embedding vectors in place of their placeholders
    /// (A1111's `EmbeddingsWithFixes`), or nil when the chunk holds no embedding.
    /// Each encoder gets its own vectors (SDXL: `clip_l` for CLIP-L, `clip_g` for bigG, as A1111's
    /// `textual_inversion_key`).
    func tokenRows(_ chunk: PromptChunk, ids: [Int], encoder: CLIPTextModel, index: Int) throws -> Tensor? {
        guard !chunk.fixes.isEmpty else { return nil }
        let rows = try encoder.tokenEmbeddings(ids)                          // [77, C]
        var parts: [Tensor] = []
        var next = 0
        for fix in chunk.fixes {
            guard index < fix.embedding.widths.count, fix.embedding.widths[index] == rows.shape[1] else {
                throw EngineError.invalidArgument(op: "conditioning", message: "the embedding \(fix.embedding.name) has no vectors \(rows.shape[1]) wide for text encoder \(index + 1)")
            }
            let start = fix.offset + 1                                       // after BOS
            if start > next { parts.append(try rows.sliced(dim: 0, next, start)) }
            parts.append(fix.embedding.vectors(forEncoder: index))
            next = start + fix.embedding.vectorCount
        }
        if next < rows.shape[0] { parts.append(try rows.sliced(dim: 0, next, rows.shape[0])) }
        return try Tensor.concat(parts, dim: 0).reshaped([1, rows.shape[0], -1])
    }

    /// The conditioning for the chunks: context [1, 77 x chunks, width] and the first chunk's
    /// pooled output where an encoder gives one (A1111 keeps the first chunk's).
    public func conditioning(_ chunks: [PromptChunk], clipSkip: Int = 1) throws -> TextConditioning {
        var pooled: Tensor?
        let parts = try chunks.enumerated().map { chunkIndex, chunk -> Tensor in
            let perEncoder = try encoders.enumerated().map { index, pair -> Tensor in
                let (encoder, reading) = pair
                let ids = Self.ids(chunk, reading)
                // The pooled output is read at the end token (A1111: argmax of the ids).
                let pooledAt = reading.pooled && chunkIndex == 0 ? [ids.firstIndex(of: CLIPTokenizer.eos) ?? ids.count - 1] : nil
                let out = try encoder.encode(ids: [ids], skippedLayers: reading.skipped(clipSkip: clipSkip), finalNorm: reading.finalNorm,
                                             pooledAt: pooledAt, tokenRows: tokenRows(chunk, ids: ids, encoder: encoder, index: index))
                if let p = out.pooled { pooled = p }
                return try Self.emphasis(out.hidden, chunk.multipliers)
            }
            return perEncoder.count == 1 ? perEncoder[0] : try Tensor.concat(perEncoder, dim: 2)
        }
        return TextConditioning(context: parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1), pooled: pooled)
    }

    /// The all-zero conditioning of one chunk (A1111's `force_zero_embeddings` for SDXL's empty
    /// negative prompt): zero context and, where an encoder gives one, zero pooled output; nothing
    /// is encoded.
    public func zeros() throws -> TextConditioning {
        let width = encoders.map(\.encoder.config.hiddenSize).reduce(0, +)
        let pooled = try encoders.first { $0.reading.pooled }.map { e in
            try Tensor.zeros([1, e.encoder.config.projectionDim ?? e.encoder.config.hiddenSize])
        }
        return TextConditioning(context: try Tensor.zeros([1, PromptChunker.chunkLength + 2, width]), pooled: pooled)
    }

    /// Context [1, 77 x chunks, width] for the chunks.
    public func encode(_ chunks: [PromptChunk], clipSkip: Int = 1) throws -> Tensor {
        try conditioning(chunks, clipSkip: clipSkip).context
    }

    /// A1111's "Original" emphasis: hidden states times the multipliers, then rescaled to the
    /// original mean (means as tensors, so that gradients reach through the restore too).
    static func emphasis(_ z: Tensor, _ multipliers: [Float]) throws -> Tensor {
        guard multipliers.contains(where: { $0 != 1 }) else { return z }
        let originalMean = try z.mean(dims: [0, 1, 2], keepDim: true)
        let scaled = try z * Tensor(shape: [1, multipliers.count, 1], data: multipliers)
        let newMean = try scaled.mean(dims: [0, 1, 2], keepDim: true)
        return try scaled * (originalMean / newMean)
    }
}
