/// Scaled dot-product attention.
extension Tensor {
    /// softmax(q k^T * scale [+ causal mask]) v for q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv]
    /// (torch.nn.functional.scaled_dot_product_attention). Memory-bounded: the full score matrix is
    /// never formed; the backward pass recomputes scores block by block from the saved log-sum-exp.
    public static func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, causal: Bool = false,
                                                 scale: Float? = nil) throws -> Tensor {
        for t in [q, k, v] { try t.requireF32("attention") }
        let r = q.rank
        guard r >= 2, k.rank == r, v.rank == r, q.shape[r - 1] == k.shape[r - 1], k.shape[r - 2] == v.shape[r - 2],
              Array(q.shape.dropLast(2)) == Array(k.shape.dropLast(2)), Array(k.shape.dropLast(2)) == Array(v.shape.dropLast(2)) else {
            throw EngineError.shapeMismatch(op: "attention", shapes: [q.shape, k.shape, v.shape],
                                            reason: "expected q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv]")
        }
        let lead = Array(q.shape.dropLast(2))
        let (lq, d, lk, dv) = (q.shape[r - 2], q.shape[r - 1], k.shape[r - 2], v.shape[r - 1])
        let s = scale ?? 1 / Float(d).squareRoot()
        let q3 = try q.contiguous().reshaped([-1, lq, d]), k3 = try k.contiguous().reshaped([-1, lk, d])
        let v3 = try v.contiguous().reshaped([-1, lk, dv])
        FLOPCounter.add(2 * lead.reduce(1, *) * lq * lk * (d + dv))
        let (o, lse) = try Engine.backend.attention(q: q3.detached(), k: k3.detached(), v: v3.detached(), scale: s, causal: causal)
        let out = o.recording("attention", inputs: [q3, k3, v3]) { [weak o] g in
            guard let o else { throw EngineError.invalidArgument(op: "attention backward", message: "output released") }
            let r = try Engine.backend.attentionBackward(q: q3, k: k3, v: v3, out: o, lse: lse, dout: g.contiguous(), scale: s, causal: causal)
            return [r.dq, r.dk, r.dv]
        }
        return try out.reshaped(lead + [lq, dv])
    }
}
