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
        FLOPCounter.add(2 * lead.reduce(1, *) * lq * lk * (d + dv))
        // The backend reads the views in place (heads split by a transpose need no copy).
        let (o, lse) = try Engine.backend.attention(q: q.detached(), k: k.detached(), v: v.detached(), scale: s, causal: causal)
        return o.recording("attention", inputs: [q, k, v]) { [weak o] g in
            guard let o else { throw EngineError.invalidArgument(op: "attention backward", message: "output released") }
            let r = try Engine.backend.attentionBackward(q: q.slices(), k: k.slices(), v: v.slices(), out: o.slices(), lse: lse,
                                                         dout: g.slices(), scale: s, causal: causal)
            return [try r.dq.reshaped(q.shape), try r.dk.reshaped(k.shape), try r.dv.reshaped(v.shape)]
        }
    }
}

extension Tensor {
    /// A [..., L, D] tensor as contiguous [S, L, D] slices (S the product of the leading dimensions).
    func slices() throws -> Tensor {
        try withNoGrad { try contiguous().reshaped([-1, shape[rank - 2], shape[rank - 1]]) }
    }

    /// This tensor, or a contiguous copy when its last dimension is not contiguous.
    func withUnitLastStride() throws -> Tensor {
        rank == 0 || strides[rank - 1] == 1 || shape[rank - 1] == 1 ? self : try withNoGrad { try contiguous() }
    }

    /// Dense strides for `shape` (this tensor's rank) that lay the dimensions out in the order of
    /// this tensor's strides, largest first (ties in dimension order).
    func denseStridesInMemoryOrder(shape: [Int]) -> [Int] {
        let order = (0..<rank).sorted { strides[$0] != strides[$1] ? strides[$0] > strides[$1] : $0 < $1 }
        var result = [Int](repeating: 0, count: rank), next = 1
        for d in order.reversed() { result[d] = next; next *= shape[d] }
        return result
    }
}
