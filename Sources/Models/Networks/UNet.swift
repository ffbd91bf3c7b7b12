import Engine

/// ResnetBlock2D (diffusers): GroupNorm, SiLU, conv, plus the projected time embedding, GroupNorm,
/// SiLU, conv, and a residual (1x1 shortcut when channels change). The VAE's blocks have no time
/// embedding.
struct ResnetBlock {
    let norm1: GroupNorm, conv1: Conv2d, timeProjection: Linear?, norm2: GroupNorm, conv2: Conv2d, shortcut: Conv2d?

    init(_ w: WeightLoader, groups: Int, eps: Float) throws {
        norm1 = try GroupNorm(w, "norm1", groups: groups, eps: eps)
        conv1 = try Conv2d(w, "conv1")
        timeProjection = w.has("time_emb_proj.weight") ? try Linear(w, "time_emb_proj") : nil
        norm2 = try GroupNorm(w, "norm2", groups: groups, eps: eps)
        conv2 = try Conv2d(w, "conv2")
        shortcut = w.has("conv_shortcut.weight") ? try Conv2d(w, "conv_shortcut") : nil
    }

    func callAsFunction(_ x: Tensor, _ temb: Tensor?) throws -> Tensor {
        // Ctrl-C reaches a pass at any size within one block's work.
        try Cancellation.check()
        var h = try conv1(norm1.thenSiLU(x))
        if let timeProjection, let temb {
            let t = try timeProjection(temb.silu())                                  // [B, C]
            h = try h + t.reshaped([t.shape[0], t.shape[1], 1, 1])
        }
        return try conv2(norm2.thenSiLU(h), adding: shortcut.map { try $0(x) } ?? x)
    }
}

/// Transformer2DModel with BasicTransformerBlocks: GroupNorm (eps 1e-6), proj_in (1x1 conv or
/// linear), self-attention, cross-attention on the context, GEGLU feed-forward, proj_out, residual.
/// A 1x1 convolution projection is computed as the linear map it is, on the tokens: the GEMM reads
/// the normalised image through a transposed view, so no layout change is copied.
struct SpatialTransformer {
    struct Block {
        let norm1: LayerNorm, attn1: MultiHeadAttention, norm2: LayerNorm, attn2: MultiHeadAttention
        let norm3: LayerNorm, ffIn: Linear, ffOut: Linear
    }
    let norm: GroupNorm
    let projIn: Linear, projOut: Linear
    let blocks: [Block]

    init(_ w: WeightLoader, config: UNetConfig, heads: Int, depth: Int) throws {
        norm = try GroupNorm(w, "norm", groups: config.normGroups, eps: 1e-6)
        projIn = try Linear(w, "proj_in"); projOut = try Linear(w, "proj_out") // either layout (see Linear.init)
        blocks = try (0..<depth).map { d in
            let b = w.scoped("transformer_blocks.\(d)")
            func attention(_ name: String) throws -> MultiHeadAttention {
                MultiHeadAttention(q: try Linear(b, name + ".to_q", bias: false), k: try Linear(b, name + ".to_k", bias: false),
                                   v: try Linear(b, name + ".to_v", bias: false), out: try Linear(b, name + ".to_out.0"), heads: heads)
            }
            return Block(norm1: try LayerNorm(b, "norm1"), attn1: try attention("attn1"), norm2: try LayerNorm(b, "norm2"),
                         attn2: try attention("attn2"), norm3: try LayerNorm(b, "norm3"), ffIn: try Linear(b, "ff.net.0.proj"),
                         ffOut: try Linear(b, "ff.net.2"))
        }
    }

    func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        let (b, c, hgt, wid) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = try norm(x).reshaped([b, c, hgt * wid]).transposed(1, 2)            // [B, HW, C] view
        var h = try projIn(tokens)
        for blk in blocks {
            h = try blk.attn1(blk.norm1(h), adding: h)
            h = try blk.attn2(blk.norm2(h), context: context, adding: h)
            h = try blk.ffOut(blk.ffIn(blk.norm3(h)).geglu(), adding: h)
        }
        // Back to channels first inside the residual add (one pass over the data).
        return try (projOut(h).transposed(1, 2) + x.reshaped([b, c, hgt * wid])).reshaped([b, c, hgt, wid])
    }
}

