import Engine

/// Deterministic benchmark inputs in [-1, 1) from a 64-bit LCG (Knuth's MMIX constants): the same
/// numbers on every run, no dependence on a random source.
struct RandomFill {
    var state: UInt64 = 1

    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
    }

    mutating func tensor(_ shape: [Int]) throws -> Tensor {
        try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in next() })
    }
}
