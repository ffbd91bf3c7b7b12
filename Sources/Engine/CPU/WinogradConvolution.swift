import CKernels
import Foundation
import Synchronization

/// 3x3, stride 1, padding 1 convolutions by Winograd F(2x2, 3x3) or F(4x4, 3x3) (`ck_winograd.h`):
/// 2.25x or 4x fewer multiplies than direct convolution, as 16 or 36 GEMMs over the transformed
/// input. The CPU backend uses it where it measured faster than oneDNN's direct convolution
/// (`tile`), a fixed rule on the shape, never a timing taken at run time, so that an image comes
/// out the same on every run. `SDSHELL_WINOGRAD=0` turns it off, `SDSHELL_WINOGRAD=2` keeps
/// F(2x2) everywhere.
enum WinogradConvolution {
    static let enabled = ProcessInfo.processInfo.environment["SDSHELL_WINOGRAD"] != "0"
    static let largeTilesAllowed = ProcessInfo.processInfo.environment["SDSHELL_WINOGRAD"] != "2"
    /// Convolutions computed this way so far (for tests and profiles).
    static let uses = Atomic<Int>(0)

    /// How U is laid out: plain f32 (for ck_sgemm), or packed for the engine's GEMM at f32 or bf16.
    enum Layout: String {
        case plain = "f32", packedF32 = "packed f32", packedBF16 = "packed bf16"
    }
    /// The `DerivedWeights` form of U in this layout, direction and tile.
    static func form(_ layout: Layout, backward: Bool, tile: Int) -> String {
        "winograd \(layout.rawValue) tile \(tile) \(backward ? "backward" : "forward")"
    }

    /// Whether few-tile convolutions of frozen f32 weights keep their U (packed for the engine's
    /// GEMM: the bits they make block by block) rather than make it at each call: set for a scope by
    /// `withWinogradTransformsKept`.
    @TaskLocal static var keepsFewTileTransforms = false
    /// The output tile (2: F(2x2, 3x3), 4: F(4x4, 3x3)) a convolution of `channels` -> `outputs`
    /// channels over `n` images of h x w is computed with, or nil for oneDNN's direct convolution
    /// (see docs/performance.md for the measurements behind the rule). Backward-data convolutions
    /// (`backward`) keep F(2x2).
    static func tile(kernel: Int, stride: Int, padding: Int, channels: Int, outputs: Int, n: Int, h: Int, w: Int,
                     backward: Bool = false) -> Int? {
        guard enabled, kernel == 3, stride == 1, padding == 1 else { return nil }
        let tiles = n * ((h + 1) / 2) * ((w + 1) / 2)
        let narrowest = min(channels, outputs)
        // F(4x4)'s transforms (constants up to 8) grow bf16's rounding tenfold (max error 0.1 of
        // the output's scale against 0.005 for F(2x2), WinogradTests), so bf16 products keep F(2x2).
        if !backward, largeTilesAllowed, ProductPrecision.effective == .f32, narrowest >= 128, tiles >= f4Tiles,
           channels * outputs <= f4MaxWeights { return 4 }
        return (narrowest >= 512 && tiles >= wideMinimumTiles) || (narrowest >= 128 && tiles >= largeTiles) ? 2 : nil
    }

    /// From 512 channels, Winograd from this many F(2x2) tiles (a batch of one 8x8 latent: the
    /// textual-inversion step at 256x256): 7.9 ms against 26 for oneDNN's direct convolution at
    /// 1280 -> 1280 channels, on Zen 4 (docs/performance.md, "Training").
    static let wideMinimumTiles = 16
    /// The measured rule (sdbench ops and unet, docs/performance.md): Winograd from 512 channels at any
    /// size, from 128 channels on images of at least this many tiles (the VAE decoder's, the UNet's
    /// 64x64 latents at 512x512); below that the transforms' memory traffic (growing with the
    /// channels) costs more than the multiplies saved (growing with their square).
    static let largeTiles = 1024
    /// F(4x4) from this many F(2x2) tiles (the UNet's 16x16 latents in a CFG batch and larger)...
    static let f4Tiles = 128
    /// ...for convolutions of at most this many filter pairs (C x O): U is 4x the f32 weights, and
    /// for wider ones (1280 channels at 16x16) its reading costs more than the multiplies saved
    /// (measured with sdbench unet, docs/performance.md).
    static let f4MaxWeights = 1920 * 640

    /// Runs `body` with U of the contiguous `weight` [O, C, 3, 3] (or, `backward`, of its
    /// backward-data convolution) made by `make` into `floats` floats, kept in `DerivedWeights` as
    /// `form` when `cacheable` and the weight is a frozen whole storage; otherwise made in the
    /// reused `ScratchMemory` (a 16-bit model's many-tile transforms, up to 105 MB each at
    /// 512x512), which `body` must not keep.
    private static func withTransformed<R>(_ weight: Tensor, form: String, floats: Int, cacheable: Bool,
                                           make: (Tensor) throws -> Void, _ body: (Tensor) throws -> R) throws -> R {
        if cacheable && DerivedWeights.qualifies(weight) {
            return try body(DerivedWeights.value(of: weight, form: form) {
                let memory = try Tensor(uninitialized: [floats], op: "winograd weights")
                try make(memory)
                return memory
            })
        }
        return try ScratchMemory.with(floats: floats, op: "winograd weights") { memory in
            try make(memory)
            return try body(memory)
        }
    }

