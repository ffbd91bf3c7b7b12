import CKernels

extension CPUBackend {
    /// Convolutions with at most this many output pixels in all (1280 channels at 4x4 in a CFG
    /// batch: the UNet's deepest layers at 256x256) go through `patchProductConv2d`.
    static let patchProductPixels = 32
    /// The patch rows are made only up to this many floats (64 MB).
    static let patchRowsLimit = 16 << 20

    /// Whether a convolution (or, `backward`, its backward-data pass) goes through the patch-row
    /// products below: a tiny output with wide filters, bound by reading its weights (59 MB for
    /// 1280 -> 1280 at 4x4, for 0.94 GFLOP), where the weights stream at about twice the rate of the
    /// direct convolution's (docs/performance.md); and wherever products are taken in bf16 and
    /// Winograd is not. (16-bit weights of 512 channels and more on 8x8 latents came here too while
    /// Winograd transformed them whole at each call; it now makes their transform block by block as
    /// it runs, as for f32 weights, so a 16-bit checkpoint computes its f32 widening's bits there.)
    func takesPatchProducts(input shape: [Int], weight: Tensor, stride: Int, padding: Int, backward: Bool) -> Bool {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]), (o, k) = (weight.shape[0], weight.shape[2])
        let oh = (h + 2 * padding - k) / stride + 1, ow = (w + 2 * padding - k) / stride + 1
        let pixels = n * oh * ow, width = c * k * k
        guard k > 1, pixels > 0, weight.isContiguous, pixels * width <= Self.patchRowsLimit else { return false }
        let tinyOutput = pixels <= Self.patchProductPixels && width >= 4096
        // bf16 products: every convolution that the Winograd algorithm does not take (the bf16
        // kernel is the engine's GEMM; oneDNN's direct convolution would be f32 on a widened copy).
        let inBF16 = ProductPrecision.effective == .bf16 && WinogradConvolution.tile(
            kernel: k, stride: stride, padding: padding, channels: backward ? o : c, outputs: backward ? c : o, n: n, h: h, w: w,
            backward: backward) == nil
        return tinyOutput || inBF16
    }

    /// Whether the patch products of `weight` go through the engine's GEMM: where the machine's
    /// products do, and for 16-bit weights everywhere (read as stored: oneDNN would need an f32
    /// copy of them at every call). f32 weights on the other machines (AVX-512) take oneDNN's
    /// products, which ran these 16-row products 1.6-2.3x faster than the engine's packed GEMM
    /// (docs/performance.md); there a 16-bit checkpoint's deepest layers differ from full
    /// precision's in rounding.
    func patchProductsUseEngineGEMM(_ weight: Tensor) -> Bool { Self.engineGEMMInScope || weight.dtype != .f32 }

    /// A convolution as the product of its patch rows [pixels, C k k] and the weight [O, C k k],
    /// where `takesPatchProducts`: the weight read in place (16-bit weights widened as the engine's
    /// GEMM packs them), bias and residual added as the product is stored. nil when not taken.
    func patchProductConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                            adding residual: Tensor?) throws -> Tensor? {
        guard takesPatchProducts(input: x.shape, weight: weight, stride: stride, padding: padding, backward: false) else { return nil }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (o, k) = (weight.shape[0], weight.shape[2])
        let oh = (h + 2 * padding - k) / stride + 1, ow = (w + 2 * padding - k) / stride + 1
        let pixels = n * oh * ow, width = c * k * k
        return try withNoGrad {
            let rows = try Tensor(uninitialized: [pixels, width], op: "conv2d patches")
            ck_im2col_rows(x.floatPointer, n, c, h, w, k, stride, padding, oh, ow, rows.floatPointer)
            // The residual in the product's [N, pixels, O] layout (a few hundred KB).
            let addend = try residual.map { try $0.reshaped([n, o, oh * ow]).transposed(1, 2).contiguous() }
            let product = try Tensor(uninitialized: [n, oh * ow, o], op: "conv2d")
            let filters = Tensor(storage: weight.storage, shape: [width, o], strides: [1, width], offset: weight.offset)
            if try !engineGEMM(rows, filters, bias: bias, adding: addend, into: product, onAnyMachine: patchProductsUseEngineGEMM(weight)) {
                var shape = ck_matmul_shape(m: pixels, k: width, n: o, lda: width, weights_nk: 1, has_residual: addend == nil ? 0 : 1)
                try withWidened(weight) { filters in
                    try check(ck_matmul_forward(&shape, rows.floatPointer, filters.floatPointer, bias?.floatPointer, addend?.floatPointer,
                                                product.floatPointer), "conv2d")
                }
            }
            return try product.transposed(1, 2).contiguous().reshaped([n, o, oh, ow])
        }
    }

    /// The backward-data pass of a convolution that `patchProductConv2d` takes through the engine's
    /// GEMM: the patch rows' gradient [pixels, C k k] = dy [pixels, O] times the weight [O, C k k],
    /// summed back onto the input's pixels (`ck_col2im_rows`). nil when not taken (then oneDNN's
    /// backward-data convolution runs).
    func patchProductConv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: [Int], stride: Int, padding: Int) throws -> Tensor? {
        guard patchProductsUseEngineGEMM(weight),
              takesPatchProducts(input: inputShape, weight: weight, stride: stride, padding: padding, backward: true) else { return nil }
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3]), (o, k) = (weight.shape[0], weight.shape[2])
        let (oh, ow) = (dy.shape[2], dy.shape[3]), pixels = n * oh * ow, width = c * k * k
        return try withNoGrad {
            let gradients = try dy.reshaped([n, o, oh * ow]).transposed(1, 2).contiguous().reshaped([pixels, o])
            let rows = try Tensor(uninitialized: [pixels, width], op: "conv2d backward patches")
            let filters = Tensor(storage: weight.storage, shape: [o, width], strides: [width, 1], offset: weight.offset)
            guard try engineGEMM(gradients, filters, bias: nil, adding: nil, into: rows, onAnyMachine: true) else {
                throw EngineError.backendFailure(op: "conv2d backward data", message: "patch-row product of \(Shape.describe(dy.shape)) not taken")
            }
            let dx = try output(inputShape, "conv2d backward")
            ck_col2im_rows(rows.floatPointer, n, c, h, w, k, stride, padding, oh, ow, dx.floatPointer)
            return dx
        }
    }
}
