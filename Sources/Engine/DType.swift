/// Element types. Compute is always f32; f16 and bf16 are storage formats (weights on disk and in
/// memory) converted to f32 before arithmetic.
public enum DType: String, Sendable, CaseIterable {
    case f32, f16, bf16

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 2 }

    /// The code CKernels' kernels take for a storage type (`ck_element.h`: 0 f32, 1 f16, 2 bf16).
    var kernelCode: Int32 {
        switch self { case .f32: 0; case .f16: 1; case .bf16: 2 }
    }
}
