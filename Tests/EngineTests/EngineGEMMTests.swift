import CKernels
@testable import Engine
import Testing

/// The engine's own GEMM (`ck_gemm`, packed panels and an AVX2 register tile) against a
/// double-precision loop: every B layout and element type, bias, addend and beta, on shapes whose
/// edges cut the 6x16 tile, the 256-deep blocks and the thread split.
@Suite struct EngineGEMMTests {
    /// (m, n, k): one element; ragged tiles; exact tiles; a k just over one block; two blocks; wide n; k 0.
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (7, 17, 9), (6, 16, 256), (13, 35, 321), (150, 70, 641), (64, 3100, 40), (5, 9, 0)]

    @Test(arguments: shapes) func matchesADoublePrecisionProduct(_ shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        let a = WinogradTests.random(m * k, seed: 1), bias = WinogradTests.random(n, seed: 3)
        let addend = WinogradTests.random(m * n, seed: 4), before = WinogradTests.random(m * n, seed: 5)
        for elementType: Int32 in [0, 1, 2] {
            // B's values as stored (16-bit types rounded), f32 copies for the reference.
            var b = WinogradTests.random(n * k, seed: 2)
            var stored16 = [UInt16](repeating: 0, count: b.count)
            if elementType == 1 { ck_f32_to_f16(b, &stored16, b.count); ck_f16_to_f32(stored16, &b, b.count) }
            if elementType == 2 { ck_f32_to_bf16(b, &stored16, b.count); ck_bf16_to_f32(stored16, &b, b.count) }
            for storedNK in [false, true] {
                for (withBias, withAddend, beta) in [(false, false, Float(0)), (true, false, 0), (false, true, 0), (true, true, 0.5)] {
                    var c = before
                    let status = a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBytes { pb32 in
                            stored16.withUnsafeBytes { pb16 in
                                bias.withUnsafeBufferPointer { pbias in
                                    addend.withUnsafeBufferPointer { padd in
                                        c.withUnsafeMutableBufferPointer { pc in
                                            var args = ck_gemm_args(
                                                m: m, n: n, k: k, a: pa.baseAddress, lda: max(k, 1),
                                                b: elementType == 0 ? pb32.baseAddress : pb16.baseAddress,
                                                ldb: storedNK ? max(k, 1) : n, b_dtype: elementType, b_nk: storedNK ? 1 : 0, beta: beta,
                                                bias: withBias ? pbias.baseAddress : nil, addend: withAddend ? padd.baseAddress : nil,
                                                ldd: n, c: pc.baseAddress, ldc: n)
                                            return ck_gemm(&args)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    #expect(status == 0)
                    var reference = [Float](repeating: 0, count: m * n)
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = Double(beta) * Double(before[i * n + j]) + (withBias ? Double(bias[j]) : 0)
                                + (withAddend ? Double(addend[i * n + j]) : 0)
                            for p in 0..<k { sum += Double(a[i * k + p]) * Double(storedNK ? b[j * k + p] : b[p * n + j]) }
                            reference[i * n + j] = Float(sum)
                        }
                    }
                    // max |c - reference| / max |reference| (absolute when the reference is all 0: k = 0, nothing added).
                    let scale = max(reference.map(abs).max() ?? 0, 1e-30)
                    let error = zip(c, reference).map { abs($0 - $1) }.max()! / scale
                    #expect(error < 1e-5, "m \(m) n \(n) k \(k) type \(elementType) nk \(storedNK) bias \(withBias) addend \(withAddend): \(error)")
                }
            }
        }
    }

    /// A 16-bit weight through `matmul` computes the bits its f32 widening does (the product is the
    /// same whichever GEMM the machine uses: `CPUBackend.usesEngineGEMM` is per machine, not per type).
    @Test func sixteenBitWeightsGiveTheBitsOfTheirWidening() throws {
        let x = try Tensor(shape: [2, 37, 96], data: WinogradTests.random(2 * 37 * 96, seed: 6))
        let w = try Tensor(shape: [80, 96], data: WinogradTests.random(80 * 96, seed: 7)).to(.f16)
        let bias = try Tensor(shape: [80], data: WinogradTests.random(80, seed: 8))
        let half = try x.linear(weight: w, bias: bias).toArray()
        let full = try x.linear(weight: w.to(.f32), bias: bias).toArray()
        #expect(half == full)
    }
}
