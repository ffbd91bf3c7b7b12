import Engine

/// diffusers' AutoencoderKL (the SD VAE): the encoder to the latent distribution's mean (and
/// std), and the decoder from latents to images in [-1, 1]. GroupNorm eps 1e-6 throughout; the
/// mid-block attention has one head of full width.
public struct AutoencoderKL {
    public let config: VAEConfig
    struct MidBlock {
        let resnet1: ResnetBlock, norm: GroupNorm, attention: MultiHeadAttention, resnet2: ResnetBlock
        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let h = try resnet1(x, nil)
            let (b, c, hh, ww) = (h.shape[0], h.shape[1], h.shape[2], h.shape[3])
            let tokens = try norm(h).reshaped([b, c, hh * ww]).transposed(1, 2)
            let a = try attention(tokens).transposed(1, 2).reshaped([b, c, hh, ww])
            return try resnet2(h + a, nil)
        }
    }
    let encoderIn: Conv2d, encoderDown: [(resnets: [ResnetBlock], downsample: Conv2d?)], encoderMid: MidBlock
    let encoderNormOut: GroupNorm, encoderOut: Conv2d, quantConv: Conv2d?
    let postQuantConv: Conv2d?, decoderIn: Conv2d, decoderMid: MidBlock
    let decoderUp: [(resnets: [ResnetBlock], upsample: Conv2d?)], decoderNormOut: GroupNorm, decoderOut: Conv2d
    /// The weights used in place from the model file (see `MappedWeights`).
    public let mappedWeights: MappedWeights
    /// How its products multiply (from the precision it was loaded at).
    public let products: ProductPrecision

    public init(_ weights: ModelWeights, config: VAEConfig, precision: WeightPrecision = .full) throws {
        self.config = config
        let w = WeightLoader(weights, component: "vae", precision: precision), g = config.normGroups, eps: Float = 1e-6
        mappedWeights = w.mapped
        products = precision.products
        let levels = config.blockOutChannels.count
        func mid(_ m: WeightLoader) throws -> MidBlock {
            let a = m.scoped("attentions.0")
            return MidBlock(resnet1: try ResnetBlock(m.scoped("resnets.0"), groups: g, eps: eps),
                            norm: try GroupNorm(a, "group_norm", groups: g, eps: eps),
                            attention: MultiHeadAttention(q: try Linear(a, "to_q"), k: try Linear(a, "to_k"), v: try Linear(a, "to_v"),
                                                          out: try Linear(a, "to_out.0"), heads: 1),
                            resnet2: try ResnetBlock(m.scoped("resnets.1"), groups: g, eps: eps))
        }
        let e = w.scoped("encoder"), d = w.scoped("decoder")
        encoderIn = try Conv2d(e, "conv_in")
        encoderDown = try (0..<levels).map { l in
            let b = e.scoped("down_blocks.\(l)")
            return (try (0..<config.layersPerBlock).map { try ResnetBlock(b.scoped("resnets.\($0)"), groups: g, eps: eps) },
                    l < levels - 1 ? try Conv2d(b, "downsamplers.0.conv", stride: 2, padding: 0) : nil)
        }
        encoderMid = try mid(e.scoped("mid_block"))
        encoderNormOut = try GroupNorm(e, "conv_norm_out", groups: g, eps: eps)
        encoderOut = try Conv2d(e, "conv_out")
        quantConv = w.has("quant_conv.weight") ? try Conv2d(w, "quant_conv") : nil
        postQuantConv = w.has("post_quant_conv.weight") ? try Conv2d(w, "post_quant_conv") : nil
        decoderIn = try Conv2d(d, "conv_in")
        decoderMid = try mid(d.scoped("mid_block"))
        decoderUp = try (0..<levels).map { i in
            let b = d.scoped("up_blocks.\(i)")
            return (try (0...config.layersPerBlock).map { try ResnetBlock(b.scoped("resnets.\($0)"), groups: g, eps: eps) },
                    i < levels - 1 ? try Conv2d(b, "upsamplers.0.conv") : nil)
        }
        decoderNormOut = try GroupNorm(d, "conv_norm_out", groups: g, eps: eps)
        decoderOut = try Conv2d(d, "conv_out")
    }

    /// Images [B, 3, H, W] in [-1, 1] -> the latent distribution's mean and std [B, latent, H/8, W/8]
    /// (unscaled: multiply by `config.scalingFactor` for the diffusion model).
    public func encode(_ images: Tensor) throws -> (mean: Tensor, std: Tensor) {
        try withProductPrecision(products) { try encodeScoped(images) }
    }

    private func encodeScoped(_ images: Tensor) throws -> (mean: Tensor, std: Tensor) {
        var h = try encoderIn(images)
        for block in encoderDown {
            for r in block.resnets { h = try r(h, nil) }
            if let ds = block.downsample { h = try ds(h.padded(top: 0, bottom: 1, left: 0, right: 1)) }
        }
        h = try encoderOut(encoderNormOut.thenSiLU(encoderMid(h)))
        if let quantConv { h = try quantConv(h) }
        let parts = try h.chunked(2, dim: 1)
        let std = try parts[1].clamped(min: -30, max: 20).affine(mul: 0.5, add: 0).exp()
        return (try parts[0].contiguous(), std)
    }

    /// diffusers' tiled decode (`AutoencoderKL.enable_tiling()`, `tiled_decode`), for images larger
    /// than the model's native size: latent tiles of `latentTile` pixels, a quarter overlapping,
    /// are decoded one at a time, so the decoder's activations follow the tile, not the image. In
    /// row-major tile order each tile's first quarter of rows is blended linearly with the tile
    /// above, then its first quarter of columns with the tile to the left (both as already
    /// blended), and its first three quarters are kept. Each tile has its own group-norm
    /// statistics, so the image differs from `decode`'s, as in diffusers. A latent no larger than
    /// one tile is decoded whole (as diffusers' `decode` does with tiling enabled).
    public func decodeTiled(_ z: Tensor, latentTile: Int) throws -> Tensor {
        precondition(latentTile >= 4, "latent tiles of at least 4 pixels")
        let (b, c, h, w) = (z.shape[0], config.outChannels, z.shape[2], z.shape[3])
        if h <= latentTile && w <= latentTile { return try decode(z) }
        let sampleTile = latentTile << (config.blockOutChannels.count - 1)
        let stride = latentTile * 3 / 4, blend = sampleTile / 4, keep = sampleTile - blend
        struct Tile { var values: [Float]; let h: Int, w: Int }
        var rows: [[Tile]] = try Swift.stride(from: 0, to: h, by: stride).map { i in
            try Swift.stride(from: 0, to: w, by: stride).map { j in
                let part = try z.sliced(dim: 2, i, min(i + latentTile, h)).sliced(dim: 3, j, min(j + latentTile, w)).contiguous()
                let image = try decode(part)
                return Tile(values: try image.toArray(), h: image.shape[2], w: image.shape[3])
            }
        }
        /// b = a * (1 - t) + b * t over the first `extent` rows (vertical) or columns of b, t = k / extent.
        func mix(_ a: Tile, into t: inout Tile, vertical: Bool) {
            let extent = min(vertical ? a.h : a.w, vertical ? t.h : t.w, blend)
            for k in 0..<extent {
                let wb = Float(Double(k) / Double(extent)), wa = Float(1 - Double(k) / Double(extent))
                for plane in 0..<(b * c) {
                    if vertical {
                        for x in 0..<t.w {
                            let i = (plane * t.h + k) * t.w + x, ia = (plane * a.h + a.h - extent + k) * a.w + x
                            t.values[i] = a.values[ia] * wa + t.values[i] * wb
                        }
                    } else {
                        for y in 0..<t.h {
                            let i = (plane * t.h + y) * t.w + k, ia = (plane * a.h + y) * a.w + a.w - extent + k
                            t.values[i] = a.values[ia] * wa + t.values[i] * wb
                        }
                    }
                }
            }
        }
        for i in rows.indices {
            for j in rows[i].indices {
                if i > 0 { mix(rows[i - 1][j], into: &rows[i][j], vertical: true) }
                if j > 0 { mix(rows[i][j - 1], into: &rows[i][j], vertical: false) }
            }
        }
        let heights = rows.map { min($0[0].h, keep) }, widths = rows[0].map { min($0.w, keep) }
        let (outH, outW) = (heights.reduce(0, +), widths.reduce(0, +))
        var out = [Float](repeating: 0, count: b * c * outH * outW)
        var y0 = 0
        for (i, row) in rows.enumerated() {
            var x0 = 0
            for (j, tile) in row.enumerated() {
                for plane in 0..<(b * c) {
                    for y in 0..<heights[i] {
                        for x in 0..<widths[j] {
                            out[(plane * outH + y0 + y) * outW + x0 + x] = tile.values[(plane * tile.h + y) * tile.w + x]
                        }
                    }
                }
                x0 += widths[j]
            }
            y0 += heights[i]
        }
        return try Tensor(shape: [b, c, outH, outW], data: out)
    }

    /// Latents [B, latent, h, w] (unscaled: divide by `config.scalingFactor` first) -> images in [-1, 1].
    public func decode(_ z: Tensor) throws -> Tensor {
        try withProductPrecision(products) { try decodeScoped(z) }
    }

    private func decodeScoped(_ z: Tensor) throws -> Tensor {
        var h = try decoderIn(postQuantConv.map { try $0(z) } ?? z)
        h = try decoderMid(h)
        for block in decoderUp {
            for r in block.resnets { h = try r(h, nil) }
            if let us = block.upsample { h = try us(h.upsampleNearest2x()) }
        }
        return try decoderOut(decoderNormOut.thenSiLU(h))
    }
}