/// diffusers' UNet2DConditionModel for SD 1.x, SD 2.x and SDXL, built from a `UNetConfig`.
public struct UNet {
    public let config: UNetConfig
    let convIn: Conv2d, time1: Linear, time2: Linear
    /// SDXL's added-conditioning MLP (sgm's `label_emb`), applied to the vector `y`.
    let addition: (Linear, Linear)?
    let down: [(resnets: [ResnetBlock], attentions: [SpatialTransformer], downsample: Conv2d?)]
    let mid: (ResnetBlock, SpatialTransformer, ResnetBlock)
    let up: [(resnets: [ResnetBlock], attentions: [SpatialTransformer], upsample: Conv2d?)]
    let normOut: GroupNorm, convOut: Conv2d
    /// The weights used in place from the model file (see `MappedWeights`).
    public let mappedWeights: MappedWeights
    /// Every tensor read for this network (see `LoadedWeights`).
    public let loadedWeights: LoadedWeights
    /// How its products multiply (from the precision it was loaded at).
    public let products: ProductPrecision

    /// The UNet of `weights`; with `reusing`, an earlier load's tensors are taken again and
    /// `overlay` replaces some weight matrices (see `LoadedWeights`).
    public init(_ weights: ModelWeights, config: UNetConfig, precision: WeightPrecision = .full,
                reusing: LoadedWeights? = nil, overlay: [String: Tensor] = [:]) throws {
        self.config = config
        let w = WeightLoader(weights, component: "unet", precision: precision, reusing: reusing, overlay: overlay)
        loadedWeights = w.loaded
        mappedWeights = w.mapped
        products = precision.products
        let g = config.normGroups, eps = config.normEps, levels = config.blockOutChannels.count
        convIn = try Conv2d(w, "conv_in")
        time1 = try Linear(w, "time_embedding.linear_1"); time2 = try Linear(w, "time_embedding.linear_2")
        addition = config.additionInputDim == nil ? nil : (try Linear(w, "add_embedding.linear_1"), try Linear(w, "add_embedding.linear_2"))
        down = try (0..<levels).map { l in
            let b = w.scoped("down_blocks.\(l)")
            let resnets = try (0..<config.layersPerBlock).map { try ResnetBlock(b.scoped("resnets.\($0)"), groups: g, eps: eps) }
            let attentions = config.attentionLevels[l]
                ? try (0..<config.layersPerBlock).map {
                    try SpatialTransformer(b.scoped("attentions.\($0)"), config: config, heads: config.heads[l], depth: config.transformerDepth[l])
                } : []
            let downsample = l < levels - 1 ? try Conv2d(b, "downsamplers.0.conv", stride: 2, padding: 1) : nil
            return (resnets, attentions, downsample)
        }
        let m = w.scoped("mid_block")
        mid = (try ResnetBlock(m.scoped("resnets.0"), groups: g, eps: eps),
               try SpatialTransformer(m.scoped("attentions.0"), config: config, heads: config.heads[levels - 1],
                                      depth: config.transformerDepth[levels - 1]),
               try ResnetBlock(m.scoped("resnets.1"), groups: g, eps: eps))
        up = try (0..<levels).map { i in
            let b = w.scoped("up_blocks.\(i)"), level = levels - 1 - i
            let resnets = try (0...config.layersPerBlock).map { try ResnetBlock(b.scoped("resnets.\($0)"), groups: g, eps: eps) }
            let attentions = config.attentionLevels[level]
                ? try (0...config.layersPerBlock).map {
                    try SpatialTransformer(b.scoped("attentions.\($0)"), config: config, heads: config.heads[level],
                                           depth: config.transformerDepth[level])
                } : []
            let upsample = i < levels - 1 ? try Conv2d(b, "upsamplers.0.conv") : nil
            return (resnets, attentions, upsample)
        }
        normOut = try GroupNorm(w, "conv_norm_out", groups: g, eps: eps)
        convOut = try Conv2d(w, "conv_out")
    }

