import Engine
import Formats

/// How a loaded model holds its frozen weights.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Every weight in f32.
    case full
    /// The weight matrices of linear and convolution layers (nearly all of a model's bytes) in
    /// 16 bits, widened to f32 inside each matrix product or convolution; activations, norms,
    /// biases and embedding tables stay f32. A checkpoint stored in f16 computes as at `.full` in
    /// half the memory; an f32 checkpoint's weights are rounded to f16. Loading a model at
    /// this precision also keeps fewer spare blocks in the allocator (`configureAllocator`).
    case half
    /// The weight matrices in bf16 (a file's bf16 used in place, f16 and f32 rounded to bf16), and
    /// every matrix product, convolution and attention taken with bf16 operands and f32 sums
    /// (`ProductPrecision.bf16`) where the CPU has bf16 dot products; elsewhere the products are
    /// f32 over the bf16 weights (`bf16ProductsUnavailable` says so). Norms, activations and the
    /// tensors between layers stay f32.
    case bf16

    /// Whether weight matrices are held in 16 bits.
    public var sixteenBitWeights: Bool { self != .full }

    /// Sets the allocator's spare blocks for networks loaded at this precision: half precision is
    /// the low-memory configuration and keeps up to 128 MB beside the activations (512 MB would
    /// add up to 0.5 GB to a 512x512 generation's peak; none at all made its UNet step 0.5 s
    /// slower, every large activation fresh pages: docs/performance.md); full and bf16 keep up to
    /// 512 MB.
    public func configureAllocator() {
        TensorStorage.setCachedBlockLimit((self == .half ? 128 : 512) << 20)
    }

    /// The values a `precision` option takes, in words: "auto, full, half or bf16".
    public static var choicesInWords: String {
        let names = ["auto"] + allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// What `model` adds to its line about a checkpoint loaded at this precision.
    public var loadedNote: String {
        switch self {
        case .full: return ""
        case .half: return ", 16-bit weights"
        case .bf16: return ", bf16 weights and products"
        }
    }

    /// The weights' width in words ("32-bit", "16-bit", "bf16").
    public var weightsDescription: String {
        switch self {
        case .full: return "32-bit"
        case .half: return "16-bit"
        case .bf16: return "bf16"
        }
    }

    /// How the networks' products multiply at this precision.
    public var products: ProductPrecision { self == .bf16 ? .bf16 : .f32 }

    /// The message for `.bf16` on a CPU without bf16 dot products; nil when there is nothing to say.
    public var bf16ProductsUnavailable: String? {
        guard self == .bf16, !ProductPrecision.bf16Available else { return nil }
        return "precision bf16: this CPU has no bf16 dot products (AVX512_BF16), so products are taken in f32 "
            + "over the bf16 weights (the images differ from a bf16 CPU's)"
    }

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
