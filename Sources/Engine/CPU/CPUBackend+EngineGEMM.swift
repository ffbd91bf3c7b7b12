import CKernels

extension CPUBackend {
    /// Whether this machine's matrix products go through the engine's own GEMM (`ck_gemm`) rather
    /// than oneDNN's: on AVX2 CPUs without AVX-512, where it runs at oneDNN's rate and reads 16-bit
    /// weights as it packs them (no f32 copy per product). The choice is per machine, not per
    /// element type, so a 16-bit checkpoint gives the same numbers at half and full precision.
    static let usesEngineGEMM = ck_gemm_preferred_for_f32() != 0

    /// Whether products in the current scope go through the engine's GEMM: on the machines above,
    /// and wherever products are taken in bf16 (its kernel is the only bf16 one).
    static var engineGEMMInScope: Bool { usesEngineGEMM || ProductPrecision.effective == .bf16 }

    /// a @ b (+ bias) (+ addend) into `out` through `ck_gemm` at the scope's product precision,
    /// when `engineGEMMInScope` (or `onAnyMachine`: a caller that takes the engine's GEMM whatever the
    /// machine prefers, as 16-bit weights' patch products do) and b is a matrix (f32, f16 or bf16) stored [k, n] or [n, k]; false (nothing
    /// written) otherwise.
    func engineGEMM(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?, into out: Tensor,
                    onAnyMachine: Bool = false) throws -> Bool {
        guard Self.engineGEMMInScope || onAnyMachine, b.rank == 2, a.dtype == .f32, out.count > 0 else { return false }
        let k = a.shape[a.rank - 1], n = b.shape[1], rows = out.count / n
        guard b.shape[0] == k, bias.map({ $0.dtype == .f32 && $0.isContiguous && $0.count == n }) ?? true,
              addend.map({ $0.dtype == .f32 && $0.isContiguous && $0.count == out.count }) ?? true else { return false }
        let (rowSource, transA, lda) = try gemmOperand(a)
        guard transA == noTranspose, rowsFollowOn(rowSource, lda: lda) else { return false }
        guard let (transB, ldb) = matrixLayout(b) else { return false }
        let storedNK = transB == transpose
        var args = ck_gemm_args(m: rows, n: n, k: k, a: UnsafeRawPointer(rowSource.floatPointer), lda: lda, a_dtype: 0,
                                b: b.elements, ldb: ldb, b_dtype: b.dtype.kernelCode,
                                b_nk: storedNK ? 1 : 0, alpha: 1, beta: 0, bias: bias?.floatPointer, addend: addend?.floatPointer, ldd: n,
                                c: out.floatPointer, ldc: n, compute: ProductPrecision.effective.kernelCode, a_packed: nil, b_packed: nil)
        // Frozen weights are packed for the bf16 GEMM once and kept.
        let packed = args.compute == 1 ? try packedForBF16(b, form: "gemm bf16 B \(storedNK ? "nk" : "kn") k \(k) n \(n) ld \(ldb)",
                                                           bytes: ck_gemm_packed_b_bytes(1, n, k), op: "matmul") { ck_gemm_pack_b(&args, $0) } : nil
        args.b_packed = packed.map { UnsafeRawPointer($0.storage.raw) }
        try runGEMM(&args, "matmul")
        return true
    }

    /// `weight`'s operand packed for the bf16 GEMM by `pack` (ck_gemm_pack_a or _b into `bytes`
    /// bytes), made once and kept while the weight lives (`DerivedWeights`, which also keeps the
    /// memory alive for the GEMM); nil when the weight is not frozen.
    func packedForBF16(_ weight: Tensor, form: String, bytes: Int, op: String,
                       _ pack: (UnsafeMutableRawPointer) -> Int32) throws -> Tensor? {
        guard DerivedWeights.qualifies(weight) else { return nil }
        return try DerivedWeights.value(of: weight, form: form) {
            let packed = try Tensor(uninitialized: [(bytes + 1) / 2], dtype: .bf16, op: op + " weights")
            guard pack(packed.storage.raw) == 0 else {
                throw EngineError.backendFailure(op: op, message: "this CPU has no bf16 dot products")
            }
            return packed
        }
    }

    /// Runs `ck_gemm`, its failure as an engine error.
    func runGEMM(_ args: inout ck_gemm_args, _ op: String) throws {
        switch ck_gemm(&args) {
        case 0: return
        case -2: throw EngineError.backendFailure(op: op, message: "this CPU has no bf16 dot products")
        default: throw EngineError.backendFailure(op: op, message: "out of memory for the GEMM's packing buffers")
        }
    }

    /// A 1x1 convolution in the current scope's bf16 products: y[b] (O x HW) = W (O x C) x[b]
    /// (C x HW) through `ck_gemm`, W packed once when frozen (else read as stored), bias and
    /// residual filled in first. False when products are f32 here.
    func pointwiseProductsInBF16(_ x: Tensor, weight: Tensor, bias: Tensor?, adding residual: Tensor?, into y: Tensor) throws -> Bool {
        guard ProductPrecision.effective == .bf16, weight.isContiguous else { return false }
        let (n, c, hw, o) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3], weight.shape[0])
        let accumulate = bias != nil || residual != nil
        if accumulate { ck_fill_each_row(y.floatPointer, bias?.floatPointer, o, residual?.floatPointer, n * o, hw) }
        let beta: Float = accumulate ? 1 : 0
        var args = ck_gemm_args()
        (args.m, args.n, args.k, args.lda, args.ldb, args.ldc) = (o, hw, c, c, hw, hw)
        (args.a, args.a_dtype, args.b_dtype, args.alpha, args.beta, args.compute) = (weight.elements, weight.dtype.kernelCode, 0, 1, beta, 1)
        // Frozen weights are packed once (kept), not for every image of every call.
        let packed = try packedForBF16(weight, form: "gemm bf16 A \(o)x\(c)", bytes: ck_gemm_packed_a_bytes(1, o, c), op: "conv2d") {
            ck_gemm_pack_a(&args, $0)
        }
        args.a_packed = packed.map { UnsafeRawPointer($0.storage.raw) }
        for b in 0..<n {
            (args.b, args.c) = (UnsafeRawPointer(x.floatPointer + b * c * hw), y.floatPointer + b * o * hw)
            try runGEMM(&args, "conv2d")
        }
        return true
    }
}
