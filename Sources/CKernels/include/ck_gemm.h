#ifndef CK_GEMM_H
#define CK_GEMM_H
/// Row-major single-precision GEMM: C = alpha op(A) op(B) + beta C, op = transpose when trans is 'T'.
/// Runs oneDNN's sgemm (JIT kernels for the CPU's widest ISA): on this project's machines it
/// measured 1.2x-5x OpenBLAS 0.3.21, whose Debian build does not know newer cores and falls back
/// to SSE kernels (see docs/performance.md). Returns 0, or a oneDNN status.
int ck_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
             long ldb, float beta, float *c, long ldc);
/// The same on the calling thread only (for use inside ck_parallel_for).
int ck_sgemm_serial(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda,
                    const float *b, long ldb, float beta, float *c, long ldc);
#endif
