import Engine

/// The CLIP text transformer (transformers `CLIPTextModel`; the OpenCLIP text models of SD 2.x and
/// SDXL load into the same structure with GELU): token + position embeddings, pre-norm layers
/// with causal self-attention and an MLP, a final layer norm, and (SDXL's second encoder) the
/// projection of the pooled output.
public struct CLIPTextModel {
    public let config: TextEncoderConfig
    let tokenEmbedding: Tensor, positionEmbedding: Tensor
    let layers: [Layer]
    let finalNorm: LayerNorm
    let projection: Linear?
    /// The weights used in place from the model file (see `MappedWeights`).
    public let mappedWeights: MappedWeights
    /// Every tensor read for this network (see `LoadedWeights`), and the component it was read from.
    public let loadedWeights: LoadedWeights
    /// How its products multiply (from the precision it was loaded at).
    public let products: ProductPrecision
    public let component: String

    struct Layer {
        let norm1: LayerNorm, attention: MultiHeadAttention, norm2: LayerNorm, fc1: Linear, fc2: Linear
    }

    /// The encoder stored under `component` ("text_encoder", or SDXL's "text_encoder_2").
    public init(_ weights: ModelWeights, component: String = "text_encoder", config: TextEncoderConfig,
                precision: WeightPrecision = .full, reusing: LoadedWeights? = nil, overlay: [String: Tensor] = [:]) throws {
        self.config = config
        self.component = component
        let top = WeightLoader(weights, component: component, precision: precision, reusing: reusing, overlay: overlay)
        products = precision.products
        loadedWeights = top.loaded
        projection = config.projectionDim == nil ? nil : try Linear(top, "text_projection", bias: false)
        let w = top.scoped("text_model")
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
    /// A1111 does for SD 1.x. `tokenRows`, when given, replaces the token-embedding rows (textual
    /// inversion: [B, L, C] built by the caller); it is differentiable.
    public func callAsFunction(ids: [[Int]], clipSkip: Int = 1, tokenRows: Tensor? = nil) throws -> Tensor {
        try encode(ids: ids, skippedLayers: max(clipSkip, 1) - 1, finalNorm: true, tokenRows: tokenRows).hidden
    }

    /// The hidden states after all but `skippedLayers` layers (through the final norm when
    /// `finalNorm`), and, when `pooledAt` gives each row's end-token position, the pooled output:
    /// the last layer's output through the final norm at that position, projected when the
    /// encoder has a projection ([B, P]).
    public func encode(ids: [[Int]], skippedLayers: Int, finalNorm applyNorm: Bool, pooledAt: [Int]? = nil,
                       tokenRows: Tensor? = nil) throws -> (hidden: Tensor, pooled: Tensor?) {
        try withProductPrecision(products) {
            try encodeScoped(ids: ids, skippedLayers: skippedLayers, finalNorm: applyNorm, pooledAt: pooledAt, tokenRows: tokenRows)
        }
    }

    private func encodeScoped(ids: [[Int]], skippedLayers: Int, finalNorm applyNorm: Bool, pooledAt: [Int]?,
                              tokenRows: Tensor?) throws -> (hidden: Tensor, pooled: Tensor?) {
        let b = ids.count, l = ids.first?.count ?? 0
        let tokens = try tokenRows ?? Tensor.embedding(ids: ids.flatMap { $0 }, weight: tokenEmbedding).reshaped([b, l, -1])
        let positions = try positionEmbedding.sliced(dim: 0, 0, l)
        var h = try tokens + positions
        let stop = max(config.layers - skippedLayers, 0)
        var hidden: Tensor?
        for (i, layer) in layers.enumerated() {
            if i == stop { hidden = h }
            if i >= stop && pooledAt == nil { break }
            h = try layer.attention(layer.norm1(h), causal: true, adding: h)
            let m = try layer.fc1(layer.norm2(h))
            let act = config.activation == .quickGelu ? try m.quickGelu() : try m.gelu()
            h = try layer.fc2(act, adding: h)
        }
        let states = hidden ?? h
        let out = applyNorm ? try finalNorm(states) : states
        guard let pooledAt else { return (out, nil) }
        let last = try finalNorm(h)
        let rows = try pooledAt.enumerated().map { row, position in try last.sliced(dim: 0, row, row + 1).sliced(dim: 1, position, position + 1) }
        let pooled = try Tensor.concat(rows, dim: 0).reshaped([b, -1])
        return (out, try projection.map { try $0(pooled) } ?? pooled)
    }

    /// The whole token-embedding table [vocabulary, C] (as stored: 16-bit at half precision).
    public var tokenTable: Tensor { tokenEmbedding }

    /// The token-embedding rows of `ids` ([L, C]), e.g. to initialise an embedding from text.
    public func tokenEmbeddings(_ ids: [Int]) throws -> Tensor { try Tensor.embedding(ids: ids, weight: tokenEmbedding) }
}
