import Engine
import Testing

/// Every gradient against central finite differences of the engine's own forward pass. The loss
/// L = sum(out * g) and the difference quotient are accumulated in double; the forward pass is f32,
/// so the step is chosen large enough (1e-2 relative) that f32 rounding stays below the tolerance.
@Suite struct FiniteDifferenceTests {
    static let cases = Fixtures.cases.filter { !$0.grads.isEmpty && $0.name != "sdpa_large" }

    private func loss(_ c: ReferenceCase, _ x: [String: Tensor]) throws -> Double {
        let outs = try withNoGrad { try CaseRunner.run(c, x) }
        var total = 0.0
        for (out, g) in zip(outs, c.gradOutputs) {
            for (a, b) in zip(try out.toArray(), g.data) { total += Double(a) * b }
        }
        return total
    }

    @Test("autograd equals central differences", arguments: cases)
    func centralDifferences(_ c: ReferenceCase) throws {
        let x = try CaseRunner.inputs(c)
        let outs = try CaseRunner.run(c, x)
        var l: Tensor? = nil
        for (out, g) in zip(outs, c.gradOutputs) {
            let term = try (out * g.tensor()).sum()
            l = try l.map { try $0 + term } ?? term
        }
        try l!.backward()
        var rng = SplitMix(seed: UInt64(c.name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        for name in c.grads.keys.sorted() {
            let base = c.inputs[name]!
            let analytic = try x[name]!.grad!.toArray()
            let scale = max(base.data.map { abs($0) }.max() ?? 1, 1e-3)
            let h = 1e-2 * scale
            var checked = 0
            for _ in 0..<12 {
                let i = Int(rng.next() % UInt64(base.data.count))
                // Skip points within a step of a kink (clamp bounds).
                if c.op == "clamp", [c.attrs["min"]!, c.attrs["max"]!].contains(where: { abs(base.data[i] - $0) < 2 * h }) { continue }
                func evaluate(_ delta: Double) throws -> Double {
                    var data = base.data
                    data[i] += delta
                    var inputs = x
                    inputs[name] = try ReferenceCase.Values(shape: base.shape, data: data).tensor()
                    return try loss(c, inputs)
                }
                let numeric = (try evaluate(h) - evaluate(-h)) / (2 * h)
                let tolerance = 2e-2 * max(abs(numeric), 1.0)
                #expect(abs(Double(analytic[i]) - numeric) <= tolerance,
                        "\(c.name) d/d\(name)[\(i)]: autograd \(analytic[i]) vs finite difference \(numeric)")
                checked += 1
            }
            #expect(checked > 0)
        }
    }
}

/// A small deterministic generator for test sampling.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func normal() -> Float {
        let u1 = Double(next() >> 11) / Double(1 << 53) + 1e-300, u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2))
    }
}
import Foundation
