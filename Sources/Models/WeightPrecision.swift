import Formats

/// How a loaded model holds its frozen weights.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Every weight in f32.
    case full
    /// The weight matrices of linear and convolution layers (nearly all of a model's bytes) in
    /// 16 bits, widened to f32 inside each matrix product or convolution; activations, norms,
    /// biases and embedding tables stay f32. A checkpoint stored in f16 computes as at `.full` in
    /// half the memory; an f32 checkpoint's weights are rounded to f16. Loading a model at
    /// this precision also stops the allocator keeping spare blocks (`TensorStorage.setCachedBlockLimit`).
    case half

    /// The precision a checkpoint runs at when none is asked for: `.half` when its UNet's weight
    /// matrices are stored in 16 bits (f16 or bf16: most bytes of the matrices), so widening loses
    /// nothing; `.full` for an f32 checkpoint, whose weights half precision would round.
    public static func automatic(for weights: ModelWeights) -> WeightPrecision {
        var sixteenBit = 0, total = 0
        for (name, tensor) in weights.tensors where name.hasPrefix("unet.") && tensor.shape.count >= 2 {
            let bytes = tensor.shape.reduce(1, *) * tensor.dtype.size
            total += bytes
            if tensor.dtype == .F16 || tensor.dtype == .BF16 { sixteenBit += bytes }
        }
        return total > 0 && 2 * sixteenBit > total ? .half : .full
    }
}
