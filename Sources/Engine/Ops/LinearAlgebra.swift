/// Matrix products and linear layers.
extension Tensor {
    /// Matrix product: [..., M, K] @ [..., K, N] with equal batch dimensions, or @ [K, N] shared.
    /// Transposed views are passed to sgemm without copying. `other` may be a frozen 16-bit weight.
    public func matmul(_ other: Tensor) throws -> Tensor {
        try requireF32("matmul"); try other.requireWeightDType("matmul")
        guard rank >= 2, other.rank >= 2, shape[rank - 1] == other.shape[other.rank - 2],
              other.rank == 2 || Array(shape.dropLast(2)) == Array(other.shape.dropLast(2)) else {
            throw EngineError.shapeMismatch(op: "matmul", shapes: [shape, other.shape],
                                            reason: "expected [..., M, K] @ [..., K, N] (same batch) or @ [K, N]")
        }
        let a = self, b = other
        let out = try backend.matmul(a, b, bias: nil)
        FLOPCounter.add(2 * out.count * shape[rank - 1])
        return out.recording("matmul", inputs: [a, b]) { g in
            let ga = a.requiresGrad ? try g.matmul(b.transposed()) : nil
            var gb: Tensor? = nil
            if b.requiresGrad {
                if b.rank == 2 && a.rank > 2 {
                    let k = a.shape[a.rank - 1], n = b.shape[1]
                    gb = try a.reshaped([-1, k]).transposed().matmul(g.reshaped([-1, n]))
                } else {
                    gb = try a.transposed().matmul(g)
                }
            }
            return [ga, gb]
        }
    }

    /// y = x W^T + b with weight [out, in] and bias [out] (torch.nn.functional.linear); the bias is
    /// fused into the GEMM (the output starts as the bias rows). A frozen weight may be 16-bit.
    public func linear(weight: Tensor, bias: Tensor? = nil) throws -> Tensor { try linear(weight: weight, bias: bias, adding: nil) }

    /// residual + linear(x): the residual [..., out] is where the product accumulates (no pass of
    /// its own over the data); its gradient is the output's.
    public func linear(weight: Tensor, bias: Tensor? = nil, adding residual: Tensor?) throws -> Tensor {
        guard weight.rank == 2, shape.last == weight.shape[1], bias.map({ $0.shape == [weight.shape[0]] }) ?? true else {
            throw EngineError.shapeMismatch(op: "linear", shapes: [shape, weight.shape] + (bias.map { [$0.shape] } ?? []),
                                            reason: "expected x [..., in], weight [out, in], bias [out]")
        }
        try requireF32("linear"); try weight.requireWeightDType("linear")
        let outShape = Array(shape.dropLast()) + [weight.shape[0]]
        if let residual, residual.shape != outShape {
            throw EngineError.shapeMismatch(op: "linear", shapes: [shape, weight.shape, residual.shape],
                                            reason: "the residual must have the output's shape \(Shape.describe(outShape))")
        }
        try residual?.requireF32("linear")
        let x = self, w = weight, b = try bias?.contiguous(), r = try residual?.contiguous()
        let wt = try withNoGrad { try w.transposed() }
        let y = try backend.matmul(x, wt, bias: b, adding: r)
        FLOPCounter.add(2 * y.count * weight.shape[1])
        return y.recording("linear", inputs: [x, w] + (b.map { [$0] } ?? []) + (r.map { [$0] } ?? [])) { g in
            let k = x.shape[x.rank - 1], n = w.shape[0]
            let g2 = try g.reshaped([-1, n])
            let gx = x.requiresGrad ? try g.matmul(w) : nil
            let gw = w.requiresGrad ? try g2.transposed().matmul(x.reshaped([-1, k])) : nil
            let gb = (b?.requiresGrad ?? false) ? try g2.sum(dims: [0]) : nil
            return [gx, gw] + (b != nil ? [gb] : []) + (r != nil ? [r!.requiresGrad ? g : nil] : [])
        }
    }

}
