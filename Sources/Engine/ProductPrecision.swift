import CKernels

/// How matrix products, convolutions and attention multiply on the CPU backend: in f32, or with
/// both operands rounded to bf16 (round to nearest even) and the sums kept in f32, at twice the
/// f32 rate on CPUs with bf16 dot products (AVX512_BF16: AMD Zen 4 and later, Intel Cooper Lake
/// and later). Everything else (norms, activations, softmax, the Winograd transforms) stays f32,
/// and so do the tensors between operations. Set for a scope with `withProductPrecision`; the
/// default is f32.
public enum ProductPrecision: String, Sendable {
    case f32, bf16

    @TaskLocal static var current: ProductPrecision = .f32

    /// The precision products take in the current scope (bf16 only where this CPU has bf16 dot
    /// products: elsewhere f32).
    public static var effective: ProductPrecision {
        current == .bf16 && bf16Available ? .bf16 : .f32
    }

    /// Whether this CPU has bf16 dot products (`SDSHELL_BF16=0` says no, to try the fallback).
    public static let bf16Available = ck_gemm_bf16_supported() != 0

    /// `ck_gemm_args.compute` and its kin for the effective precision.
    var kernelCode: Int32 { self == .bf16 ? 1 : 0 }
}

/// Runs `body` with products taken at `precision` (see `ProductPrecision`).
public func withProductPrecision<T>(_ precision: ProductPrecision, _ body: () throws -> T) rethrows -> T {
    try ProductPrecision.$current.withValue(precision) { try body() }
}
