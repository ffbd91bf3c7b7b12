#ifndef CK_PACKED_GEMM_H
#define CK_PACKED_GEMM_H
#include <stddef.h>

/// One product C = A B + beta C (+ bias per column) (+ addend), A row-major f32 [m, k], B f32,
/// f16 or bf16, stored [k, n] or, as linear and convolution weights are, [n, k].
typedef struct {
    long m, n, k;
    const float *a;
    long lda;
    /// B's elements; `b_dtype`: 0 f32, 1 f16, 2 bf16.
    const void *b;
    long ldb;
    int b_dtype;
    /// 1: B is stored [n, k] (element (p, j) at b[j * ldb + p]); 0: [k, n] (at b[p * ldb + j]).
    int b_nk;
    float beta;
    /// Added to every row, or NULL.
    const float *bias;
    /// [m, n] with row stride ldd, added to the product, or NULL (may be C itself only with beta 0).
    const float *addend;
    long ldd;
    float *c;
    long ldc;
} ck_gemm_args;

/// The engine's own GEMM (BLIS-style: packed panels, a 6x16 AVX2/FMA register tile). B is
/// widened from 16 bits as its panels are packed, so 16-bit weights cost no f32 copy; bias and
/// addend are added as each tile is stored. Work is split over C's rows or columns only, so every
/// element sums its k terms in the same order whatever the thread count. Returns 0, or -1 when a
/// buffer could not be allocated.
int ck_gemm(const ck_gemm_args *g);

/// Whether ck_gemm is the faster f32 GEMM on this CPU (an AVX2 CPU without AVX-512, where it
/// matches oneDNN's sgemm and reads 16-bit weights without an f32 copy; see docs/performance.md).
/// SDSHELL_GEMM=engine or onednn overrides the choice (read once).
int ck_gemm_preferred_for_f32(void);
#endif
