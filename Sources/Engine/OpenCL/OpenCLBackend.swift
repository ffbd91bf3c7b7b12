/// The OpenCL backend: every primitive of `Backend` as OpenCL kernels (`OpenCLKernels`) on one
/// device. Tensors stay in device memory between operations (see `TensorStorage`'s residency):
/// inputs are uploaded when the device copy is stale (weights once), results are only read back
/// when host code reads them. Matrix products go through CLBlast (or a tiled kernel,
/// `OpenCLGEMM.swift`); convolution unfolds patches (im2col) and multiplies; attention processes
/// blocks of query rows against all keys like the CPU backend. Frozen 16-bit weights stay 16-bit on
/// the device and are widened per operation. See docs/opencl.md.
public final class OpenCLBackend: Backend, @unchecked Sendable {
    public let name: String
    let cl: OpenCLContext
    /// The device computed on.
    public var device: OpenCLDevice { cl.device }
    /// Whether the kernels were loaded from the on-disk binary cache (not compiled).
    public var kernelsFromCache: Bool { cl.programFromCache }

    /// How matrix products are computed (convolution and attention use them too).
    public let gemmImplementation: GEMMImplementation
    /// How forward convolutions are computed.
    public let convolutionImplementation: ConvolutionImplementation
    /// Largest patch matrix (floats) a forward convolution unfolds at once (256 MiB).
    let convolutionScratchFloats: Int

    /// Opens OpenCL device `deviceIndex` (numbered as `OpenCLDevices.list()`), or the first GPU,
    /// else the first device. Throws a clear error when there is no OpenCL runtime or device.
    /// `gemm` nil: `SDSHELL_OPENCL_GEMM` (clblast or tiled), else CLBlast; `convolution` nil:
    /// `SDSHELL_OPENCL_CONV` (unfolded or convgemm), else unfolded.
    public convenience init(deviceIndex: Int? = nil, gemm: GEMMImplementation? = nil,
                            convolution: ConvolutionImplementation? = nil) throws {
        try self.init(deviceIndex: deviceIndex, gemm: gemm, convolution: convolution, convolutionScratchFloats: 1 << 26)
    }

    /// `convolutionScratchFloats`: see the property (tests make it small to split convolutions).
    init(deviceIndex: Int?, gemm: GEMMImplementation?, convolution: ConvolutionImplementation?, convolutionScratchFloats: Int) throws {
        cl = try OpenCLContext(deviceIndex: deviceIndex)
        name = "opencl"
        gemmImplementation = gemm ?? .fromEnvironment
        convolutionImplementation = convolution ?? .fromEnvironment
        self.convolutionScratchFloats = convolutionScratchFloats
    }

    /// Waits until every queued kernel has finished (for timing; results are read back on demand anyway).
    public func synchronize() throws { try cl.finish() }

    /// Kernel times (with `SDSHELL_OPENCL_PROFILE=1`) and the bytes moved between host and device.
    public func profileReport() -> String { cl.profileReport() }

    /// Tensor copies between host and this backend's device so far.
    public var transfers: DeviceTransfers { cl.serialized { DeviceTransfers(uploads: cl.tensorUploads, readBacks: cl.tensorReadBacks) } }

    // MARK: - Buffers

    /// The device buffer of `t`'s storage for reading (uploaded when stale).
    private func read(_ t: Tensor) throws -> OpenCLBuffer {
        try t.storage.deviceBuffer(context: cl, access: .read, make: cl.makeBuffer)
    }

    /// A device buffer holding `t`'s elements contiguously from element 0: the storage's own when
    /// it already is, else a compact copy.
    private func dense(_ t: Tensor) throws -> OpenCLBuffer {
        if t.offset == 0 && t.isContiguous { return try read(t) }
        let c = try Tensor(uninitialized: t.shape, op: "opencl compact")
        try copy(t, into: c)
        return try read(c)
    }

    /// A new contiguous f32 tensor whose elements the kernels will write.
    private func output(_ shape: [Int], _ op: String, dtype: DType = .f32) throws -> (Tensor, OpenCLBuffer) {
        let t = try Tensor(uninitialized: shape, dtype: dtype, op: op)
        return (t, try t.storage.deviceBuffer(context: cl, access: .overwrite, make: cl.makeBuffer))
    }

