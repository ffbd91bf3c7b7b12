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

    /// 16-bit weights of 512 channels on an 8x8 image do not take the patch product (they did while
    /// Winograd transformed them whole at each call): they take Winograd as their f32 widening
    /// does, with the same bits through the op, forward and backward-data.
    @Test func sixteenBitWeightsOnSmallImagesComputeTheirWideningsBits() throws {
        let (c, o, h) = (512, 512, 8)
        let x = try Tensor(shape: [1, c, h, h], data: WinogradTests.random(c * h * h, seed: 11))
        let w = try Tensor(shape: [o, c, 3, 3], data: WinogradTests.random(o * c * 9, seed: 12)).to(.f16)
        let b = try Tensor(shape: [o], data: WinogradTests.random(o, seed: 13))
        let dy = try Tensor(shape: [1, o, h, h], data: WinogradTests.random(o * h * h, seed: 14))
        let backend = CPUBackend()
        let widened = try w.to(.f32)
        #expect(try backend.patchProductConv2d(x, weight: w, bias: b, stride: 1, padding: 1, adding: nil) == nil)
        let y16 = try backend.conv2d(x, weight: w, bias: b, stride: 1, padding: 1, adding: nil)
        let y32 = try backend.conv2d(x, weight: widened, bias: b, stride: 1, padding: 1, adding: nil)
        #expect(try y16.toArray().map(\.bitPattern) == (try y32.toArray().map(\.bitPattern)))
        let dx16 = try backend.conv2dBackwardData(dy, weight: w, inputShape: [1, c, h, h], stride: 1, padding: 1)
        let dx32 = try backend.conv2dBackwardData(dy, weight: widened, inputShape: [1, c, h, h], stride: 1, padding: 1)
        #expect(try dx16.toArray().map(\.bitPattern) == (try dx32.toArray().map(\.bitPattern)))
    }

    /// The backward-data pass of the convolutions the patch product takes (a tiny output with wide
    /// filters, strides 1 and 2, f32 and 16-bit weights) against oneDNN's backward-data
    /// convolution (checked against torch in ReferenceOpsTests); 16-bit weights give the bits of
    /// their f32 widening where both take the patch product (machines whose products are the
    /// engine's; on the others only 16-bit weights take it).
    @Test(arguments: [(1, false), (2, false), (1, true)]) func backwardDataEqualsTheDirectConvolutions(_ stride: Int, _ sixteenBit: Bool) throws {
        let (n, c, o, h) = (2, 512, 48, stride == 1 ? 4 : 8)
        let oh = (h + 2 - 3) / stride + 1
        let dy = try Tensor(shape: [n, o, oh, oh], data: WinogradTests.random(n * o * oh * oh, seed: 21))
        let w32 = try Tensor(shape: [o, c, 3, 3], data: WinogradTests.random(o * c * 9, seed: 22))
        let w = sixteenBit ? try w32.to(.f16) : w32
        let backend = CPUBackend()
        // f32 weights take the patch products only where the machine's products are the engine's.
        guard let dx = try backend.patchProductConv2dBackwardData(dy, weight: w, inputShape: [n, c, h, h], stride: stride, padding: 1) else {
            #expect(!sixteenBit && !CPUBackend.usesEngineGEMM)
            return
        }
        #expect(dx.shape == [n, c, h, h])
        let widened = try w.to(.f32)
        var s = ck_conv_shape(n: Int32(n), c: Int32(c), h: Int32(h), w: Int32(h), o: Int32(o), k: 3, stride: Int32(stride), pad: 1,
                              oh: Int32(oh), ow: Int32(oh))
        var direct = [Float](repeating: 0, count: n * c * h * h)
        #expect(ck_conv2d_backward_data(&s, dy.floatPointer, widened.floatPointer, 0, &direct) == 0)
        let error = WinogradTests.relativeError(try dx.toArray(), direct)
        #expect(error <= 1e-5, "relative error \(error)")
        if !sixteenBit {
            // Through the public op, and 16-bit weights give the bits of their f32 widening.
            let viaOp = try backend.conv2dBackwardData(dy, weight: w, inputShape: [n, c, h, h], stride: stride, padding: 1)
            #expect(try viaOp.toArray() == (try dx.toArray()))
            let halfWeights = try w.to(.f16)
            let widenedHalf = try halfWeights.to(.f32)
            let a = try #require(try backend.patchProductConv2dBackwardData(dy, weight: halfWeights, inputShape: [n, c, h, h], stride: stride, padding: 1))
            let b = try #require(try backend.patchProductConv2dBackwardData(dy, weight: widenedHalf, inputShape: [n, c, h, h], stride: stride, padding: 1))
            #expect(try a.toArray().map(\.bitPattern) == (try b.toArray().map(\.bitPattern)))
        }
    }
}
