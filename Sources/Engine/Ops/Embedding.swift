import Foundation

/// Lookups and the small special-purpose layers of Stable Diffusion.
extension Tensor {
    /// Rows of `weight` [V, D] for `ids`: result [ids.count, D].
    public static func embedding(ids: [Int], weight: Tensor) throws -> Tensor {
        guard weight.rank == 2 else {
            throw EngineError.shapeMismatch(op: "embedding", shapes: [weight.shape], reason: "weight must be [vocabulary, dim]")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= weight.shape[0] }) {
            throw EngineError.invalidArgument(op: "embedding", message: "id \(bad) outside vocabulary of \(weight.shape[0])")
        }
        if weight.dtype != .f32 {
            // A frozen 16-bit table: each row read is widened (exactly) on its own, so only the rows
            // used are touched.
            guard !weight.requiresGrad else { throw EngineError.invalidArgument(op: "embedding", message: "a 16-bit table takes no gradient") }
            return try concat(ids.map { try weight.sliced(dim: 0, $0, $0 + 1).to(.f32) }, dim: 0)
        }
        let w = try weight.contiguous()
        return try Engine.backend.embedding(ids: ids, weight: w).recording("embedding", inputs: [w]) { g in
            [try Engine.backend.embeddingBackward(ids: ids, dy: g.contiguous(), vocabulary: w.shape[0])]
        }
    }

    /// GEGLU: x [..., 2H] -> x[..., :H] * gelu(x[..., H:]) (the diffusers feed-forward gate).
    public func geglu() throws -> Tensor {
        try requireF32("geglu")
        guard let last = shape.last, last % 2 == 0 else {
            throw EngineError.shapeMismatch(op: "geglu", shapes: [shape], reason: "last dimension must be even")
        }
        let x = try contiguous()
        return try backend.geglu(x).recording("geglu", inputs: [x]) { g in
            [try Engine.backend.gegluBackward(x: x, dy: g.contiguous())]
        }
    }

    /// Sinusoidal timestep embedding [timesteps.count, dim], as diffusers' `get_timestep_embedding`:
    /// exponent_i = -ln(maxPeriod) * i / (dim/2 - shift); emb = t * exp(exponent); [sin, cos]
    /// (or [cos, sin] with `flipSinToCos`), zero-padded when dim is odd.
    public static func timestepEmbedding(_ timesteps: [Float], dim: Int, flipSinToCos: Bool = true,
                                         downscaleFreqShift: Float = 0, maxPeriod: Float = 10000) throws -> Tensor {
        let half = dim / 2
        let out = try Tensor.zeros([timesteps.count, dim])
        let p = out.floatPointer
        // Float32 arithmetic in torch's order, so that arguments near t = 999 round as they do there.
        let negLogPeriod = Float(-Foundation.log(Double(maxPeriod)))
        let denominator = Float(half) - downscaleFreqShift
        let freqs = (0..<half).map { i in Foundation.exp(negLogPeriod * Float(i) / denominator) }
        for (row, t) in timesteps.enumerated() {
            for i in 0..<half {
                let arg = t * freqs[i]
                let (first, second) = flipSinToCos ? (Foundation.cos(arg), Foundation.sin(arg)) : (Foundation.sin(arg), Foundation.cos(arg))
                p[row * dim + i] = first
                p[row * dim + half + i] = second
            }
        }
        return out
    }
}
