import CKernels
import Foundation
@testable import Engine
import Testing

/// Winograd F(2x2, 3x3) and F(4x4, 3x3) against oneDNN's direct convolution (itself checked against
/// torch in ReferenceOpsTests), forward and backward-data, on odd and even sizes; and the backend's
/// rule sending SD's large 3x3 convolutions to it.
@Suite struct WinogradTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in rng.normal() }
    }

    /// max |a - b| / max |b|.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max()! / b.map(abs).max()!
    }

    /// Whole-problem and (the last: 4,140 tiles, blocks ending mid-row) tile-blocked schedules, odd
    /// sizes, 1x1 images; rows of tiles that the eight-tile transforms cover in part (32, 37, 91 wide)
    /// or not at all (12, 9).
    static let shapes: [(n: Int, c: Int, o: Int, h: Int, w: Int)] = [(2, 64, 96, 17, 12), (1, 128, 64, 32, 32), (1, 3, 5, 1, 1),
                                                                     (3, 16, 8, 5, 9), (2, 8, 8, 90, 91), (1, 4, 4, 37, 37)]

    /// How the test hands the weights over (`ck_winograd_weights`).
    enum Form: Equatable {
        /// Plain U through ck_sgemm.
        case plain
        /// U transformed straight into the engine GEMM's packed form for compute 0 (f32) or 1 (bf16).
        case packed(Int32)
        /// The 3x3 weights themselves, transformed as the convolution runs (f32 products).
        case raw
    }

    /// The Winograd convolution of `input` (forward: x [n, c, h, w]; backward: dy [n, o, h, w]) with
    /// `weight` [o, c, 3, 3] (stored as `dtype`: the raw form reads 16-bit weights in place) in `form`.
    static func winograd(_ input: [Float], weight: [Float], _ shape: (n: Int, c: Int, o: Int, h: Int, w: Int), backward: Bool,
                         tile: Int32, bias: [Float]? = nil, residual: [Float]? = nil, form: Form = .plain,
                         dtype: DType = .f32) throws -> [Float] {
        let (n, c, o, h, w) = shape
        let (inputs, outputs) = backward ? (o, c) : (c, o)
        var u = [Float](repeating: 0, count: ck_winograd_weights_count(o, c, tile))
        ck_winograd_transform_weights(weight, 0, o, c, backward ? 1 : 0, tile, &u)
        var y = [Float](repeating: .nan, count: n * outputs * h * w)
        var compute: Int32 = 0
        if case .packed(let type) = form { compute = type }
        let bytes = ck_winograd_packed_bytes(outputs, inputs, tile, compute)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        defer { packed.deallocate() }
        let stored = try Tensor(shape: [o, c, 3, 3], data: weight).to(dtype)
        var weights = ck_winograd_weights()
        weights.compute = compute
        u.withUnsafeBufferPointer { plain in
            switch form {
            case .plain: weights.u = plain.baseAddress
            case .packed:
                #expect(ck_winograd_transform_packed(weight, 0, o, c, backward ? 1 : 0, tile, compute, packed) == 0)
                weights.u_packed = UnsafeRawPointer(packed)
            case .raw:
                (weights.w, weights.dtype, weights.backward) = (stored.elements, stored.dtype.kernelCode, backward ? 1 : 0)
            }
            #expect(ck_winograd_conv3x3(input, n, inputs, h, w, &weights, outputs, bias, residual, tile, &y) == 0)
        }
        return y
    }

    /// With bf16 products (U and V rounded to bf16, f32 sums) F(2x2) stays within bf16's rounding of
    /// the direct f32 convolution (measured: 0.005 of the output's scale at most over these shapes),
    /// and F(4x4) does not (0.06-0.10: its transforms' constants up to 8 grow the rounding), which
    /// is why bf16 products keep F(2x2) (`WinogradConvolution.tile`).
    @Test(.enabled(if: ProductPrecision.bf16Available), arguments: [Int32(2), 4])
    func bf16ProductsStayNearDirectConvolutionWithSmallTiles(_ tile: Int32) throws {
        var worst: Float = 0
        for shape in Self.shapes {
            let (n, c, o, h, w) = shape
            let x = Self.random(n * c * h * w, seed: 1), weight = Self.random(o * c * 9, seed: 2), bias = Self.random(o, seed: 3)
            var direct = [Float](repeating: 0, count: n * o * h * w)
            var s = Self.directShape(shape)
            #expect(ck_conv2d_forward(&s, x, weight, 0, bias, &direct) == 0)
            let got = try Self.winograd(x, weight: weight, shape, backward: false, tile: tile, bias: bias, form: .packed(1))
            let error = Self.relativeError(got, direct)
            worst = max(worst, error)
            if tile == 2 { #expect(error <= 1e-2, "\(shape): relative error \(error)") }
            #expect(error > Self.bound(tile), "\(shape): bf16 products as exact as f32 ones (\(error))")
        }
        print("Winograd F(\(tile)x\(tile)) with bf16 products: worst relative error \(worst)")
        if tile == 4 { #expect(worst >= 3e-2, "F(4x4) with bf16 products more exact than measured (\(worst))") }
    }

    /// The error bound against direct convolution: F(4x4)'s transforms (constants up to 8) round
    /// about ten times more than F(2x2)'s.
    static func bound(_ tile: Int32) -> Float { tile == 4 ? 2e-5 : 2e-6 }

    static func directShape(_ shape: (n: Int, c: Int, o: Int, h: Int, w: Int)) -> ck_conv_shape {
        let (n, c, o, h, w) = shape
        return ck_conv_shape(n: Int32(n), c: Int32(c), h: Int32(h), w: Int32(w), o: Int32(o), k: 3, stride: 1, pad: 1, oh: Int32(h), ow: Int32(w))
    }

    @Test(arguments: [Int32(2), 4], 0..<shapes.count) func forwardEqualsDirectConvolution(_ tile: Int32, _ index: Int) throws {
        let shape = Self.shapes[index], (n, c, o, h, w) = shape
        let x = Self.random(n * c * h * w, seed: 1), weight = Self.random(o * c * 9, seed: 2), bias = Self.random(o, seed: 3)
        var direct = [Float](repeating: 0, count: n * o * h * w)
        var s = Self.directShape(shape)
        #expect(ck_conv2d_forward(&s, x, weight, 0, bias, &direct) == 0)
        for form in [Form.plain, .packed(0), .raw] {
            let error = Self.relativeError(try Self.winograd(x, weight: weight, shape, backward: false, tile: tile, bias: bias,
                                                             form: form), direct)
            #expect(error <= Self.bound(tile), "relative error \(error), weights \(form)")
        }
    }

    @Test(arguments: [Int32(2), 4], 0..<shapes.count) func backwardDataEqualsDirectConvolution(_ tile: Int32, _ index: Int) throws {
        let shape = Self.shapes[index], (n, c, o, h, w) = shape
        let dy = Self.random(n * o * h * w, seed: 4), weight = Self.random(o * c * 9, seed: 5)
        var direct = [Float](repeating: 0, count: n * c * h * w)
        var s = Self.directShape(shape)
        #expect(ck_conv2d_backward_data(&s, dy, weight, 0, &direct) == 0)
        for form in [Form.plain, .packed(0), .raw] {
            let error = Self.relativeError(try Self.winograd(dy, weight: weight, shape, backward: true, tile: tile, form: form), direct)
            #expect(error <= Self.bound(tile), "relative error \(error), weights \(form)")
        }
    }

    /// The 3x3 weights transformed as the convolution runs (a block of filters and of channels at a
    /// time, in the GEMM's blocks of depth) give the bits of U packed whole, forward and backward,
    /// in both schedules (the last shape has many tiles: U is then made whole for the call), with
    /// channel counts that span several of the GEMM's depth blocks (700: three) and filter counts
    /// that end mid-panel; and 16-bit weights read in place give the bits of their f32 widening.
    @Test(arguments: [Int32(2), 4]) func weightsTransformedAsTheConvolutionRunsGiveThePackedBits(_ tile: Int32) throws {
        let shapes = [(n: 2, c: 700, o: 30, h: 6, w: 7), (1, 19, 40, 9, 5), (2, 64, 96, 17, 12), (2, 8, 8, 90, 91)]
        for shape in shapes {
            let (n, c, o, h, w) = shape
            let weight = try Tensor(shape: [o * c * 9], data: Self.random(o * c * 9, seed: 40)).to(.f16).to(.f32).toArray()
            for backward in [false, true] {
                let input = Self.random(n * (backward ? o : c) * h * w, seed: 41)
                let packed = try Self.winograd(input, weight: weight, shape, backward: backward, tile: tile, form: .packed(0))
                for dtype in [DType.f32, .f16] {
                    let raw = try Self.winograd(input, weight: weight, shape, backward: backward, tile: tile, form: .raw, dtype: dtype)
                    #expect(raw.map(\.bitPattern) == packed.map(\.bitPattern), "\(shape) backward \(backward) \(dtype)")
                }
            }
        }
    }

    /// U transformed straight into the engine GEMM's packed form (panel by panel, no whole U) holds
    /// the bytes `ck_gemm_pack_a` makes of each point's plain U, forward and backward, for f32
    /// products and (where the CPU has them) bf16 ones, with filter counts that end mid-panel.
    @Test(arguments: [Int32(2), 4]) func uPackedStraightFromTheWeightsIsThePackedPlainTransform(_ tile: Int32) throws {
        let points = Int((tile + 2) * (tile + 2))
        for (o, c) in [(12, 19), (40, 9)] {
            let weight = Self.random(o * c * 9, seed: 31)
            for backward in [false, true] {
                let (rows, columns) = backward ? (c, o) : (o, c)
                var u = [Float](repeating: 0, count: ck_winograd_weights_count(o, c, tile))
                ck_winograd_transform_weights(weight, 0, o, c, backward ? 1 : 0, tile, &u)
                for compute in EngineGEMMTests.computeTypes {
                    let each = ck_gemm_packed_a_bytes(compute, rows, columns), bytes = ck_winograd_packed_bytes(rows, columns, tile, compute)
                    #expect(bytes == points * each)
                    let straight = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                    let packed = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                    defer { straight.deallocate(); packed.deallocate() }
                    #expect(ck_winograd_transform_packed(weight, 0, o, c, backward ? 1 : 0, tile, compute, straight) == 0)
                    u.withUnsafeBufferPointer { plain in
                        for point in 0..<points {
                            var args = ck_gemm_args()
                            (args.m, args.k, args.lda, args.compute) = (rows, columns, columns, compute)
                            args.a = UnsafeRawPointer(plain.baseAddress! + point * rows * columns)
                            _ = ck_gemm_pack_a(&args, packed + point * each)
                        }
                    }
                    #expect(memcmp(straight, packed, bytes) == 0, "\(o)x\(c) backward \(backward) compute \(compute)")
                }
            }
        }
    }

    /// 16-bit weights are read in place (no f32 copy): their transform equals that of the widened
    /// weights bit for bit, forward and backward, including channel counts that are not a multiple of 8.
    @Test(arguments: [DType.f16, .bf16]) func sixteenBitWeightsTransformAsTheirWidenedValues(_ dtype: DType) throws {
        let (o, c) = (12, 19)
        let half = try Tensor(shape: [o, c, 3, 3], data: Self.random(o * c * 9, seed: 10)).to(dtype)
        let widened = try half.to(.f32).toArray()
        for backward in [0, 1] as [Int32] {
          for tile in [2, 4] as [Int32] {
            var fromHalf = [Float](repeating: .nan, count: ck_winograd_weights_count(o, c, tile)), fromWide = fromHalf
            ck_winograd_transform_weights(half.storage.raw, dtype == .f16 ? 1 : 2, o, c, backward, tile, &fromHalf)
            ck_winograd_transform_weights(widened, 0, o, c, backward, tile, &fromWide)
            #expect(fromHalf.map(\.bitPattern) == fromWide.map(\.bitPattern))
            #expect(!fromHalf.contains { $0.isNaN })
          }
        }
    }

    /// The residual is added last as each output is written, in the eight-tile and the edge paths:
    /// the same bits as adding it afterwards.
    @Test(arguments: [Int32(2), 4], [1, 5]) func aResidualIsAddedAsTheOutputIsWritten(_ tile: Int32, _ index: Int) throws {
        let shape = Self.shapes[index], (n, c, o, h, w) = shape
        let x = Self.random(n * c * h * w, seed: 20), weight = Self.random(o * c * 9, seed: 21), bias = Self.random(o, seed: 22)
        let residual = Self.random(n * o * h * w, seed: 23)
        let plain = try Self.winograd(x, weight: weight, shape, backward: false, tile: tile, bias: bias)
        let fused = try Self.winograd(x, weight: weight, shape, backward: false, tile: tile, bias: bias, residual: residual)
        #expect(fused.map(\.bitPattern) == zip(plain, residual).map { ($0 + $1).bitPattern })
    }

    @Test(arguments: [Int32(2), 4], [1, 4]) func theSameBitsOnOneAndTwoThreads(_ tile: Int32, _ index: Int) throws {
        let shape = Self.shapes[index]
        let x = Self.random(shape.n * shape.c * shape.h * shape.w, seed: 8), weight = Self.random(shape.o * shape.c * 9, seed: 9)
        let saved = Engine.threads
        defer { Engine.threads = saved }
        for form in [Form.plain, .raw] { // raw: the filter blocks are sized by the thread count
            var results: [[Float]] = []
            for threads in [1, 2] {
                Engine.threads = threads
                results.append(try Self.winograd(x, weight: weight, shape, backward: false, tile: tile, form: form))
            }
            #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern), "weights \(form)")
        }
    }

    /// A few-tile convolution of frozen f32 weights keeps no transform, except inside
    /// `withWinogradTransformsKept` (the trainer's scope), which keeps U packed (forward and
    /// backward-data) and drops it when the scope ends; the outputs and the input's gradient are
    /// the same bits either way.
    @Test func transformsAreKeptOnlyInsideTheScope() throws {
        let w = try Tensor(shape: [512, 512, 3, 3], data: Self.random(512 * 512 * 9, seed: 51))
        #expect(ck_winograd_fuses_weights(1, 512, 8, 8, 512, 2) != 0)
        let forward = WinogradConvolution.form(.packedF32, backward: false, tile: 2)
        let backward = WinogradConvolution.form(.packedF32, backward: true, tile: 2)
        func pass() throws -> (y: [UInt32], dx: [UInt32]) {
            let x = try Tensor(shape: [1, 512, 8, 8], data: Self.random(512 * 64, seed: 52), requiresGrad: true)
            let y = try x.conv2d(weight: w, padding: 1)
            try (y * y).sum(dims: [0, 1, 2, 3]).backward()
            return (try y.toArray().map(\.bitPattern), try x.grad!.toArray().map(\.bitPattern))
        }
        let made = try pass()
        #expect(DerivedWeights.existing(of: w, form: forward) == nil)
        let kept = try withWinogradTransformsKept {
            let first = try pass(), again = try pass()
            #expect(DerivedWeights.existing(of: w, form: forward) != nil)
            #expect(DerivedWeights.existing(of: w, form: backward) != nil)
            #expect(first.y == again.y && first.dx == again.dx)
            return first
        }
        #expect(DerivedWeights.existing(of: w, form: forward) == nil)
        #expect(DerivedWeights.existing(of: w, form: backward) == nil)
        #expect(kept.y == made.y)
        #expect(kept.dx == made.dx)
    }

    /// Through the public op (where the rule picks Winograd for 512 -> 512 channels over 16x16):
    /// the output and both gradients against the direct convolution of the same data, computed
    /// as two halves of the input channels, below the rule's threshold, and summed.
    @Test func theBackendUsesItForLargeConvolutionsWithGradients() throws {
        let x = try Tensor(shape: [1, 512, 16, 16], data: Self.random(512 * 256, seed: 6), requiresGrad: true)
        let w = try Tensor(shape: [512, 512, 3, 3], data: Self.random(512 * 512 * 9, seed: 7), requiresGrad: true)
        let before = WinogradConvolution.uses.load(ordering: .relaxed)
        let y = try x.conv2d(weight: w, padding: 1)
        try (y * y).sum(dims: [0, 1, 2, 3]).backward()
        // Forward and backward-data (the suite runs in parallel with others: at least these two).
        #expect(WinogradConvolution.uses.load(ordering: .relaxed) - before >= 2)
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 512, outputs: 512, n: 1, h: 16, w: 16) == 2)
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 256, outputs: 512, n: 1, h: 16, w: 16) == nil)
        // From 512 channels down to 16 tiles (one 8x8 latent), not below.
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 1280, outputs: 1280, n: 1, h: 8, w: 8) == 2)
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 1280, outputs: 1280, n: 1, h: 6, w: 6) == nil)
        // From 128 channels on large images (the VAE decoder's, the UNet's 64x64 latents at
        // 512x512): F(4x4), but F(2x2) for the backward-data convolution; never below 128.
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 128, outputs: 128, n: 1, h: 512, w: 512) == 4)
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 128, outputs: 128, n: 1, h: 512, w: 512,
                                         backward: true) == 2)
        #expect(WinogradConvolution.tile(kernel: 3, stride: 1, padding: 1, channels: 64, outputs: 128, n: 1, h: 512, w: 512) == nil)
        // The same convolution as two 256-channel halves: below the rule, so oneDNN's direct path.
        let xa = try Tensor(shape: [1, 512, 16, 16], data: x.toArray(), requiresGrad: true)
        let wa = try Tensor(shape: [512, 512, 3, 3], data: w.toArray(), requiresGrad: true)
        let halves = try [0, 256].map { start in
            try xa.sliced(dim: 1, start, start + 256).conv2d(weight: wa.sliced(dim: 1, start, start + 256), padding: 1)
        }
        let ya = try halves[0] + halves[1]
        try (ya * ya).sum(dims: [0, 1, 2, 3]).backward()
        #expect(Self.relativeError(try y.toArray(), try ya.toArray()) <= 2e-6)
        #expect(Self.relativeError(try x.grad!.toArray(), try xa.grad!.toArray()) <= 1e-5)
        #expect(Self.relativeError(try w.grad!.toArray(), try wa.grad!.toArray()) <= 1e-5)
    }
}
