/// A stream of standard normal samples, drawn in calls of a given shape (C order).
public protocol RandomSource {
    /// The next `count` samples.
    mutating func randn(_ count: Int) -> [Float]
}

extension RandomSource {
    /// The next samples for a tensor of `shape`.
    public mutating func randn(shape: [Int]) -> [Float] { randn(shape.reduce(1, *)) }
}

/// The random sources A1111 offers (infotext `RNG:`).
public enum RandomSourceKind: String, Sendable, CaseIterable {
    /// torch's CPU generator (A1111 "CPU").
    case cpu
    /// A1111's "NV" source: Philox as torch.randn on CUDA (A1111's default "GPU" on NVIDIA cards).
    case nv

    /// A fresh generator seeded as A1111 seeds one image's generator.
    public func make(seed: UInt64) -> any RandomSource {
        switch self {
        case .cpu: return TorchCPURandom(seed: seed)
        case .nv: return PhiloxRandom(seed: seed)
        }
    }
}
