/// How a loaded model holds its frozen weights.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Every weight in f32.
    case full
    /// The weight matrices of linear and convolution layers (nearly all of a model's bytes) in
    /// 16 bits, widened to f32 inside each matrix product or convolution; activations, norms,
    /// biases and embedding tables stay f32. A checkpoint stored in f16 computes exactly as at
    /// `.full` in half the memory; an f32 checkpoint's weights are rounded to f16. Loading a model at
    /// this precision also stops the allocator keeping spare blocks (`TensorStorage.setCachedBlockLimit`).
    case half
}
