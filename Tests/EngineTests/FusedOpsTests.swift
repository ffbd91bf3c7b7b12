import Engine
import Testing

/// The fused and batched fast paths against the ops they stand for.
@Suite struct FusedOpsTests {
    private func random(_ shape: [Int], seed: UInt64, grad: Bool = false) throws -> Tensor {
        var rng = SplitMix(seed: seed)
        return try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() }, requiresGrad: grad)
    }

    @Test("group norm + SiLU in one pass equals the two ops; with a gradient wanted it composes them")
    func groupNormSiLU() throws {
        let x = try random([2, 64, 9, 7], seed: 1, grad: true), gamma = try random([64], seed: 2), beta = try random([64], seed: 3)
        let fused = try withNoGrad { try x.groupNorm(groups: 32, weight: gamma, bias: beta, eps: 1e-6, thenSiLU: true) }
        let composed = try withNoGrad { try x.groupNorm(groups: 32, weight: gamma, bias: beta, eps: 1e-6).silu() }
        #expect(try fused.toArray() == composed.toArray())
        let g = try random([2, 64, 9, 7], seed: 4)
        try (x.groupNorm(groups: 32, weight: gamma, bias: beta, eps: 1e-6, thenSiLU: true) * g).sum().backward()
        let fusedGrad = try x.grad!.toArray()
        x.zeroGrad()
        try (x.groupNorm(groups: 32, weight: gamma, bias: beta, eps: 1e-6).silu() * g).sum().backward()
        #expect(try fusedGrad == x.grad!.toArray())
    }

    @Test("a batch of matrices times one shared matrix, done as one tall product, equals the products one by one")
    func batchedTimesShared() throws {
        let a = try random([3, 2, 37, 29], seed: 5), b = try random([29, 41], seed: 6), bias = try random([41], seed: 7)
        let together = try a.matmul(b).toArray()
        let withBias = try a.linear(weight: b.transposed().contiguous(), bias: bias).toArray()
        var oneByOne: [Float] = [], oneByOneBias: [Float] = []
        for i in 0..<3 { for j in 0..<2 {
            let slice = try a.sliced(dim: 0, i, i + 1).sliced(dim: 1, j, j + 1).reshaped([37, 29])
            oneByOne += try slice.matmul(b).toArray()
            oneByOneBias += try slice.linear(weight: b.transposed().contiguous(), bias: bias).toArray()
        } }
        #expect(Compare.relativeError(together, oneByOne.map(Double.init)) <= 1e-6)
        #expect(Compare.relativeError(withBias, oneByOneBias.map(Double.init)) <= 1e-6)
    }

    @Test("a residual accumulated inside the linear layer equals the layer plus the residual, with both gradients")
    func linearWithResidual() throws {
        let x = try random([2, 5, 24], seed: 8, grad: true), w = try random([16, 24], seed: 9), b = try random([16], seed: 10)
        let r = try random([2, 5, 16], seed: 11, grad: true), g = try random([2, 5, 16], seed: 12)
        let fused = try x.linear(weight: w, bias: b, adding: r)
        try (fused * g).sum().backward()
        let (gx, gr) = (try x.grad!.toArray(), try r.grad!.toArray())
        x.zeroGrad(); r.zeroGrad()
        let separate = try x.linear(weight: w, bias: b) + r
        try (separate * g).sum().backward()
        #expect(Compare.relativeError(try fused.toArray(), try separate.toArray().map(Double.init)) <= 1e-6)
        #expect(Compare.relativeError(gx, try x.grad!.toArray().map(Double.init)) <= 1e-6)
        #expect(try gr == g.toArray(), "the residual's gradient is the output's")
        #expect(throws: EngineError.self) { try x.linear(weight: w, bias: b, adding: try random([2, 5, 15], seed: 13)) }
    }

    @Test("selected(dim:) is a view of one index without that dimension; its gradient lands in that slice")
    func selectedView() throws {
        let x = try random([3, 4, 5], seed: 14, grad: true)
        let y = try x.selected(dim: 1, 2)
        #expect(y.shape == [3, 5] && y.storage === x.storage)
        let all = try x.toArray()
        #expect(try y.toArray() == (0..<3).flatMap { i in (0..<5).map { all[i * 20 + 2 * 5 + $0] } })
        try (y * y).sum().backward()
        let grad = try x.grad!.toArray()
        for i in 0..<60 { #expect(grad[i] == ((i / 5) % 4 == 2 ? 2 * all[i] : 0)) }
    }

    @Test("a residual added as the convolution writes its output equals the convolution plus the residual (3x3 and 1x1)",
          arguments: [3, 1])
    func convolutionWithResidual(_ k: Int) throws {
        let x = try random([2, 6, 9, 7], seed: 15, grad: true), w = try random([5, 6, k, k], seed: 16), b = try random([5], seed: 17)
        let r = try random([2, 5, 9, 7], seed: 18, grad: true), g = try random([2, 5, 9, 7], seed: 19)
        let fused = try x.conv2d(weight: w, bias: b, padding: k / 2, adding: r)
        try (fused * g).sum().backward()
        let (gx, gr) = (try x.grad!.toArray(), try r.grad!.toArray())
        x.zeroGrad(); r.zeroGrad()
        let separate = try x.conv2d(weight: w, bias: b, padding: k / 2) + r
        try (separate * g).sum().backward()
        #expect(Compare.relativeError(try fused.toArray(), try separate.toArray().map(Double.init)) <= 1e-6)
        #expect(Compare.relativeError(gx, try x.grad!.toArray().map(Double.init)) <= 1e-6)
        #expect(try gr == g.toArray(), "the residual's gradient is the output's")
    }
}