    private func scratch(_ floats: Int) throws -> OpenCLBuffer { try cl.makeBuffer(floats * 4) }

    private func intBuffer(_ values: [Int]) throws -> OpenCLBuffer {
        let b = try cl.makeBuffer(values.count * 4)
        let ints = values.map { Int32($0) }
        try ints.withUnsafeBytes { try b.upload(from: $0.baseAddress!, bytes: $0.count) }
        return b
    }

    /// Launches an element-wise kernel over `count` work-items: the count is its last argument
    /// and the range is rounded up to a multiple of 256 (the kernel returns past the count), so
    /// that drivers can pick full work-groups whatever the count.
    private func launchElements(_ kernel: String, _ args: [KernelArgument], count: Int) throws {
        if count == 0 { return }
        try cl.launch(kernel, args + [.long(count)], global: [(count + 255) / 256 * 256])
    }

    /// Launches a row kernel: one work-group of `OpenCLKernels.reductionGroup` items per row.
    private func launchRows(_ kernel: String, _ args: [KernelArgument], rows: Int) throws {
        let g = OpenCLKernels.reductionGroup
        try cl.launch(kernel, args, global: [rows * g], local: [g])
    }

    // MARK: - Layout

    public func copy(_ src: Tensor, into dst: Tensor) throws {
        try src.requireF32("copy"); try dst.requireF32("copy")
        guard src.shape == dst.shape else {
            throw EngineError.shapeMismatch(op: "copy", shapes: [src.shape, dst.shape], reason: "shapes must be equal")
        }
        guard src.rank <= 8 else { throw EngineError.invalidArgument(op: "copy", message: "rank \(src.rank) above 8") }
        let s = try read(src)
        // Unless dst covers its whole storage, the elements around the region must be kept.
        let whole = dst.offset == 0 && dst.isContiguous && dst.count == dst.storage.count
        let d = try dst.storage.deviceBuffer(context: cl, access: whole ? .overwrite : .update, make: cl.makeBuffer)
        let rank = max(src.rank, 1)
        try launchElements("copy_strided", [.buffer(s), .long(src.offset), .long8(src.rank == 0 ? [0] : src.strides), .buffer(d),
                                       .long(dst.offset), .long8(dst.rank == 0 ? [0] : dst.strides),
                                       .long8(src.rank == 0 ? [1] : src.shape), .int(rank)], count: src.count)
    }

    public func convert(_ x: Tensor, to dtype: DType) throws -> Tensor {
        let n = x.count
        switch (x.dtype, dtype) {
        case (.f16, .bf16), (.bf16, .f16): return try convert(convert(x, to: .f32), to: dtype)
        default: break
        }
        let src = try read(x)
        let (y, dst) = try output(x.shape, "convert", dtype: dtype)
        switch (x.dtype, dtype) {
        case (.f32, .f16): try launchElements("f32_to_f16", [.buffer(src), .long(x.offset), .buffer(dst)], count: n)
        case (.f32, .bf16): try launchElements("f32_to_bf16", [.buffer(src), .long(x.offset), .buffer(dst)], count: n)
        case (.f16, .f32): try launchElements("f16_to_f32", [.buffer(src), .long(x.offset), .buffer(dst)], count: n)
        case (.bf16, .f32): try launchElements("bf16_to_f32", [.buffer(src), .long(x.offset), .buffer(dst)], count: n)
        default:
            try launchElements("copy_bytes", [.buffer(src), .long(x.offset * x.dtype.size), .buffer(dst)], count: n * dtype.size)
        }
        return y
    }

