import Engine
import Testing

/// Same inputs, same bits, whatever the thread count.
@Suite(.serialized) struct DeterminismTests {
    private func workload() throws -> [[Float]] {
        var rng = SplitMix(seed: 42)
        func r(_ s: [Int]) throws -> Tensor { try Tensor(shape: s, data: (0..<s.reduce(1, *)).map { _ in rng.normal() }, requiresGrad: true) }
        let x = try r([2, 64, 24, 24]), w = try r([64, 64, 3, 3]), b = try r([64])
        let gamma = try r([64]), beta = try r([64])
        let h = try x.conv2d(weight: w, bias: b, padding: 1).groupNorm(groups: 32, weight: gamma, bias: beta).silu()
        let seq = try h.reshaped([2, 64, 576]).transposed(1, 2)                     // [2, 576, 64]
        let q = try seq.reshaped([2, 576, 8, 8]).transposed(1, 2)                    // [2, 8, 576, 8]
        let a = try Tensor.scaledDotProductAttention(q: q, k: q, v: q)
        let wl = try r([128, 64])
        let y = try a.transposed(1, 2).reshaped([2, 576, 64]).layerNorm(weight: nil, bias: nil).linear(weight: wl).geglu()
        let loss = try (y * y).mean(dims: [0, 1, 2])
        try loss.backward()
        return try [y.toArray(), x.grad!.toArray(), w.grad!.toArray(), gamma.grad!.toArray(), wl.grad!.toArray()]
    }

    @Test("forward and backward are bit-identical on 1 and 2 threads")
    func threadCountIndependent() throws {
        let saved = Engine.threads
        defer { Engine.threads = saved }
        Engine.threads = 1
        let one = try workload()
        Engine.threads = 2
        let two = try workload()
        for (i, (a, b)) in zip(one, two).enumerated() {
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "result \(i) differs between 1 and 2 threads")
        }
    }
}
