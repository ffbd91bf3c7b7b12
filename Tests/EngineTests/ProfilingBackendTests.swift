import Engine
import Testing

/// `ProfilingBackend` (behind `sdbench unet --profile`) times the calls without changing them.
@Suite struct ProfilingBackendTests {
    @Test("the profiler counts calls and direct FLOPs per operation and shape, and results equal the wrapped backend's")
    func countsCallsAndFLOPs() throws {
        var rng = SplitMix(seed: 9)
        func random(_ shape: [Int]) throws -> Tensor {
            try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() })
        }
        let x = try random([2, 8, 6, 6]), w = try random([16, 8, 3, 3]), a = try random([5, 12]), b = try random([12, 7])
        func work() throws -> [Float] {
            let y = try x.conv2d(weight: w, padding: 1)
            return try y.toArray() + a.matmul(b).toArray() + a.matmul(b).silu().toArray()
        }
        let plain = try work()
        let profiler = ProfilingBackend(Engine.cpu)
        let profiled = try Engine.withBackend(profiler) { try work() }
        #expect(profiled == plain)
        let byName = Dictionary(uniqueKeysWithValues: profiler.report.map { ($0.operation, $0) })
        let conv = try #require(byName["conv2d 3x3 8->16 at 6x6 n2"])
        #expect(conv.calls == 1 && conv.flops == 2 * (2 * 16 * 6 * 6) * 8 * 9)
        let matmul = try #require(byName["matmul 5x12 @ 12x7"])
        #expect(matmul.calls == 2 && matmul.flops == 2 * 2 * 5 * 12 * 7)
        #expect(byName["unary silu"]?.calls == 1)
        #expect(profiler.totalSeconds > 0)
    }
}
