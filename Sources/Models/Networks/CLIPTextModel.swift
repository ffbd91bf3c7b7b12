import Engine

/// The CLIP text transformer (transformers `CLIPTextModel`; SD 2.x's OpenCLIP text model loads
/// into the same structure with GELU): token + position embeddings, pre-norm layers with causal
/// self-attention and an MLP, and a final layer norm.
public struct CLIPTextModel {
    public let config: TextEncoderConfig
    let tokenEmbedding: Tensor, positionEmbedding: Tensor
    let layers: [Layer]
    let finalNorm: LayerNorm
    /// The weights used in place from the model file (see `MappedWeights`).
    public let mappedWeights: MappedWeights

    struct Layer {
        let norm1: LayerNorm, attention: MultiHeadAttention, norm2: LayerNorm, fc1: Linear, fc2: Linear
    }

    public init(_ weights: ModelWeights, config: TextEncoderConfig, precision: WeightPrecision = .full) throws {
        self.config = config
        let w = WeightLoader(weights, component: "text_encoder", precision: precision).scoped("text_model")
        mappedWeights = w.mapped
        tokenEmbedding = try w.table("embeddings.token_embedding.weight")
        positionEmbedding = try w("embeddings.position_embedding.weight")
        layers = try (0..<config.layers).map { i in
            let l = w.scoped("encoder.layers.\(i)")
            return Layer(norm1: try LayerNorm(l, "layer_norm1", eps: config.layerNormEps),
                         attention: MultiHeadAttention(q: try Linear(l, "self_attn.q_proj"), k: try Linear(l, "self_attn.k_proj"),
                                                       v: try Linear(l, "self_attn.v_proj"), out: try Linear(l, "self_attn.out_proj"),
                                                       heads: config.heads),
                         norm2: try LayerNorm(l, "layer_norm2", eps: config.layerNormEps),
                         fc1: try Linear(l, "mlp.fc1"), fc2: try Linear(l, "mlp.fc2"))
        }
        finalNorm = try LayerNorm(w, "final_layer_norm", eps: config.layerNormEps)
    }

    /// Hidden states for token ids [B][L] (L <= positions). `clipSkip` 1 returns the last layer's
    /// output, N the output N-1 layers from the end; either way through the final layer norm, as
    /// A1111 does. `tokenRows`, when given, replaces the token-embedding rows (textual inversion:
    /// [B, L, C] built by the caller); it is differentiable.
    public func callAsFunction(ids: [[Int]], clipSkip: Int = 1, tokenRows: Tensor? = nil) throws -> Tensor {
        let b = ids.count, l = ids.first?.count ?? 0
        let tokens = try tokenRows ?? Tensor.embedding(ids: ids.flatMap { $0 }, weight: tokenEmbedding).reshaped([b, l, -1])
        let positions = try positionEmbedding.sliced(dim: 0, 0, l)
        var h = try tokens + positions
        let stop = config.layers - max(clipSkip, 1) + 1
        for layer in layers.prefix(stop) {
            h = try layer.attention(layer.norm1(h), causal: true, adding: h)
            let m = try layer.fc1(layer.norm2(h))
            let act = config.activation == .quickGelu ? try m.quickGelu() : try m.gelu()
            h = try layer.fc2(act, adding: h)
        }
        return try finalNorm(h)
    }

    /// The token-embedding rows of `ids` ([L, C]), e.g. to initialise an embedding from text.
    public func tokenEmbeddings(_ ids: [Int]) throws -> Tensor { try Tensor.embedding(ids: ids, weight: tokenEmbedding) }
}