    /// y of x through the 3x3 weights (or, `backward`, the backward-data convolution of dy through
    /// them) with `tile`, at the scope's product precision.
    /// - f32 products where few tiles make every filter's transform count (the UNet's 32x32 latents
    ///   and smaller at 512x512: `ck_winograd_fuses_weights`) take the weights as they are stored:
    ///   U is made block by block as the convolution runs, in the engine GEMM's packed form, and
    ///   never kept. A 16-bit checkpoint and its f32 widening give the same bits this way, and full
    ///   precision keeps no U for the layers whose U is largest (docs/performance.md).
    /// - Other f32 products (many tiles: U is read once per block of tiles) take plain U through
    ///   ck_sgemm, cached for frozen f32 weights and made per call for 16-bit ones.
    /// - bf16 products take U made straight in the engine GEMM's packed form
    ///   (`ck_winograd_transform_packed`), cached for frozen weights of any type (the speed is what
    ///   bf16 is asked for).
    static func convolve(_ x: Tensor, weight: Tensor, backward: Bool, tile: Int, bias: Tensor?, adding residual: Tensor?,
                         into y: Tensor) throws {
        let o = weight.shape[0], c = weight.shape[1], outputs = backward ? c : o, inputs = backward ? o : c
        let compute = ProductPrecision.effective.kernelCode
        let fewTiles = ck_winograd_fuses_weights(x.shape[0], inputs, x.shape[2], x.shape[3], outputs, Int32(tile)) != 0
        if compute == 0 && fewTiles && !(keepsFewTileTransforms && weight.dtype == .f32 && DerivedWeights.qualifies(weight)) {
            var weights = ck_winograd_weights()
            weights.w = UnsafeRawPointer(weight.elements)
            weights.dtype = weight.dtype.kernelCode
            weights.backward = backward ? 1 : 0
            return try convolve(x, weights: weights, outputs: outputs, tile: tile, bias: bias, adding: residual, into: y)
        }
        // Packed for the engine's GEMM: bf16 products, and the kept few-tile transforms above.
        let packed = compute == 1 || fewTiles
        let cacheable = compute == 1 || weight.dtype == .f32
        let floats = packed ? (ck_winograd_packed_bytes(outputs, inputs, Int32(tile), compute) + 3) / 4
                            : ck_winograd_weights_count(o, c, Int32(tile))
        let layout: Layout = compute == 1 ? .packedBF16 : (packed ? .packedF32 : .plain)
        try withTransformed(weight, form: form(layout, backward: backward, tile: tile), floats: floats,
                            cacheable: cacheable, make: { memory in
            guard packed else {
                ck_winograd_transform_weights(weight.elements, weight.dtype.kernelCode, o, c, backward ? 1 : 0, Int32(tile), memory.floatPointer)
                return
            }
            let status = ck_winograd_transform_packed(weight.elements, weight.dtype.kernelCode, o, c, backward ? 1 : 0, Int32(tile),
                                                      compute, memory.storage.raw)
            guard status == 0 else {
                throw status == -1 ? EngineError.outOfMemory(op: "conv2d (Winograd)", shape: weight.shape, bytes: floats * 4)
                                   : EngineError.backendFailure(op: "conv2d (Winograd)", message: "this CPU has no bf16 dot products")
            }
        }) { u in
            var weights = ck_winograd_weights()
            if packed { weights.u_packed = UnsafeRawPointer(u.storage.raw) } else { weights.u = UnsafePointer(u.floatPointer) }
            weights.compute = compute
            try convolve(x, weights: weights, outputs: outputs, tile: tile, bias: bias, adding: residual, into: y)
        }
    }

    /// y [N, O, H, W] of x [N, C, H, W] with `weights` (U plain or packed, or the 3x3 weights), plus
    /// bias and residual.
    private static func convolve(_ x: Tensor, weights: ck_winograd_weights, outputs: Int, tile: Int, bias: Tensor?,
                                 adding residual: Tensor?, into y: Tensor) throws {
        uses.add(1, ordering: .relaxed)
        var weights = weights
        let status = ck_winograd_conv3x3(x.floatPointer, x.shape[0], x.shape[1], x.shape[2], x.shape[3], &weights,
                                         outputs, bias?.floatPointer, residual?.floatPointer, Int32(tile), y.floatPointer)
        guard status == 0 else {
            let points = (tile + 2) * (tile + 2)
            throw status == -1
                ? EngineError.outOfMemory(op: "conv2d (Winograd)", shape: x.shape, bytes: points * (x.shape[1] + outputs) * x.count / max(x.shape[1], 1))
                : EngineError.backendFailure(op: "conv2d (Winograd)",
                                             message: status == -2 ? "this CPU has no bf16 dot products" : "sgemm status \(status)")
        }
    }
}

/// Runs `body` with the Winograd transforms of frozen f32 weights kept for the few-tile
/// convolutions that otherwise make them at each call (`WinogradConvolution.convolve`): for loops
/// that pass over the same weights many times and are worth the memory (the textual-inversion
/// trainer: each step's forward and backward-data convolutions). The results are the same bits;
/// what was kept is dropped when the outermost such scope ends.
public func withWinogradTransformsKept<T>(_ body: () throws -> T) rethrows -> T {
    if WinogradConvolution.keepsFewTileTransforms { return try body() }
    let kept = "winograd " + WinogradConvolution.Layout.packedF32.rawValue + " "
    defer { DerivedWeights.drop { $0.hasPrefix(kept) } }
    return try WinogradConvolution.$keepsFewTileTransforms.withValue(true) { try body() }
}
