import CKernels
import Foundation

/// The CPU backend: oneDNN's sgemm for matrix products, oneDNN direct convolution, and the C
/// kernels of `CKernels` (a persistent thread pool, static ranges, so results do not depend on the
/// thread count) for everything else.
public final class CPUBackend: Backend, @unchecked Sendable {
    public let name = "cpu"

    public init() {
        ck_tune_allocator()
        let environment = ProcessInfo.processInfo.environment
        if environment["SDSHELL_HUGE_PAGES"] == "0" { ck_set_huge_pages(0) }
        if let text = environment["SDSHELL_TENSOR_CACHE_MB"], let mb = Int(text), mb >= 0 { ck_tensor_cache_set_limit(mb << 20) }
    }

    /// Threads used by the kernels, OpenBLAS and oneDNN.
    public static var threads: Int {
        get { Int(ck_get_threads()) }
        set { ck_set_threads(Int32(newValue)) }
    }

    func output(_ shape: [Int], _ op: String) throws -> Tensor {
        try Tensor(uninitialized: shape, op: op)
    }

    /// Runs `body` with the weight `w` in f32: as it is, or, 16-bit, widened for this one call
    /// into the reused `ScratchMemory` (never cached: oneDNN is given no key for it), which `body`
    /// must not keep. The values are those of `widened`, so the products are the same bits.
    func withWidened<R>(_ w: Tensor, _ body: (Tensor) throws -> R) throws -> R {
        guard w.dtype != .f32 else { return try body(w) }
        let count = w.storage.count
        return try ScratchMemory.with(floats: count, op: "widened weights") { memory in
            switch w.dtype {
            case .f16: ck_f16_to_f32(w.storage.halves, memory.storage.floats, count)
            default: ck_bf16_to_f32(w.storage.halves, memory.storage.floats, count)
            }
            return try body(Tensor(storage: memory.storage, shape: w.shape, strides: w.strides, offset: w.offset))
        }
    }

    private func i64(_ a: [Int]) -> [Int64] { a.map { Int64($0) } }

    public func copy(_ src: Tensor, into dst: Tensor) throws {
        try src.requireF32("copy"); try dst.requireF32("copy")
        guard src.shape == dst.shape else {
            throw EngineError.shapeMismatch(op: "copy", shapes: [src.shape, dst.shape], reason: "shapes must be equal")
        }
        guard src.rank <= Int(CK_MAX_RANK) else {
            throw EngineError.invalidArgument(op: "copy", message: "rank \(src.rank) above \(CK_MAX_RANK)")
        }
        let shape = i64(src.shape), ss = i64(src.strides), ds = i64(dst.strides)
        ck_strided_copy(src.floatPointer, ss, dst.floatPointer, ds, shape, Int32(src.rank))
    }

