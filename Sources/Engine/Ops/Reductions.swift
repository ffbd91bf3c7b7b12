/// Sums, means and variances over dimensions.
extension Tensor {
    /// Moves `dims` last and views the tensor as [kept, reduced] rows; returns it and the kept shape.
    private func rowsForReduction(_ dims: [Int], op: String) throws -> (Tensor, rows: Int, cols: Int, keepShape: [Int]) {
        let axes = Set(try dims.map { try axis($0, op: op) })
        let kept = (0..<rank).filter { !axes.contains($0) }
        let reduced = (0..<rank).filter { axes.contains($0) }
        let rows = kept.map { shape[$0] }.reduce(1, *), cols = reduced.map { shape[$0] }.reduce(1, *)
        let moved = try withNoGrad { try permuted(kept + reduced).contiguous() }
        let keepShape = (0..<rank).map { axes.contains($0) ? 1 : shape[$0] }
        return (moved, rows, cols, keepShape)
    }

    private func finish(_ t: Tensor, keepShape: [Int], dims: [Int], keepDim: Bool) throws -> Tensor {
        let axes = Set(try dims.map { try axis($0, op: "reduce") })
        let outShape = keepDim ? keepShape : (0..<rank).filter { !axes.contains($0) }.map { shape[$0] }
        return Tensor(storage: t.storage, shape: outShape, strides: Shape.contiguousStrides(outShape), offset: t.offset)
    }

    /// Sum over `dims`.
    public func sum(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        try requireF32("sum")
        let (m, rows, cols, keepShape) = try rowsForReduction(dims, op: "sum")
        let out = try finish(try backend.rowSum(m, rows: rows, cols: cols), keepShape: keepShape, dims: dims, keepDim: keepDim)
        let inShape = shape
        return out.recording("sum", inputs: [self]) { g in [try g.reshaped(keepShape).expanded(to: inShape).contiguous()] }
    }

    /// Sum of all elements (shape []).
    public func sum() throws -> Tensor { try sum(dims: Array(0..<rank)) }

    /// Mean over `dims`.
    public func mean(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        let n = try dims.map { shape[try axis($0, op: "mean")] }.reduce(1, *)
        return try sum(dims: dims, keepDim: keepDim).affine(mul: 1 / Float(n), add: 0)
    }

    /// Population variance (correction 0) over `dims`.
    public func variance(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        try requireF32("var")
        let (m, rows, cols, keepShape) = try rowsForReduction(dims, op: "var")
        let (mean, v) = try backend.rowMeanVar(m, rows: rows, cols: cols)
        let out = try finish(v, keepShape: keepShape, dims: dims, keepDim: keepDim)
        let x = self, meanKeep = try finish(mean, keepShape: keepShape, dims: dims, keepDim: true)
        return out.recording("var", inputs: [x]) { g in
            // d var / dx = 2 (x - mean) / N
            let centered = try x - meanKeep
            return [try (centered * g.reshaped(keepShape)).affine(mul: 2 / Float(cols), add: 0)]
        }
    }

    /// Sums a broadcast gradient back to `target` (the shape before broadcasting).
    func sumToShape(_ target: [Int]) throws -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var dims = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[lead + i] != 1 { dims.append(lead + i) }
        if dims.isEmpty { return try reshaped(target) }
        return try sum(dims: dims, keepDim: true).reshaped(target)
    }
}