    // MARK: - Element-wise

    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        let (op, p0, p1) = op.code
        let code = Int(op.rawValue)
        let xs = try read(x)
        let (y, ys) = try output(x.shape, "unary")
        try launchElements("unary", [.int(code), .buffer(xs), .long(x.offset), .buffer(ys), .float(p0), .float(p1)], count: x.count)
        return y
    }

    public func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor?, dy: Tensor) throws -> Tensor {
        let (op, p0, p1) = op.code
        let code = Int(op.rawValue)
        let xs = try read(x), dys = try read(dy)
        let ys = try y.map(read) ?? xs
        let (dx, dxs) = try output(x.shape, "unary backward")
        try launchElements("unary_backward", [.int(code), .buffer(xs), .long(x.offset), .buffer(ys), .long(y?.offset ?? 0),
                                         .int(y == nil ? 0 : 1), .buffer(dys), .long(dy.offset), .buffer(dxs), .float(p0), .float(p1)],
                      count: x.count)
        return dx
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) throws -> Tensor {
        guard shape.count <= 8 else { throw EngineError.invalidArgument(op: "binary", message: "rank \(shape.count) above 8") }
        let code = Int(op.code.rawValue)
        let am = try read(a), bm = try read(b)
        let (out, om) = try output(shape, "binary")
        let scalar = shape.isEmpty
        try launchElements("binary", [.int(code), .buffer(am), .long(a.offset), .long8(scalar ? [0] : a.strides), .buffer(bm), .long(b.offset),
                                 .long8(scalar ? [0] : b.strides), .buffer(om), .long8(scalar ? [1] : shape), .int(max(shape.count, 1))],
                      count: out.count)
        return out
    }

    public func affine(_ x: Tensor, mul: Float, add: Float) throws -> Tensor {
        let xs = try read(x)
        let (y, ys) = try output(x.shape, "affine")
        try launchElements("affine", [.buffer(xs), .long(x.offset), .buffer(ys), .float(mul), .float(add)], count: x.count)
        return y
    }

    // MARK: - Reductions

    public func rowSum(_ x: Tensor, rows: Int, cols: Int) throws -> Tensor {
        let xs = try read(x)
        let (out, os) = try output([rows], "sum")
        try launchRows("row_sum", [.buffer(xs), .long(x.offset), .long(cols), .buffer(os)], rows: rows)
        return out
    }

    public func rowMeanVar(_ x: Tensor, rows: Int, cols: Int) throws -> (mean: Tensor, variance: Tensor) {
        let xs = try read(x)
        let (m, ms) = try output([rows], "mean"), (v, vs) = try output([rows], "var")
        try launchRows("row_mean_var", [.buffer(xs), .long(x.offset), .long(cols), .buffer(ms), .buffer(vs)], rows: rows)
        return (m, v)
    }

    // MARK: - GEMM

    /// `t` [..., R, C] as a GEMM operand: its batch dimensions must collapse into one stride
    /// (else a contiguous copy is used).
    private func operand(_ t: Tensor, shared: Bool) throws -> Operand {
        let r = t.rank
        if shared { return Operand(buffer: try read(t), offset: t.offset, batchStride: 0, rowStride: t.strides[r - 2], colStride: t.strides[r - 1]) }
        var batchStride: Int? = 0, expected: Int? = nil
        for d in stride(from: r - 3, through: 0, by: -1) where t.shape[d] != 1 {
            if let e = expected {
                if t.strides[d] != e { batchStride = nil; break }
            } else {
                batchStride = t.strides[d]
            }
            expected = t.strides[d] * t.shape[d]
        }
        if let batchStride {
            return Operand(buffer: try read(t), offset: t.offset, batchStride: batchStride, rowStride: t.strides[r - 2], colStride: t.strides[r - 1])
        }
        let c = try Tensor(uninitialized: t.shape, op: "matmul")
        try copy(t, into: c)
        let rows = t.shape[r - 2], cols = t.shape[r - 1]
        return Operand(buffer: try read(c), offset: 0, batchStride: rows * cols, rowStride: cols, colStride: 1)
    }

    public func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?) throws -> Tensor {
        if let addend {
            let product = try matmul(a, b, bias: bias, adding: nil)
            return try binary(.add, product, addend, shape: product.shape)
        }
        let b = try widened(b)
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        let batchShape = Array(a.shape.dropLast(2))
        let batch = batchShape.reduce(1, *)
        let oa = try operand(a, shared: false), ob = try operand(b, shared: b.rank == 2)
        let biasMem = try bias.map(dense)
        let (out, om) = try output(batchShape + [m, n], "matmul")
        try gemm(m: m, n: n, k: k, batch: batch, oa, ob, Operand(buffer: om, offset: 0, batchStride: m * n, rowStride: n, colStride: 1),
                 bias: biasMem)
        return out
    }

    // MARK: - Convolution

    struct ConvGeometry {
        let n, c, h, w, o, k, stride, pad, oh, ow: Int
        var patch: Int { c * k * k }
        var positions: Int { oh * ow }
        /// 1x1, stride 1, no padding: the image itself is the patch matrix.
        var isPointwise: Bool { k == 1 && stride == 1 && pad == 0 }
        init(_ x: [Int], _ wt: [Int], stride: Int, padding: Int) {
            n = x[0]; c = x[1]; h = x[2]; w = x[3]; o = wt[0]; k = wt[2]
            self.stride = stride; pad = padding
            oh = (h + 2 * padding - k) / stride + 1; ow = (w + 2 * padding - k) / stride + 1
        }
    }

    /// The patch matrix [C k k, count] of image `i` for output positions [p0, p0 + count) (the image
    /// itself when pointwise).
    private func patches(_ g: ConvGeometry, x: OpenCLBuffer, image i: Int, positions p0: Int = 0, count: Int? = nil,
                         into cols: OpenCLBuffer?) throws -> Operand {
        let imageOffset = i * g.c * g.h * g.w, count = count ?? g.positions
        guard let cols else { return Operand(buffer: x, offset: imageOffset + p0, batchStride: 0, rowStride: g.h * g.w, colStride: 1) }
        try launchElements("im2col", [.buffer(x), .long(imageOffset), .int(g.h), .int(g.w), .int(g.k), .int(g.stride), .int(g.pad),
                                      .int(g.oh), .int(g.ow), .long(p0), .long(count), .buffer(cols)], count: g.patch * count)
        return Operand(buffer: cols, offset: 0, batchStride: 0, rowStride: count, colStride: 1)
    }

    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, adding residual: Tensor?) throws -> Tensor {
        if let residual {
            let y = try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, adding: nil)
            return try binary(.add, y, residual, shape: y.shape)
        }
        let g = ConvGeometry(x.shape, weight.shape, stride: stride, padding: padding)
        let xs = try dense(x), ws = try dense(widened(weight)), bs = try bias.map(dense)
        let (y, ys) = try output([g.n, g.o, g.oh, g.ow], "conv2d")
        if try convgemm(g, x: xs, weight: ws, into: ys) {
            if let bs { try launchElements("add_channel_bias", [.buffer(ys), .buffer(bs), .long(g.o), .long(g.positions)], count: y.count) }
            return y
        }
        // Output positions per patch matrix: bounded scratch (the VAE decoder's 3x3 convolutions at
        // 512x512 would otherwise unfold into 1.2 GB).
        let chunk = g.isPointwise ? g.positions : max(1, min(g.positions, convolutionScratchFloats / max(g.patch, 1)))
        let cols = g.isPointwise ? nil : try scratch(g.patch * chunk)
        for i in 0..<g.n {
            for p0 in Swift.stride(from: 0, to: g.positions, by: chunk) {
                let count = min(chunk, g.positions - p0)
                let p = try patches(g, x: xs, image: i, positions: p0, count: count, into: cols)
                try gemm(m: g.o, n: count, k: g.patch, batch: 1,
                         Operand(buffer: ws, offset: 0, batchStride: 0, rowStride: g.patch, colStride: 1), p,
                         Operand(buffer: ys, offset: i * g.o * g.positions + p0, batchStride: 0, rowStride: g.positions, colStride: 1),
                         bias: bs, biasPerRow: true)
            }
        }
        return y
    }

    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: [Int], stride: Int, padding: Int) throws -> Tensor {
        let g = ConvGeometry(inputShape, weight.shape, stride: stride, padding: padding)
        let dys = try dense(dy), ws = try dense(widened(weight))
        let (dx, dxs) = try output(inputShape, "conv2d backward")
        let cols = g.isPointwise ? nil : try scratch(g.patch * g.positions)
        // W^T as [C k k, O].
        let wt = Operand(buffer: ws, offset: 0, batchStride: 0, rowStride: 1, colStride: g.patch)
        for i in 0..<g.n {
            let dyi = Operand(buffer: dys, offset: i * g.o * g.positions, batchStride: 0, rowStride: g.positions, colStride: 1)
            if let cols {
                try gemm(m: g.patch, n: g.positions, k: g.o, batch: 1, wt, dyi,
                         Operand(buffer: cols, offset: 0, batchStride: 0, rowStride: g.positions, colStride: 1))
                try launchElements("col2im", [.buffer(cols), .int(g.h), .int(g.w), .int(g.k), .int(g.stride), .int(g.pad), .int(g.oh),
                                         .int(g.ow), .buffer(dxs), .long(i * g.c * g.h * g.w)], count: g.c * g.h * g.w)
            } else {
                try gemm(m: g.patch, n: g.positions, k: g.o, batch: 1, wt, dyi,
                         Operand(buffer: dxs, offset: i * g.c * g.h * g.w, batchStride: 0, rowStride: g.positions, colStride: 1))
            }
        }
        return dx
    }

    public func conv2dBackwardWeights(_ dy: Tensor, input: Tensor, weightShape: [Int], stride: Int, padding: Int,
                                      withBias: Bool) throws -> (weight: Tensor, bias: Tensor?) {
        let g = ConvGeometry(input.shape, weightShape, stride: stride, padding: padding)
        let dys = try dense(dy), xs = try dense(input)
        let (dw, dws) = try output(weightShape, "conv2d backward")
        let cols = g.isPointwise ? nil : try scratch(g.patch * g.positions)
        if g.n == 0 { try launchElements("fill", [.buffer(dws), .float(0)], count: dw.count) }
        for i in 0..<g.n {
            let p = try patches(g, x: xs, image: i, into: cols)
            // dW [O, C k k] += dy_i [O, P] @ patches_i^T [P, C k k]
            try gemm(m: g.o, n: g.patch, k: g.positions, batch: 1, beta: i == 0 ? 0 : 1,
                     Operand(buffer: dys, offset: i * g.o * g.positions, batchStride: 0, rowStride: g.positions, colStride: 1),
                     Operand(buffer: p.buffer, offset: p.offset, batchStride: 0, rowStride: 1, colStride: p.rowStride),
                     Operand(buffer: dws, offset: 0, batchStride: 0, rowStride: g.patch, colStride: 1))
        }
        var db: Tensor? = nil
        if withBias {
            let (b, bs) = try output([g.o], "conv2d backward")
            try launchRows("channel_sum", [.buffer(dys), .int(g.n), .int(g.o), .long(g.positions), .buffer(bs)], rows: g.o)
            db = b
        }
        return (dw, db)
    }

    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        let r = x.rank, h = x.shape[r - 2], w = x.shape[r - 1]
        let xs = try dense(x)
        let (y, ys) = try output(Array(x.shape.dropLast(2)) + [2 * h, 2 * w], "upsample")
        try launchElements("upsample2x", [.buffer(xs), .int(h), .int(w), .buffer(ys)], count: y.count)
        return y
    }

    public func upsampleNearest2xBackward(_ dy: Tensor) throws -> Tensor {
        let r = dy.rank, h = dy.shape[r - 2] / 2, w = dy.shape[r - 1] / 2
        let dys = try dense(dy)
        let (dx, dxs) = try output(Array(dy.shape.dropLast(2)) + [h, w], "upsample backward")
        try launchElements("upsample2x_backward", [.buffer(dys), .int(h), .int(w), .buffer(dxs)], count: dx.count)
        return dx
    }

    // MARK: - Normalisation

    private func layoutArguments(_ l: NormLayout) -> [KernelArgument] {
        [.long(l.length), .int(l.groups), .int(l.channelsPerGroup), .long(l.spatial)]
    }

    public func norm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, layout: NormLayout) throws -> (y: Tensor, mean: Tensor, rstd: Tensor) {
        if layout.thenSiLU {
            var plain = layout
            plain.thenSiLU = false
            let (y, mean, rstd) = try norm(x, gamma: gamma, beta: beta, layout: plain)
            return (try unary(.silu, y), mean, rstd)
        }
        let xs = try dense(x), gs = try gamma.map(dense), bs = try beta.map(dense)
        let (y, ys) = try output(x.shape, "norm")
        let (mean, ms) = try output([layout.rows], "norm"), (rstd, rs) = try output([layout.rows], "norm")
        try launchRows("norm_forward", [.buffer(xs)] + layoutArguments(layout) + [
            .float(layout.eps), .buffer(gs ?? xs), .int(gs == nil ? 0 : 1), .buffer(bs ?? xs), .int(bs == nil ? 0 : 1),
            .buffer(ys), .buffer(ms), .buffer(rs),
        ], rows: layout.rows)
        return (y, mean, rstd)
    }

    public func normBackward(_ dy: Tensor, x: Tensor, gamma: Tensor?, mean: Tensor, rstd: Tensor, layout: NormLayout,
                             needParams: Bool) throws -> (dx: Tensor, dgamma: Tensor?, dbeta: Tensor?) {
        let xs = try dense(x), dys = try dense(dy), gs = try gamma.map(dense), ms = try dense(mean), rs = try dense(rstd)
        let (dx, dxs) = try output(x.shape, "norm backward")
        try launchRows("norm_backward_dx", [.buffer(xs), .buffer(dys)] + layoutArguments(layout) + [
            .buffer(gs ?? xs), .int(gs == nil ? 0 : 1), .buffer(ms), .buffer(rs), .buffer(dxs),
        ], rows: layout.rows)
        guard needParams else { return (dx, nil, nil) }
        let channels = layout.groups * layout.channelsPerGroup
        let (dg, dgs) = try output([channels], "norm backward"), (db, dbs) = try output([channels], "norm backward")
        try launchRows("norm_backward_params", [.buffer(xs), .buffer(dys), .long(layout.rows), .long(layout.length), .int(layout.groups),
                                                .int(layout.channelsPerGroup), .long(layout.spatial), .buffer(ms), .buffer(rs),
                                                .buffer(dgs), .buffer(dbs)], rows: channels)
        return (dx, dg, db)
    }

    public func softmax(_ x: Tensor) throws -> Tensor {
        let cols = x.shape.last ?? 1
        let xs = try dense(x)
        let (y, ys) = try output(x.shape, "softmax")
        try launchRows("softmax_rows", [.buffer(xs), .long(cols), .buffer(ys)], rows: x.count / max(cols, 1))
        return y
    }

    public func softmaxBackward(y: Tensor, dy: Tensor) throws -> Tensor {
        let cols = y.shape.last ?? 1
        let ys = try dense(y), dys = try dense(dy)
        let (dx, dxs) = try output(y.shape, "softmax backward")
        try launchRows("softmax_backward_rows", [.buffer(ys), .buffer(dys), .long(cols), .buffer(dxs)], rows: y.count / max(cols, 1))
        return dx
    }

    // MARK: - Attention

    /// Query rows per block: the score block of every slice stays near 64 MiB.
    static func attentionBlock(heads: Int, queries: Int, keys: Int) -> Int {
        max(1, min(queries, (1 << 24) / max(heads * keys, 1)))
    }

    private struct AttentionShape {
        let heads, lq, lk, d, dv: Int
        init(q: Tensor, k: Tensor, v: Tensor) {
            heads = q.shape[0]; lq = q.shape[1]; lk = k.shape[1]; d = q.shape[2]; dv = v.shape[2]
        }
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, causal: Bool) throws -> (out: Tensor, lse: Tensor) {
        let outShape = Array(q.shape.dropLast()) + [v.shape[v.rank - 1]]
        let q = try q.slices(), k = try k.slices(), v = try v.slices()
        let s = AttentionShape(q: q, k: k, v: v)
        let qs = try dense(q), ks = try dense(k), vs = try dense(v)
        let (o, os) = try output([s.heads, s.lq, s.dv], "attention")
        let (lse, ls) = try output([s.heads, s.lq], "attention")
        let block = OpenCLBackend.attentionBlock(heads: s.heads, queries: s.lq, keys: s.lk)
        let scores = try scratch(s.heads * block * s.lk)
        for r0 in stride(from: 0, to: s.lq, by: block) {
            let n = min(block, s.lq - r0)
            // S = scale Q_block K^T
            try gemm(m: n, n: s.lk, k: s.d, batch: s.heads, alpha: scale,
                     Operand(buffer: qs, offset: r0 * s.d, batchStride: s.lq * s.d, rowStride: s.d, colStride: 1),
                     Operand(buffer: ks, offset: 0, batchStride: s.lk * s.d, rowStride: 1, colStride: s.d),
                     Operand(buffer: scores, offset: 0, batchStride: n * s.lk, rowStride: s.lk, colStride: 1))
            try launchRows("attention_softmax", [.buffer(scores), .long(n), .long(s.lk), .long(s.lq), .long(r0), .int(causal ? 1 : 0),
                                                 .buffer(ls)], rows: s.heads * n)
            // O_block = P V
            try gemm(m: n, n: s.dv, k: s.lk, batch: s.heads,
                     Operand(buffer: scores, offset: 0, batchStride: n * s.lk, rowStride: s.lk, colStride: 1),
                     Operand(buffer: vs, offset: 0, batchStride: s.lk * s.dv, rowStride: s.dv, colStride: 1),
                     Operand(buffer: os, offset: r0 * s.dv, batchStride: s.lq * s.dv, rowStride: s.dv, colStride: 1))
        }
        return (try o.reshaped(outShape), lse)
    }

    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor, scale: Float,
                                  causal: Bool) throws -> (dq: Tensor, dk: Tensor, dv: Tensor) {
        let s = AttentionShape(q: q, k: k, v: v)
        let qs = try dense(q), ks = try dense(k), vs = try dense(v), os = try dense(out), ls = try dense(lse), gs = try dense(dout)
        let (dq, dqs) = try output(q.shape, "attention backward"), (dk, dks) = try output(k.shape, "attention backward")
        let (dv, dvs) = try output(v.shape, "attention backward")
        if s.lq == 0 {
            try launchElements("fill", [.buffer(dks), .float(0)], count: dk.count)
            try launchElements("fill", [.buffer(dvs), .float(0)], count: dv.count)
            return (dq, dk, dv)
        }
        let block = OpenCLBackend.attentionBlock(heads: s.heads, queries: s.lq, keys: s.lk)
        let p = try scratch(s.heads * block * s.lk), dp = try scratch(s.heads * block * s.lk), dd = try scratch(s.heads * block)
        for r0 in stride(from: 0, to: s.lq, by: block) {
            let n = min(block, s.lq - r0), accumulate: Float = r0 == 0 ? 0 : 1
            let scoreBlock = Operand(buffer: p, offset: 0, batchStride: n * s.lk, rowStride: s.lk, colStride: 1)
            let scoreBlockT = Operand(buffer: p, offset: 0, batchStride: n * s.lk, rowStride: 1, colStride: s.lk)
            let dsBlock = Operand(buffer: dp, offset: 0, batchStride: n * s.lk, rowStride: s.lk, colStride: 1)
            let dsBlockT = Operand(buffer: dp, offset: 0, batchStride: n * s.lk, rowStride: 1, colStride: s.lk)
            let doutBlock = Operand(buffer: gs, offset: r0 * s.dv, batchStride: s.lq * s.dv, rowStride: s.dv, colStride: 1)
            // P = exp(scale Q K^T - lse)
            try gemm(m: n, n: s.lk, k: s.d, batch: s.heads, alpha: scale,
                     Operand(buffer: qs, offset: r0 * s.d, batchStride: s.lq * s.d, rowStride: s.d, colStride: 1),
                     Operand(buffer: ks, offset: 0, batchStride: s.lk * s.d, rowStride: 1, colStride: s.d), scoreBlock)
            try launchElements("attention_exp", [.buffer(p), .long(n), .long(s.lk), .long(s.lq), .long(r0), .int(causal ? 1 : 0),
                                            .buffer(ls)], count: s.heads * n * s.lk)
            // dV += P^T dO
            try gemm(m: s.lk, n: s.dv, k: n, batch: s.heads, beta: accumulate, scoreBlockT, doutBlock,
                     Operand(buffer: dvs, offset: 0, batchStride: s.lk * s.dv, rowStride: s.dv, colStride: 1))
            // dP = dO V^T
            try gemm(m: n, n: s.lk, k: s.dv, batch: s.heads, doutBlock,
                     Operand(buffer: vs, offset: 0, batchStride: s.lk * s.dv, rowStride: 1, colStride: s.dv), dsBlock)
            // D = rowdot(O, dO); dS = P (dP - D) scale
            try launchRows("attention_rowdot", [.buffer(os), .buffer(gs), .long(n), .long(s.lq), .long(r0), .long(s.dv), .buffer(dd)],
                           rows: s.heads * n)
            try launchElements("attention_dscores", [.buffer(p), .buffer(dp), .buffer(dd), .long(s.lk), .float(scale)],
                          count: s.heads * n * s.lk)
            // dQ_block = dS K; dK += dS^T Q_block
            try gemm(m: n, n: s.d, k: s.lk, batch: s.heads, dsBlock,
                     Operand(buffer: ks, offset: 0, batchStride: s.lk * s.d, rowStride: s.d, colStride: 1),
                     Operand(buffer: dqs, offset: r0 * s.d, batchStride: s.lq * s.d, rowStride: s.d, colStride: 1))
            try gemm(m: s.lk, n: s.d, k: n, batch: s.heads, beta: accumulate, dsBlockT,
                     Operand(buffer: qs, offset: r0 * s.d, batchStride: s.lq * s.d, rowStride: s.d, colStride: 1),
                     Operand(buffer: dks, offset: 0, batchStride: s.lk * s.d, rowStride: s.d, colStride: 1))
        }
        return (dq, dk, dv)
    }

    // MARK: - Small layers

    public func geglu(_ x: Tensor) throws -> Tensor {
        let half = (x.shape.last ?? 0) / 2
        let xs = try dense(x)
        let (y, ys) = try output(Array(x.shape.dropLast()) + [half], "geglu")
        try launchElements("geglu", [.buffer(xs), .long(half), .buffer(ys)], count: y.count)
        return y
    }

    public func gegluBackward(x: Tensor, dy: Tensor) throws -> Tensor {
        let half = (x.shape.last ?? 0) / 2
        let xs = try dense(x), dys = try dense(dy)
        let (dx, dxs) = try output(x.shape, "geglu backward")
        try launchElements("geglu_backward", [.buffer(xs), .buffer(dys), .long(half), .buffer(dxs)], count: dy.count)
        return dx
    }

    public func embedding(ids: [Int], weight: Tensor) throws -> Tensor {
        let d = weight.shape[1]
        let ws = try dense(weight)
        let (out, os) = try output([ids.count, d], "embedding")
        if ids.isEmpty { return out }
        let idBuffer = try intBuffer(ids)
        try launchElements("embedding", [.buffer(ws), .buffer(idBuffer), .long(d), .buffer(os)], count: ids.count * d)
        return out
    }

    public func embeddingBackward(ids: [Int], dy: Tensor, vocabulary: Int) throws -> Tensor {
        let d = dy.shape.last ?? 0
        let (dw, dws) = try output([vocabulary, d], "embedding backward")
        try launchElements("fill", [.buffer(dws), .float(0)], count: dw.count)
        if ids.isEmpty { return dw }
        // Positions grouped by id (in order), so each row of dw sums its gradients as the CPU does.
        var positions: [Int: [Int]] = [:]
        for (i, id) in ids.enumerated() { positions[id, default: []].append(i) }
        let unique = positions.keys.sorted()
        var starts = [0], flat: [Int] = []
        for id in unique { flat += positions[id]!; starts.append(flat.count) }
        let dys = try dense(dy)
        let u = try intBuffer(unique), st = try intBuffer(starts), ps = try intBuffer(flat)
        try launchElements("embedding_backward", [.buffer(dys), .buffer(u), .buffer(st), .buffer(ps), .long(d), .buffer(dws)],
                      count: unique.count * d)
        return dw
    }
}