    public func convert(_ x: Tensor, to dtype: DType) throws -> Tensor {
        let y = try Tensor(uninitialized: x.shape, dtype: dtype, op: "convert")
        let n = x.count
        switch (x.dtype, dtype) {
        case (.f32, .f16): ck_f32_to_f16(x.storage.floats + x.offset, y.storage.halves, n)
        case (.f32, .bf16): ck_f32_to_bf16(x.storage.floats + x.offset, y.storage.halves, n)
        case (.f16, .f32): ck_f16_to_f32(x.storage.halves + x.offset, y.storage.floats, n)
        case (.bf16, .f32): ck_bf16_to_f32(x.storage.halves + x.offset, y.storage.floats, n)
        case (.f16, .bf16), (.bf16, .f16): return try convert(convert(x, to: .f32), to: dtype)
        default: y.storage.raw.copyMemory(from: x.elements, byteCount: n * dtype.size)
        }
        return y
    }

    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        let y = try output(x.shape, "unary")
        let (code, p0, p1) = op.code
        ck_unary(code, x.floatPointer, y.floatPointer, x.count, p0, p1)
        return y
    }

    public func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor?, dy: Tensor) throws -> Tensor {
        let dx = try output(x.shape, "unary backward")
        let (code, p0, p1) = op.code
        ck_unary_backward(code, x.floatPointer, y?.floatPointer, dy.floatPointer, dx.floatPointer, x.count, p0, p1)
        return dx
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) throws -> Tensor {
        guard shape.count <= Int(CK_MAX_RANK) else {
            throw EngineError.invalidArgument(op: "binary", message: "rank \(shape.count) above \(CK_MAX_RANK)")
        }
        let out = try output(shape, "binary")
        ck_binary(op.code, a.floatPointer, i64(a.strides), b.floatPointer, i64(b.strides), out.floatPointer, i64(shape), Int32(shape.count))
        return out
    }

    public func affine(_ x: Tensor, mul: Float, add: Float) throws -> Tensor {
        let y = try output(x.shape, "affine")
        ck_affine_scalar(x.floatPointer, y.floatPointer, x.count, mul, add)
        return y
    }

    public func rowSum(_ x: Tensor, rows: Int, cols: Int) throws -> Tensor {
        let out = try output([rows], "sum")
        ck_row_sum(x.floatPointer, rows, cols, out.floatPointer)
        return out
    }

    public func rowMeanVar(_ x: Tensor, rows: Int, cols: Int) throws -> (mean: Tensor, variance: Tensor) {
        let m = try output([rows], "mean"), v = try output([rows], "var")
        ck_row_mean_var(x.floatPointer, rows, cols, m.floatPointer, v.floatPointer)
        return (m, v)
    }

    /// How a matrix view (the last two dimensions) is laid out for a GEMM as it is: rows of
    /// unit-stride elements (noTranspose) or columns of them (transpose), with the leading
    /// dimension; nil when neither.
    func matrixLayout(_ t: Tensor) -> (CChar, Int)? {
        let r = t.rank
        let rows = t.shape[r - 2], cols = t.shape[r - 1]
        let sr = t.strides[r - 2], sc = t.strides[r - 1]
        if sc == 1 && (sr >= max(cols, 1) || rows == 1) { return (noTranspose, max(sr, cols, 1)) }
        if sr == 1 && (sc >= max(rows, 1) || cols == 1) { return (transpose, max(sc, rows, 1)) }
        return nil
    }

    /// How a matrix view maps onto sgemm: transposed or not, and its leading dimension (a
    /// contiguous copy when its layout is neither).
    func gemmOperand(_ t: Tensor) throws -> (Tensor, CChar, Int) {
        if let (trans, ld) = matrixLayout(t) { return (t, trans, ld) }
        return (try t.contiguous(), noTranspose, max(t.shape[t.rank - 1], 1))
    }

    /// Whether the batch dimensions of a row-major matrix view continue its rows: batch element i
    /// starts where element i - 1's last row ends (so [..., M, K] reads as one [batch * M, K]).
    func rowsFollowOn(_ t: Tensor, lda: Int) -> Bool {
        let r = t.rank
        guard r > 2 else { return true }
        var expected = t.shape[r - 2] * lda
        for d in stride(from: r - 3, through: 0, by: -1) {
            if t.shape[d] != 1 && t.strides[d] != expected { return false }
            expected *= t.shape[d]
        }
        return true
    }

    let noTranspose = CChar(UInt8(ascii: "N")), transpose = CChar(UInt8(ascii: "T"))

    public func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?) throws -> Tensor {
        let m = a.shape[a.rank - 2], n = b.shape[b.rank - 1]
        let out = try output(Array(a.shape.dropLast(2)) + [m, n], "matmul")
        if try engineGEMM(a, b, bias: bias, adding: addend, into: out) { return out }
        return try withWidened(b) { b in try oneDNNMatmul(a, b, bias: bias, adding: addend, into: out) }
    }

    /// `matmul` through oneDNN's matmul or sgemm, b in f32.
    private func oneDNNMatmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?, into out: Tensor) throws -> Tensor {
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        let batch = Array(a.shape.dropLast(2)).reduce(1, *)
        let (ta, transA, lda) = try gemmOperand(a)
        let (tb, transB, ldb) = try gemmOperand(b)
        let sharedB = b.rank == 2
        // Offsets of each batch element (views may have arbitrary batch strides).
        func batchOffset(_ t: Tensor, _ i: Int) -> Int {
            var rem = i, off = 0
            for d in stride(from: t.rank - 3, through: 0, by: -1) {
                off += (rem % t.shape[d]) * t.strides[d]; rem /= t.shape[d]
            }
            return off
        }
        if m == 0 || n == 0 { return out }
        if addend != nil || (bias != nil && batch * m <= 1024), k > 0, sharedB, transA == noTranspose,
           rowsFollowOn(ta, lda: lda), ldb == (transB == transpose ? k : n) {
            // oneDNN's matmul adds the bias and the residual as it stores each tile: the output is
            // written once, not filled first and then accumulated into. It repacks the weights
            // for each block of rows, so with a bias alone a tall product (the SD 1.5 feed-forward
            // input at 512x512: 8192 x 320 @ 320 x 2560) is faster through sgemm (measured with
            // `sdbench unet --profile`).
            var shape = ck_matmul_shape(m: batch * m, k: k, n: n, lda: lda, weights_nk: transB == transpose ? 1 : 0,
                                        has_residual: addend == nil ? 0 : 1)
            try check(ck_matmul_forward(&shape, ta.floatPointer, tb.floatPointer, bias?.floatPointer, addend?.floatPointer,
                                        out.floatPointer), "matmul")
            return out
        }
        if let addend {
            ck_fill_rows_adding(out.floatPointer, addend.floatPointer, bias?.floatPointer, batch * m, n)
        } else if let bias {
            ck_fill_rows(out.floatPointer, bias.floatPointer, batch * m, n)
        } else if k == 0 {
            out.floatPointer.initialize(repeating: 0, count: out.count)
        }
        let beta: Float = bias == nil && addend == nil ? 0 : 1
        if k == 0 { return out }
        if sharedB && transA == noTranspose && rowsFollowOn(ta, lda: lda) {
            // The batch is one tall matrix: one product of batch * m rows (small m gets large-GEMM speed).
            let status = ck_sgemm(transA, transB, batch * m, n, k, 1, ta.floatPointer, lda, tb.floatPointer, ldb, beta, out.floatPointer, n)
            if status != 0 { throw EngineError.backendFailure(op: "matmul", message: "sgemm status \(status) for \(Shape.describe(a.shape)) @ \(Shape.describe(b.shape))") }
            return out
        }
        for i in 0..<batch {
            let pa = ta.floatPointer + batchOffset(ta, i)
            let pb = tb.floatPointer + (sharedB ? 0 : batchOffset(tb, i))
            let status = ck_sgemm(transA, transB, m, n, k, 1, pa, lda, pb, ldb, beta, out.floatPointer + i * m * n, n)
            if status != 0 { throw EngineError.backendFailure(op: "matmul", message: "sgemm status \(status) for \(Shape.describe(a.shape)) @ \(Shape.describe(b.shape))") }
        }
        return out
    }

    private func convShape(_ x: [Int], _ w: [Int], stride: Int, padding: Int) -> ck_conv_shape {
        let k = w[2]
        let oh = (x[2] + 2 * padding - k) / stride + 1, ow = (x[3] + 2 * padding - k) / stride + 1
        return ck_conv_shape(n: Int32(x[0]), c: Int32(x[1]), h: Int32(x[2]), w: Int32(x[3]), o: Int32(w[0]), k: Int32(k),
                             stride: Int32(stride), pad: Int32(padding), oh: Int32(oh), ow: Int32(ow))
    }

    func check(_ status: Int32, _ op: String) throws {
        if status != 0 { throw EngineError.backendFailure(op: op, message: String(cString: ck_conv_last_error())) }
    }

    /// Frozen f32 weights (no gradient wanted, a whole storage) are identified to oneDNN so that their
    /// blocked copy is made once and reused; trainable weights are reordered on every call, and so
    /// are 16-bit ones (an f32 copy kept beside them would undo the memory they save).
    private func weightKey(_ w: Tensor) -> UInt64 {
        guard w.dtype == .f32, !w.requiresGrad, w.offset == 0, w.count == w.storage.count else { return 0 }
        w.storage.hasDerivedCache = true
        return w.storage.id
    }

    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, adding residual: Tensor?) throws -> Tensor {
        if weight.shape[2] == 1 && stride == 1 && padding == 0 { return try pointwiseConv2d(x, weight: weight, bias: bias, adding: residual) }
        if let product = try patchProductConv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, adding: residual) {
            return product
        }
        var s = convShape(x.shape, weight.shape, stride: stride, padding: padding)
        let y = try output([x.shape[0], weight.shape[0], Int(s.oh), Int(s.ow)], "conv2d")
        if let tile = WinogradConvolution.tile(kernel: weight.shape[2], stride: stride, padding: padding, channels: x.shape[1],
                                               outputs: weight.shape[0], n: x.shape[0], h: x.shape[2], w: x.shape[3]) {
            try WinogradConvolution.convolve(x, weight: weight, backward: false, tile: tile, bias: bias, adding: residual, into: y)
            return y
        }
        let key = weightKey(weight)
        try withWidened(weight) { weight in
            try check(ck_conv2d_forward(&s, x.floatPointer, weight.floatPointer, key, bias?.floatPointer, y.floatPointer), "conv2d")
        }
        if let residual { // in place: ck_binary reads each element before writing it
            ck_binary(CK_BINARY_ADD, y.floatPointer, [1], residual.floatPointer, [1], y.floatPointer, [Int64(y.count)], 1)
        }
        return y
    }

    /// A 1x1 convolution is a matrix product per image, y[b] (O x HW) = W (O x C) x[b] (C x HW), done
    /// in place on NCHW: no blocked copies of the activations (oneDNN's direct path makes them, some
    /// hundreds of MB at the VAE's 512x512 layers), and sgemm's rate on these shapes.
    private func pointwiseConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, adding residual: Tensor?) throws -> Tensor {
        let (n, c, h, wd, o) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], weight.shape[0])
        let hw = h * wd
        let y = try output([n, o, h, wd], "conv2d")
        if try pointwiseProductsInBF16(x, weight: weight, bias: bias, adding: residual, into: y) { return y }
        let accumulate = bias != nil || residual != nil
        if accumulate { ck_fill_each_row(y.floatPointer, bias?.floatPointer, o, residual?.floatPointer, n * o, hw) }
        try withWidened(weight) { w in
            for b in 0..<n {
                let status = ck_sgemm(noTranspose, noTranspose, o, hw, c, 1, w.floatPointer, c, x.floatPointer + b * c * hw, hw,
                                      accumulate ? 1 : 0, y.floatPointer + b * o * hw, hw)
                if status != 0 { throw EngineError.backendFailure(op: "conv2d", message: "sgemm status \(status) for a 1x1 convolution of \(Shape.describe(x.shape))") }
            }
        }
        return y
    }

    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: [Int], stride: Int, padding: Int) throws -> Tensor {
        if let dx = try patchProductConv2dBackwardData(dy, weight: weight, inputShape: inputShape, stride: stride, padding: padding) {
            return dx
        }
        var s = convShape(inputShape, weight.shape, stride: stride, padding: padding)
        let dx = try output(inputShape, "conv2d backward")
        if let tile = WinogradConvolution.tile(kernel: weight.shape[2], stride: stride, padding: padding, channels: weight.shape[0],
                                               outputs: weight.shape[1], n: inputShape[0], h: inputShape[2], w: inputShape[3],
                                               backward: true) {
            try WinogradConvolution.convolve(dy, weight: weight, backward: true, tile: tile, bias: nil, adding: nil, into: dx)
            return dx
        }
        let key = weightKey(weight)
        try withWidened(weight) { weight in
            try check(ck_conv2d_backward_data(&s, dy.floatPointer, weight.floatPointer, key, dx.floatPointer), "conv2d backward data")
        }
        return dx
    }

    public func conv2dBackwardWeights(_ dy: Tensor, input: Tensor, weightShape: [Int], stride: Int, padding: Int,
                                      withBias: Bool) throws -> (weight: Tensor, bias: Tensor?) {
        var s = convShape(input.shape, weightShape, stride: stride, padding: padding)
        let dw = try output(weightShape, "conv2d backward")
        let db = withBias ? try output([weightShape[0]], "conv2d backward") : nil
        try check(ck_conv2d_backward_weights(&s, input.floatPointer, dy.floatPointer, dw.floatPointer, db?.floatPointer),
                  "conv2d backward weights")
        return (dw, db)
    }

    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        let r = x.rank, h = x.shape[r - 2], w = x.shape[r - 1]
        let y = try output(Array(x.shape.dropLast(2)) + [2 * h, 2 * w], "upsample")
        ck_upsample_nearest2x(x.floatPointer, y.floatPointer, x.count / max(h * w, 1), h, w)
        return y
    }

    public func upsampleNearest2xBackward(_ dy: Tensor) throws -> Tensor {
        let r = dy.rank, h = dy.shape[r - 2] / 2, w = dy.shape[r - 1] / 2
        let dx = try output(Array(dy.shape.dropLast(2)) + [h, w], "upsample backward")
        ck_upsample_nearest2x_backward(dy.floatPointer, dx.floatPointer, dx.count / max(h * w, 1), h, w)
        return dx
    }

    private func ckLayout(_ l: NormLayout) -> ck_norm_shape {
        ck_norm_shape(rows: l.rows, len: l.length, groups: l.groups, ch_per_group: l.channelsPerGroup, spatial: l.spatial, eps: l.eps,
                      silu: l.thenSiLU ? 1 : 0)
    }

    public func norm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, layout: NormLayout) throws -> (y: Tensor, mean: Tensor, rstd: Tensor) {
        let y = try output(x.shape, "norm"), mean = try output([layout.rows], "norm"), rstd = try output([layout.rows], "norm")
        var s = ckLayout(layout)
        ck_norm_forward(&s, x.floatPointer, gamma?.floatPointer, beta?.floatPointer, y.floatPointer, mean.floatPointer, rstd.floatPointer)
        return (y, mean, rstd)
    }

    public func normBackward(_ dy: Tensor, x: Tensor, gamma: Tensor?, mean: Tensor, rstd: Tensor, layout: NormLayout,
                             needParams: Bool) throws -> (dx: Tensor, dgamma: Tensor?, dbeta: Tensor?) {
        let channels = layout.groups * layout.channelsPerGroup
        let dx = try output(x.shape, "norm backward")
        let dg = needParams ? try output([channels], "norm backward") : nil
        let db = needParams ? try output([channels], "norm backward") : nil
        var s = ckLayout(layout)
        ck_norm_backward(&s, x.floatPointer, gamma?.floatPointer, mean.floatPointer, rstd.floatPointer, dy.floatPointer,
                         dx.floatPointer, dg?.floatPointer, db?.floatPointer)
        return (dx, dg, db)
    }

    public func softmax(_ x: Tensor) throws -> Tensor {
        let cols = x.shape.last ?? 1
        let y = try output(x.shape, "softmax")
        ck_softmax_rows(x.floatPointer, y.floatPointer, x.count / max(cols, 1), cols)
        return y
    }

    public func softmaxBackward(y: Tensor, dy: Tensor) throws -> Tensor {
        let cols = y.shape.last ?? 1
        let dx = try output(y.shape, "softmax backward")
        ck_softmax_backward_rows(y.floatPointer, dy.floatPointer, dx.floatPointer, y.count / max(cols, 1), cols)
        return dx
    }

    /// Query rows per attention block: keeps each thread's score block near 4 MiB.
    /// (Measured: 4 MiB blocks beat 0.25-1 MiB ones at 4096 keys, 150 against 110-137 GFLOP/s: the
    /// score GEMM's rows matter more than the L2.)
    static func attentionBlock(keys: Int) -> Int { max(16, min(256, (1 << 20) / max(keys, 1))) }

    private func attentionShape(q: Tensor, k: Tensor, v: Tensor, scale: Float, causal: Bool) -> ck_attention_shape {
        let r = q.rank
        return ck_attention_shape(heads: q.count / max(q.shape[r - 2] * q.shape[r - 1], 1), lq: q.shape[r - 2], lk: k.shape[r - 2],
                                  d: q.shape[r - 1], dv: v.shape[r - 1], scale: scale, causal: causal ? 1 : 0,
                                  block: CPUBackend.attentionBlock(keys: k.shape[r - 2]),
                                  q_off: nil, k_off: nil, v_off: nil, o_off: nil, ldq: 0, ldk: 0, ldv: 0, ldo: 0, compute: 0)
    }

    /// Where each [L, D] slice of a [..., L, D] view starts, relative to its `floatPointer`.
    private func sliceOffsets(_ t: Tensor) -> [Int] {
        let lead = Array(t.shape.dropLast(2)), strides = Array(t.strides.dropLast(2))
        return (0..<lead.reduce(1, *)).map { i in
            var rem = i, off = 0
            for d in stride(from: lead.count - 1, through: 0, by: -1) { off += (rem % lead[d]) * strides[d]; rem /= lead[d] }
            return off
        }
    }

    /// Reads the heads in place from their views and writes the output with q's order of dimensions
    /// in memory (for [B, H, L, d] views of [B, L, H, d] projections: [B, L, H, d]), so that the heads
    /// are merged back without a copy.
    public func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, causal: Bool) throws -> (out: Tensor, lse: Tensor) {
        let q = try q.withUnitLastStride(), k = try k.withUnitLastStride(), v = try v.withUnitLastStride()
        var s = attentionShape(q: q, k: k, v: v, scale: scale, causal: causal)
        let r = q.rank
        let outShape = Array(q.shape.dropLast()) + [Int(s.dv)]
        let o = Tensor(storage: try TensorStorage(dtype: .f32, count: outShape.reduce(1, *), op: "attention", shape: outShape),
                       shape: outShape, strides: q.denseStridesInMemoryOrder(shape: outShape))
        let lse = try output([Int(s.heads), Int(s.lq)], "attention")
        let offsets = [q, k, v, o].map(sliceOffsets)
        let status = offsets[0].withUnsafeBufferPointer { qo in offsets[1].withUnsafeBufferPointer { ko in
            offsets[2].withUnsafeBufferPointer { vo in offsets[3].withUnsafeBufferPointer { oo in
                s.q_off = qo.baseAddress; s.k_off = ko.baseAddress; s.v_off = vo.baseAddress; s.o_off = oo.baseAddress
                s.ldq = q.strides[r - 2]; s.ldk = k.strides[r - 2]; s.ldv = v.strides[r - 2]; s.ldo = o.strides[r - 2]
                s.compute = ProductPrecision.effective.kernelCode
                return ck_attention_forward(&s, q.floatPointer, k.floatPointer, v.floatPointer, o.floatPointer, lse.floatPointer)
            } }
        } }
        if status == -2 { throw EngineError.backendFailure(op: "attention", message: "this CPU has no bf16 dot products") }
        if status != 0 { throw EngineError.outOfMemory(op: "attention", shape: q.shape, bytes: Int(s.block * s.lk * 4)) }
        return (o, lse)
    }

    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor, scale: Float,
                                  causal: Bool) throws -> (dq: Tensor, dk: Tensor, dv: Tensor) {
        var s = attentionShape(q: q, k: k, v: v, scale: scale, causal: causal)
        let dq = try output(q.shape, "attention backward"), dk = try output(k.shape, "attention backward")
        let dv = try output(v.shape, "attention backward")
        if ck_attention_backward(&s, q.floatPointer, k.floatPointer, v.floatPointer, out.floatPointer, lse.floatPointer,
                                 dout.floatPointer, dq.floatPointer, dk.floatPointer, dv.floatPointer) != 0 {
            throw EngineError.outOfMemory(op: "attention backward", shape: q.shape, bytes: Int(2 * s.block * s.lk * 4))
        }
        return (dq, dk, dv)
    }

    public func geglu(_ x: Tensor) throws -> Tensor {
        let half = (x.shape.last ?? 0) / 2
        let y = try output(Array(x.shape.dropLast()) + [half], "geglu")
        ck_geglu(x.floatPointer, y.floatPointer, x.count / max(2 * half, 1), half)
        return y
    }

    public func gegluBackward(x: Tensor, dy: Tensor) throws -> Tensor {
        let half = (x.shape.last ?? 0) / 2
        let dx = try output(x.shape, "geglu backward")
        ck_geglu_backward(x.floatPointer, dy.floatPointer, dx.floatPointer, x.count / max(2 * half, 1), half)
        return dx
    }

    public func embedding(ids: [Int], weight: Tensor) throws -> Tensor {
        let d = weight.shape[1]
        let out = try output([ids.count, d], "embedding")
        for (i, id) in ids.enumerated() {
            (out.floatPointer + i * d).update(from: weight.floatPointer + id * d, count: d)
        }
        return out
    }

    public func embeddingBackward(ids: [Int], dy: Tensor, vocabulary: Int) throws -> Tensor {
        let d = dy.shape.last ?? 0
        let dw = try Tensor.zeros([vocabulary, d])
        ck_embedding_backward(ids.map { Int64($0) }, ids.count, dy.floatPointer, dw.floatPointer, d)
        return dw
    }
}
