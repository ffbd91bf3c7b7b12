import CKernels

extension CPUBackend {
    /// Convolutions with at most this many output pixels in all (1280 channels at 4x4 in a CFG
    /// batch: the UNet's deepest layers at 256x256) go through `patchProductConv2d`.
    static let patchProductPixels = 32

    /// A convolution with a tiny output and wide filters is bound by reading its weights (59 MB for
    /// 1280 -> 1280 at 4x4, for 0.94 GFLOP). Computed as the product of its patch rows
    /// [pixels, C k k] and the weight [O, C k k], which oneDNN's matmul reads in place, adding bias
    /// and residual as it stores, the weights stream at about twice the rate of the direct
    /// convolution's (docs/performance.md). nil when the shape is not such a convolution.
    func patchProductConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                            adding residual: Tensor?) throws -> Tensor? {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (o, k) = (weight.shape[0], weight.shape[2])
        let oh = (h + 2 * padding - k) / stride + 1, ow = (w + 2 * padding - k) / stride + 1
        let pixels = n * oh * ow, width = c * k * k
        guard k > 1, pixels > 0, pixels <= Self.patchProductPixels, width >= 4096 else { return nil }
        return try withNoGrad {
            let rows = try Tensor(uninitialized: [pixels, width], op: "conv2d patches")
            ck_im2col_rows(x.floatPointer, n, c, h, w, k, stride, padding, oh, ow, rows.floatPointer)
            let filters = try widened(weight)
            // The residual in the product's [N, pixels, O] layout (a few hundred KB).
            let addend = try residual.map { try $0.reshaped([n, o, oh * ow]).transposed(1, 2).contiguous() }
            let product = try Tensor(uninitialized: [n, oh * ow, o], op: "conv2d")
            var shape = ck_matmul_shape(m: pixels, k: width, n: o, lda: width, weights_nk: 1, has_residual: addend == nil ? 0 : 1)
            try check(ck_matmul_forward(&shape, rows.floatPointer, filters.floatPointer, bias?.floatPointer, addend?.floatPointer,
                                        product.floatPointer), "conv2d")
            return try product.transposed(1, 2).contiguous().reshaped([n, o, oh, ow])
        }
    }
}
