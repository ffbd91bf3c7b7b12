/// Element types. Compute is always f32; f16 and bf16 are storage formats (weights on disk and in
/// memory) converted to f32 before arithmetic.
public enum DType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 2 }
}
