import CKernels

extension CPUBackend {
    /// Whether this machine's matrix products go through the engine's own GEMM (`ck_gemm`) rather
    /// than oneDNN's: on AVX2 CPUs without AVX-512, where it runs at oneDNN's rate and reads 16-bit
    /// weights as it packs them (no f32 copy per product). The choice is per machine, not per
    /// element type, so a 16-bit checkpoint gives the same numbers at half and full precision.
    static let usesEngineGEMM = ck_gemm_preferred_for_f32() != 0

    /// a @ b (+ bias) (+ addend) into `out` through `ck_gemm`, when this machine uses it and b is a
    /// matrix (f32, f16 or bf16) stored [k, n] or [n, k]; false (nothing written) otherwise.
    func engineGEMM(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?, into out: Tensor) throws -> Bool {
        guard Self.usesEngineGEMM, b.rank == 2, a.dtype == .f32, out.count > 0 else { return false }
        let k = a.shape[a.rank - 1], n = b.shape[1], rows = out.count / n
        guard b.shape[0] == k, bias.map({ $0.dtype == .f32 && $0.isContiguous && $0.count == n }) ?? true,
              addend.map({ $0.dtype == .f32 && $0.isContiguous && $0.count == out.count }) ?? true else { return false }
        let (rowSource, transA, lda) = try gemmOperand(a)
        guard transA == noTranspose, rowsFollowOn(rowSource, lda: lda) else { return false }
        guard let (transB, ldb) = matrixLayout(b) else { return false }
        let storedNK = transB == transpose
        var args = ck_gemm_args(m: rows, n: n, k: k, a: rowSource.floatPointer, lda: lda,
                                b: UnsafeRawPointer(b.storage.raw + b.offset * b.dtype.size), ldb: ldb, b_dtype: b.dtype.kernelCode,
                                b_nk: storedNK ? 1 : 0, beta: 0, bias: bias?.floatPointer, addend: addend?.floatPointer, ldd: n,
                                c: out.floatPointer, ldc: n)
        guard ck_gemm(&args) == 0 else {
            throw EngineError.backendFailure(op: "matmul", message: "out of memory for the GEMM's packing buffers")
        }
        return true
    }
}
