import CKernels
@testable import Engine
import Testing

/// The engine's own GEMM (`ck_gemm`, packed panels and an AVX-512 or AVX2 register tile for f32, the
/// AVX512_BF16 one for bf16 products where the CPU has them) against a double-precision loop: every
/// B layout and element type, alpha, bias, addend and beta, A packed as the product runs or in
/// advance, on shapes whose edges cut the 6x16 and 12x32 tiles, the 256-deep blocks and the thread
/// split; and the two f32 kernels against each other, bit for bit.
@Suite struct EngineGEMMTests {
    /// (m, n, k): one element; ragged tiles; exact tiles; a k just over one block; two blocks; wide n; k 0.
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (7, 17, 9), (6, 16, 256), (13, 35, 321), (150, 70, 641), (64, 3100, 40), (5, 9, 0)]

    /// The products this CPU can take: f32, and bf16 where it has bf16 dot products.
    static let computeTypes: [Int32] = ProductPrecision.bf16Available ? [0, 1] : [0]

    /// C from ck_gemm on these operands (A packed in advance with `prepacked`).
    static func product(m: Int, n: Int, k: Int, a: [Float], b32: [Float], b16: [UInt16], elementType: Int32, storedNK: Bool,
                        alpha: Float, beta: Float, bias: [Float]?, addend: [Float]?, before: [Float], compute: Int32,
                        prepacked: Bool = false, avx2Kernel: Bool = false) -> (status: Int32, c: [Float]) {
        var c = before
        var args = ck_gemm_args()
        (args.m, args.n, args.k, args.lda, args.ldb, args.ldd, args.ldc) = (m, n, k, max(k, 1), storedNK ? max(k, 1) : n, n, n)
        ck_gemm_limit_to_avx2(avx2Kernel ? 1 : 0)
        defer { ck_gemm_limit_to_avx2(0) }
        (args.b_dtype, args.b_nk, args.alpha, args.beta, args.compute) = (elementType, storedNK ? 1 : 0, alpha, beta, compute)
        let packedBytes = ck_gemm_packed_a_bytes(compute, m, k)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: max(packedBytes, 64), alignment: 64)
        defer { packed.deallocate() }
        let status = a.withUnsafeBytes { pa in b32.withUnsafeBytes { pb32 in b16.withUnsafeBytes { pb16 in
            (bias ?? []).withUnsafeBufferPointer { pbias in (addend ?? []).withUnsafeBufferPointer { padd in
                c.withUnsafeMutableBufferPointer { pc in
                    args.a = pa.baseAddress
                    args.b = elementType == 0 ? pb32.baseAddress : pb16.baseAddress
                    args.bias = bias == nil ? nil : pbias.baseAddress
                    args.addend = addend == nil ? nil : padd.baseAddress
                    args.c = pc.baseAddress
                    if prepacked && k > 0 {
                        guard ck_gemm_pack_a(&args, packed) == 0 else { return Int32(-3) }
                        args.a_packed = UnsafeRawPointer(packed)
                    }
                    return ck_gemm(&args)
                }
            } }
        } } }
        return (status, c)
    }

    @Test(arguments: shapes) func matchesADoublePrecisionProduct(_ shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        let a32 = WinogradTests.random(m * k, seed: 1), bias = WinogradTests.random(n, seed: 3)
        let addend = WinogradTests.random(m * n, seed: 4), before = WinogradTests.random(m * n, seed: 5)
        for compute in Self.computeTypes {
            // bf16 products: the reference multiplies the operands as the kernel rounds them.
            var a = a32
            if compute == 1 { var r = [UInt16](repeating: 0, count: a.count); ck_f32_to_bf16(a32, &r, a.count); ck_bf16_to_f32(r, &a, a.count) }
            for elementType: Int32 in [0, 1, 2] {
                // B's values as stored (16-bit types rounded), f32 copies for the reference.
                let b32 = WinogradTests.random(n * k, seed: 2)
                var b = b32
                var stored16 = [UInt16](repeating: 0, count: b.count)
                if elementType == 1 { ck_f32_to_f16(b32, &stored16, b.count); ck_f16_to_f32(stored16, &b, b.count) }
                if elementType == 2 { ck_f32_to_bf16(b32, &stored16, b.count); ck_bf16_to_f32(stored16, &b, b.count) }
                if compute == 1 { var r = [UInt16](repeating: 0, count: b.count); ck_f32_to_bf16(b, &r, b.count); ck_bf16_to_f32(r, &b, b.count) }
                let b32Stored = elementType == 0 ? b32 : b
                for storedNK in [false, true] {
                    for (withBias, withAddend, alpha, beta) in [(false, false, Float(1), Float(0)), (true, false, 1, 0),
                                                                (false, true, 0.75, 0), (true, true, 0.75, 0.5)] {
                        let run = { (prepacked: Bool, avx2Kernel: Bool) in
                            Self.product(m: m, n: n, k: k, a: a32, b32: b32Stored, b16: stored16, elementType: elementType, storedNK: storedNK,
                                         alpha: alpha, beta: beta, bias: withBias ? bias : nil, addend: withAddend ? addend : nil,
                                         before: before, compute: compute, prepacked: prepacked, avx2Kernel: avx2Kernel)
                        }
                        let (status, c) = run(false, false)
                        #expect(status == 0)
                        var reference = [Float](repeating: 0, count: m * n)
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0
                                for p in 0..<k { sum += Double(a[i * k + p]) * Double(storedNK ? b[j * k + p] : b[p * n + j]) }
                                sum = Double(alpha) * sum + Double(beta) * Double(before[i * n + j]) + (withBias ? Double(bias[j]) : 0)
                                    + (withAddend ? Double(addend[i * n + j]) : 0)
                                reference[i * n + j] = Float(sum)
                            }
                        }
                        // max |c - reference| / max |reference| (absolute when the reference is all 0: k = 0, nothing added).
                        let scale = max(reference.map(abs).max() ?? 0, 1e-30)
                        let error = zip(c, reference).map { abs($0 - $1) }.max()! / scale
                        let what = "m \(m) n \(n) k \(k) compute \(compute) type \(elementType) nk \(storedNK) bias \(withBias) addend \(withAddend)"
                        #expect(error < 1e-5, "\(what): \(error)")
                        // A packed in advance (the Winograd weights' path) gives the same bits.
                        #expect(run(true, false).c == c, "\(what): A packed in advance")
                        // f32: the AVX2 kernel gives the AVX-512 kernel's bits (one sum order; on an
                        // AVX2 CPU both runs take the AVX2 kernel).
                        if compute == 0 {
                            #expect(run(false, true).c == c, "\(what): the AVX2 kernel")
                            #expect(run(true, true).c == c, "\(what): the AVX2 kernel, A packed in advance")
                        }
                    }
                }
            }
        }
    }

    /// bf16 products round both operands to bf16 (nearest even), and only those: a product whose
    /// operands are exact in bf16 is exact, one whose A needs more bits is not.
    @Test(.enabled(if: ProductPrecision.bf16Available)) func bf16ProductsRoundTheOperands() throws {
        let exact = Self.product(m: 1, n: 1, k: 2, a: [1.5, -2], b32: [3, 0.25], b16: [], elementType: 0, storedNK: false,
                                 alpha: 1, beta: 0, bias: nil, addend: nil, before: [0], compute: 1)
        #expect(exact.c == [4])
        // 1 + 2^-10 rounds to 1 in bf16 (8 significant bits): the bf16 product is 3, the f32 one is not.
        let a: [Float] = [1 + 1.0 / 1024, 0]
        let bf16 = Self.product(m: 1, n: 1, k: 2, a: a, b32: [3, 0], b16: [], elementType: 0, storedNK: false,
                                alpha: 1, beta: 0, bias: nil, addend: nil, before: [0], compute: 1)
        let f32 = Self.product(m: 1, n: 1, k: 2, a: a, b32: [3, 0], b16: [], elementType: 0, storedNK: false,
                               alpha: 1, beta: 0, bias: nil, addend: nil, before: [0], compute: 0)
        #expect(bf16.c == [3] && f32.c == [3 + 3.0 / 1024])
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
