/// Layout operations: views where the strides allow, copies otherwise.
extension Tensor {
    var backend: any Backend { Engine.backend }

    /// This tensor with row-major contiguous storage (itself when already contiguous).
    public func contiguous() throws -> Tensor {
        if isContiguous { return self }
        try requireF32("contiguous")
        let out = try Tensor(uninitialized: shape, op: "contiguous")
        try backend.copy(self, into: out)
        return out.recording("contiguous", inputs: [self]) { g in [g] }
    }

    /// The same elements converted to `dtype` (f32 compute, f16/bf16 storage).
    public func to(_ target: DType) throws -> Tensor {
        if target == dtype { return self }
        let src = dtype == .f32 ? try contiguous() : (isContiguous ? self : nil)
        guard let src else { throw EngineError.invalidArgument(op: "to", message: "\(dtype.rawValue) views must be contiguous to convert") }
        return try backend.convert(src, to: target)
    }

    /// A view (or copy, when the layout does not allow a view) with a new shape; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var target = newShape
        if let i = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw EngineError.shapeMismatch(op: "reshape", shapes: [shape, newShape], reason: "cannot infer -1")
            }
            target[i] = count / known
        }
        guard Shape.count(target) == count else {
            throw EngineError.shapeMismatch(op: "reshape", shapes: [shape, newShape], reason: "element counts differ")
        }
        let base = try contiguous()
        let view = Tensor(storage: base.storage, shape: target, strides: Shape.contiguousStrides(target), offset: base.offset)
        let original = shape
        return view.recording("reshape", inputs: [base]) { g in [try g.reshaped(original)] }
    }

    /// Reorders dimensions (a view).
    public func permuted(_ dims: [Int]) throws -> Tensor {
        guard dims.count == rank, Set(dims) == Set(0..<rank) else {
            throw EngineError.invalidArgument(op: "permute", message: "\(dims) is not a permutation of the \(rank) dimensions of \(Shape.describe(shape))")
        }
        let view = Tensor(storage: storage, shape: dims.map { shape[$0] }, strides: dims.map { strides[$0] }, offset: offset)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, d) in dims.enumerated() { inverse[d] = i }
        return view.recording("permute", inputs: [self]) { g in [try g.permuted(inverse)] }
    }

    /// Swaps two dimensions (a view).
    public func transposed(_ a: Int = -2, _ b: Int = -1) throws -> Tensor {
        var dims = Array(0..<rank)
        dims.swapAt(try axis(a, op: "transpose"), try axis(b, op: "transpose"))
        return try permuted(dims)
    }

    /// The slice at `index` along `dim`, that dimension removed (a view; torch's select).
    public func selected(dim: Int, _ index: Int) throws -> Tensor {
        let d = try axis(dim, op: "select")
        guard 0 <= index, index < shape[d] else {
            throw EngineError.invalidArgument(op: "select", message: "index \(index) outside dimension \(d) of \(Shape.describe(shape))")
        }
        var s = shape, st = strides
        s.remove(at: d); st.remove(at: d)
        let view = Tensor(storage: storage, shape: s, strides: st, offset: offset + index * strides[d])
        let full = shape
        return view.recording("select", inputs: [self]) { g in
            let dx = try Tensor.zeros(full)
            var rs = dx.strides
            rs.remove(at: d)
            try Engine.backend.copy(g, into: Tensor(storage: dx.storage, shape: s, strides: rs, offset: index * dx.strides[d]))
            return [dx]
        }
    }

    /// Elements [start, end) along `dim` (a view).
    public func sliced(dim: Int, _ start: Int, _ end: Int) throws -> Tensor {
        let d = try axis(dim, op: "slice")
        guard 0 <= start, start <= end, end <= shape[d] else {
            throw EngineError.invalidArgument(op: "slice", message: "range \(start)..<\(end) outside dimension \(d) of \(Shape.describe(shape))")
        }
        var s = shape
        s[d] = end - start
        let view = Tensor(storage: storage, shape: s, strides: strides, offset: offset + start * strides[d])
        let full = shape
        return view.recording("slice", inputs: [self]) { g in
            let dx = try Tensor.zeros(full)
            let region = Tensor(storage: dx.storage, shape: s, strides: dx.strides, offset: start * dx.strides[d])
            try Engine.backend.copy(g, into: region)
            return [dx]
        }
    }

    /// A view repeating size-1 dimensions to `target` (stride 0); leading dimensions may be added.
    public func expanded(to target: [Int]) throws -> Tensor {
        guard let b = Shape.broadcast(shape, target), b == target else {
            throw EngineError.shapeMismatch(op: "expand", shapes: [shape, target], reason: "cannot broadcast")
        }
        let lead = target.count - rank
        var st = [Int](repeating: 0, count: target.count)
        for i in 0..<rank where shape[i] == target[lead + i] { st[lead + i] = strides[i] }
        let view = Tensor(storage: storage, shape: target, strides: st, offset: offset)
        let original = shape
        return view.recording("expand", inputs: [self]) { g in [try g.sumToShape(original)] }
    }

    /// Splits into `chunks` pieces along `dim` (views; the last may be smaller, as torch.chunk).
    public func chunked(_ chunks: Int, dim: Int) throws -> [Tensor] {
        let d = try axis(dim, op: "chunk")
        guard chunks > 0 else { throw EngineError.invalidArgument(op: "chunk", message: "chunks must be positive") }
        let size = (shape[d] + chunks - 1) / chunks
        return try split(size: max(size, 1), dim: d)
    }

    /// Splits into pieces of `size` along `dim` (views).
    public func split(size: Int, dim: Int) throws -> [Tensor] {
        let d = try axis(dim, op: "split")
        return try stride(from: 0, to: shape[d], by: size).map { try sliced(dim: d, $0, min($0 + size, shape[d])) }
    }

    /// Joins tensors along `dim`.
    public static func concat(_ parts: [Tensor], dim: Int) throws -> Tensor {
        guard let first = parts.first else { throw EngineError.invalidArgument(op: "concat", message: "no tensors") }
        let d = try first.axis(dim, op: "concat")
        for p in parts {
            try p.requireF32("concat")
            guard p.rank == first.rank, (0..<p.rank).allSatisfy({ $0 == d || p.shape[$0] == first.shape[$0] }) else {
                throw EngineError.shapeMismatch(op: "concat", shapes: parts.map(\.shape), reason: "sizes differ outside dimension \(d)")
            }
        }
        var outShape = first.shape
        outShape[d] = parts.map { $0.shape[d] }.reduce(0, +)
        let out = try Tensor(uninitialized: outShape, op: "concat")
        var start = 0
        var bounds: [(Int, Int)] = []
        for p in parts {
            let region = Tensor(storage: out.storage, shape: p.shape, strides: out.strides, offset: start * out.strides[d])
            try Engine.backend.copy(p, into: region)
            bounds.append((start, start + p.shape[d]))
            start += p.shape[d]
        }
        return out.recording("concat", inputs: parts) { g in try bounds.map { try g.sliced(dim: d, $0.0, $0.1).contiguous() } }
    }
}