    /// The sinusoidal projection of the timesteps through the time MLP: [B, time embedding width].
    public func timeEmbedding(_ timesteps: [Float]) throws -> Tensor {
        let t = try Tensor.timestepEmbedding(timesteps, dim: config.blockOutChannels[0], flipSinToCos: config.flipSinToCos,
                                             downscaleFreqShift: config.freqShift)
        return try time2(time1(t).silu())
    }

    /// SDXL's vector conditioning `y` [1, additionInputDim]: the pooled text [1, P] followed by
    /// the sinusoidal embeddings of the six size numbers (original height, width, crop top, left,
    /// target height, width), as sgm's ConcatTimestepEmbedderND makes it.
    public func additionVector(pooled: Tensor, sizes: [Float]) throws -> Tensor {
        guard let dim = config.additionTimeEmbedDim, let input = config.additionInputDim else {
            throw EngineError.invalidArgument(op: "UNet", message: "this UNet takes no added conditioning")
        }
        let sizeEmbedding = try Tensor.timestepEmbedding(sizes, dim: dim, flipSinToCos: true, downscaleFreqShift: 0).reshaped([1, -1])
        let y = try Tensor.concat([pooled.reshaped([1, -1]), sizeEmbedding], dim: 1)
        guard y.shape[1] == input else {
            throw EngineError.invalidArgument(op: "UNet", message: "added conditioning is \(y.shape[1]) wide, the UNet takes \(input)")
        }
        return y
    }

    /// The noise (or v) prediction for latents x [B, C, H, W] at `timesteps` (one per batch item)
    /// given the context [B, S, D] and, for SDXL, the vector conditioning `vector` [B, N]. With
    /// `checkpointed`, each resnet and its attention (and the middle block) is a recompute segment
    /// for training (`Tensor.checkpointed`): the same gradients, far less memory held for backward.
    public func callAsFunction(_ x: Tensor, timesteps: [Float], context: Tensor, vector: Tensor? = nil,
                               checkpointed: Bool = false) throws -> Tensor {
        try withProductPrecision(products) {
            try predict(x, timesteps: timesteps, context: context, vector: vector, checkpointed: checkpointed)
        }
    }

    private func predict(_ x: Tensor, timesteps: [Float], context: Tensor, vector: Tensor?, checkpointed: Bool) throws -> Tensor {
        var temb = try timeEmbedding(timesteps)
        if let addition {
            guard let vector else { throw EngineError.invalidArgument(op: "UNet", message: "an SDXL UNet needs its vector conditioning") }
            temb = try temb + addition.1(addition.0(vector).silu())
        }
        /// `body(h, temb, context)`, as one segment when checkpointed.
        func segment(_ h: Tensor, _ body: @escaping (Tensor, Tensor, Tensor) throws -> Tensor) throws -> Tensor {
            guard checkpointed else { return try body(h, temb, context) }
            return try Tensor.checkpointed([h, temb, context]) { try body($0[0], $0[1], $0[2]) }
        }
        var h = try convIn(x)
        var skips = [h]
        for block in down {
            for (j, resnet) in block.resnets.enumerated() {
                let attention = block.attentions.isEmpty ? nil : block.attentions[j]
                h = try segment(h) { h, temb, context in
                    let r = try resnet(h, temb)
                    return try attention.map { try $0(r, context: context) } ?? r
                }
                skips.append(h)
            }
            if let d = block.downsample { h = try d(h); skips.append(h) }
        }
        let middle = mid
        h = try segment(h) { h, temb, context in try middle.2(middle.1(middle.0(h, temb), context: context), temb) }
        for block in up {
            for (j, resnet) in block.resnets.enumerated() {
                let attention = block.attentions.isEmpty ? nil : block.attentions[j]
                h = try segment(Tensor.concat([h, skips.removeLast()], dim: 1)) { h, temb, context in
                    let r = try resnet(h, temb)
                    return try attention.map { try $0(r, context: context) } ?? r
                }
            }
            if let u = block.upsample { h = try u(h.upsampleNearest2x()) }
        }
        return try convOut(normOut.thenSiLU(h))
    }
}
