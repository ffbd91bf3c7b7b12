import CKernels
@testable import Engine
import Testing

/// Convolutions with tiny outputs and wide filters as a patch-row product (`patchProductConv2d`)
/// against oneDNN's direct convolution (checked against torch in ReferenceOpsTests).
@Suite struct PatchConvolutionTests {
    /// (stride, with residual): 4x4 outputs of 512 channels (patch rows 4,608 wide) over a batch of 2.
    @Test(arguments: [(1, false), (1, true), (2, false)]) func equalsTheDirectConvolution(_ stride: Int, _ withResidual: Bool) throws {
        let (n, c, o, h) = (2, 512, 48, stride == 1 ? 4 : 8)
        let x = try Tensor(shape: [n, c, h, h], data: WinogradTests.random(n * c * h * h, seed: 1))
        let w = try Tensor(shape: [o, c, 3, 3], data: WinogradTests.random(o * c * 9, seed: 2))
        let b = try Tensor(shape: [o], data: WinogradTests.random(o, seed: 3))
        let residual = try Tensor(shape: [n, o, 4, 4], data: WinogradTests.random(n * o * 16, seed: 4))
        let backend = CPUBackend()
        let product = try #require(try backend.patchProductConv2d(x, weight: w, bias: b, stride: stride, padding: 1,
                                                                  adding: withResidual ? residual : nil))
        #expect(product.shape == [n, o, 4, 4])
        var s = ck_conv_shape(n: Int32(n), c: Int32(c), h: Int32(h), w: Int32(h), o: Int32(o), k: 3, stride: Int32(stride), pad: 1, oh: 4, ow: 4)
        var direct = [Float](repeating: 0, count: n * o * 16)
        #expect(ck_conv2d_forward(&s, x.floatPointer, w.floatPointer, 0, b.floatPointer, &direct) == 0)
        if withResidual { direct = zip(direct, try residual.toArray()).map { $0 + $1 } }
        let got = try product.toArray()
        let error = WinogradTests.relativeError(got, direct)
        // Two f32 sums of 4,608 products in different orders.
        #expect(error <= 1e-5, "relative error \(error)")
        // Larger outputs, or narrow filters, keep the direct convolution.
        let wide = try Tensor(shape: [n, c, 8, 8], data: WinogradTests.random(n * c * 64, seed: 5))
        #expect(try backend.patchProductConv2d(wide, weight: w, bias: b, stride: 1, padding: 1, adding: nil) == nil)
        let narrow = try Tensor(shape: [n, 64, 4, 4], data: WinogradTests.random(n * 64 * 16, seed: 6))
        let narrowW = try Tensor(shape: [o, 64, 3, 3], data: WinogradTests.random(o * 64 * 9, seed: 7))
        #expect(try backend.patchProductConv2d(narrow, weight: narrowW, bias: nil, stride: 1, padding: 1, adding: nil) == nil)
    }

    /// 16-bit weights of 512 channels on an 8x8 image go through the patch product on machines whose
    /// products use the engine's GEMM (the weights read as they are stored), within f32 rounding of
    /// the direct convolution of their widening; elsewhere the convolution is left to oneDNN.
    @Test func sixteenBitWeightsOnSmallImages() throws {
        let (c, o, h) = (512, 512, 8)
        let x = try Tensor(shape: [1, c, h, h], data: WinogradTests.random(c * h * h, seed: 11))
        let w = try Tensor(shape: [o, c, 3, 3], data: WinogradTests.random(o * c * 9, seed: 12)).to(.f16)
        let b = try Tensor(shape: [o], data: WinogradTests.random(o, seed: 13))
        let backend = CPUBackend()
        let product = try backend.patchProductConv2d(x, weight: w, bias: b, stride: 1, padding: 1, adding: nil)
        guard CPUBackend.usesEngineGEMM else { #expect(product == nil); return }
        let got = try #require(product).toArray()
        let widened = try w.to(.f32)
        var s = ck_conv_shape(n: 1, c: Int32(c), h: Int32(h), w: Int32(h), o: Int32(o), k: 3, stride: 1, pad: 1, oh: Int32(h), ow: Int32(h))
        var direct = [Float](repeating: 0, count: o * h * h)
        #expect(ck_conv2d_forward(&s, x.floatPointer, widened.floatPointer, 0, b.floatPointer, &direct) == 0)
        let error = WinogradTests.relativeError(got, direct)
        #expect(error <= 1e-5, "relative error \(error)")
        // The same filters at f32 keep the f32 algorithm.
        #expect(try backend.patchProductConv2d(x, weight: widened, bias: b, stride: 1, padding: 1, adding: nil) == nil)
    }
}
