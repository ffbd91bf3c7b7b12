import CKernels
@testable import Engine
import Testing

/// The memory-bounded attention kernel against attention composed from matmul and softmax.
@Suite struct AttentionTests {
    private func random(_ shape: [Int], seed: UInt64) throws -> Tensor {
        var rng = SplitMix(seed: seed)
        return try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() }, requiresGrad: true)
    }

    /// softmax(q k^T / sqrt(d) + mask) v with the full score matrix.
    private func naive(_ q: Tensor, _ k: Tensor, _ v: Tensor, causal: Bool) throws -> Tensor {
        let d = q.shape.last!
        var scores = try q.matmul(k.transposed()) * (1 / Float(d).squareRoot())
        if causal {
            let lq = q.shape[q.rank - 2], lk = k.shape[k.rank - 2]
            let mask = try Tensor(shape: [lq, lk], data: (0..<lq * lk).map { ($0 % lk) > ($0 / lk) ? -Float.infinity : 0 })
            scores = try scores + mask
        }
        return try scores.softmax().matmul(v)
    }

    /// Degenerate shapes through the kernel, over two key tiles and two slices: keys of no columns
    /// (d = 0: every score 0, so each output row is the mean of the values) and values of none
    /// (dv = 0: nothing to write), with f32 and, where the CPU has them, bf16 products.
    @Test func headsOfNoColumnsAreHandled() throws {
        let (heads, lq, lk, dv) = (2, 3, 1500, 5)
        var rng = SplitMix(seed: 9)
        let v = (0..<heads * lk * dv).map { _ in Float(rng.normal()) }
        let nothing = [Float](repeating: 0, count: 1)
        for compute in EngineGEMMTests.computeTypes {
            var o = [Float](repeating: .nan, count: heads * lq * dv)
            var s = ck_attention_shape()
            (s.heads, s.lq, s.lk, s.d, s.dv, s.scale, s.compute) = (heads, lq, lk, 0, dv, 1, compute)
            #expect(ck_attention_forward(&s, nothing, nothing, v, &o, nil) == 0)
            for h in 0..<heads {
                for j in 0..<dv {
                    let mean = (0..<lk).map { Double(v[(h * lk + $0) * dv + j]) }.reduce(0, +) / Double(lk)
                    // bf16 products round the probabilities (1/1500) and the values to 8 bits.
                    let tolerance = compute == 1 ? 2e-2 : 1e-5
                    for i in 0..<lq { #expect(abs(Double(o[(h * lq + i) * dv + j]) - mean) <= tolerance, "compute \(compute)") }
                }
            }
            (s.d, s.dv) = (4, 0)
            let qk = [Float](repeating: 1, count: heads * max(lq, lk) * 4)
            #expect(ck_attention_forward(&s, qk, qk, nothing, &o, nil) == 0)
        }
    }

    @Test("chunked and naive attention agree to 1e-5, forward and backward",
          arguments: [(2, 3, 300, 300, 40, false), (1, 2, 513, 77, 64, false), (2, 2, 260, 260, 32, true)])
    func chunkedEqualsNaive(_ b: Int, _ h: Int, _ lq: Int, _ lk: Int, _ d: Int, _ causal: Bool) throws {
        let q = try random([b, h, lq, d], seed: 1), k = try random([b, h, lk, d], seed: 2), v = try random([b, h, lk, d], seed: 3)
        let g = try random([b, h, lq, d], seed: 4).detached()
        let fast = try Tensor.scaledDotProductAttention(q: q, k: k, v: v, causal: causal)
        try (fast * g).sum().backward()
        let fastGrads = try [q, k, v].map { try $0.grad!.toArray() }
        for t in [q, k, v] { t.zeroGrad() }
        let slow = try naive(q, k, v, causal: causal)
        try (slow * g).sum().backward()
        #expect(Compare.relativeError(try fast.toArray(), try slow.toArray().map(Double.init)) <= 1e-5)
        for (i, t) in [q, k, v].enumerated() {
            let err = Compare.relativeError(fastGrads[i], try t.grad!.toArray().map(Double.init))
            #expect(err <= 1e-5, "gradient \(["q", "k", "v"][i]): \(err)")
        }
    }

    @Test("heads read in place from [B, L, H, d] projections; the output merges back without a copy",
          arguments: [(2, 4, 300, 77, 40, false), (1, 2, 130, 130, 16, true)])
    func stridedHeads(_ b: Int, _ h: Int, _ lq: Int, _ lk: Int, _ d: Int, _ causal: Bool) throws {
        let qp = try random([b, lq, h, d], seed: 11), kp = try random([b, lk, h, d], seed: 12), vp = try random([b, lk, h, d], seed: 13)
        let g = try random([b, h, lq, d], seed: 14).detached()
        let q = try qp.transposed(1, 2), k = try kp.transposed(1, 2), v = try vp.transposed(1, 2)
        let fast = try Tensor.scaledDotProductAttention(q: q, k: k, v: v, causal: causal)
        #expect(try fast.transposed(1, 2).isContiguous, "output laid out as [B, L, H, d]")
        try (fast * g).sum().backward()
        let fastGrads = try [qp, kp, vp].map { try $0.grad!.toArray() }
        for t in [qp, kp, vp] { t.zeroGrad() }
        let slow = try naive(q.contiguous(), k.contiguous(), v.contiguous(), causal: causal)
        try (slow * g).sum().backward()
        #expect(Compare.relativeError(try fast.toArray(), try slow.toArray().map(Double.init)) <= 1e-5)
        for (i, t) in [qp, kp, vp].enumerated() {
            let err = Compare.relativeError(fastGrads[i], try t.grad!.toArray().map(Double.init))
            #expect(err <= 1e-5, "gradient \(["q", "k", "v"][i]): \(err)")
        }
    }

    /// bf16 products (q, k, the probabilities and v rounded to bf16; keys and values packed once per
    /// slice, read in key tiles of 512 from 1100 keys; heads strided in place, causal or not) against
    /// f32 attention: within bf16's rounding (measured 2e-3 causal, 6e-3 not, of the output's scale).
    @Test(.enabled(if: ProductPrecision.bf16Available), arguments: [false, true])
    func bf16ProductsStayNearF32(_ causal: Bool) throws {
        let (b, h, lq, lk, d) = (2, 3, 300, 1100, 40)
        let qp = try random([b, lq, h, d], seed: 21).detached(), kp = try random([b, lk, h, d], seed: 22).detached()
        let vp = try random([b, lk, h, d], seed: 23).detached()
        let (q, k, v) = (try qp.transposed(1, 2), try kp.transposed(1, 2), try vp.transposed(1, 2))
        let f32 = try withNoGrad { try Tensor.scaledDotProductAttention(q: q, k: k, v: v, causal: causal).toArray() }
        let bf16 = try withProductPrecision(.bf16) {
            try withNoGrad { try Tensor.scaledDotProductAttention(q: q, k: k, v: v, causal: causal).toArray() }
        }
        let error = Compare.relativeError(bf16, f32.map(Double.init))
        print("attention with bf16 products (causal \(causal)): relative error \(error)")
        #expect(error <= 2e-2 && error > 1e-5, "\(error)")
    }

    @Test("8 heads x 4096 x 4096: scratch stays under 64 MiB and equals naive attention")
    func boundedMemory() throws {
        let q = try random([1, 8, 4096, 40], seed: 5), k = try random([1, 8, 4096, 40], seed: 6), v = try random([1, 8, 4096, 40], seed: 7)
        ck_attention_scratch_reset()
        let out = try Tensor.scaledDotProductAttention(q: q, k: k, v: v)
        try out.sum().backward()
        let peak = ck_attention_scratch_peak()
        #expect(peak > 0)
        #expect(peak < 64 << 20, "attention scratch peak \(peak) bytes")
        let reference = try withNoGrad { try naive(q, k, v, causal: false) }
        #expect(Compare.relativeError(try out.toArray(), try reference.toArray().map(Double.init)) <= 1e-5)
    }
}
