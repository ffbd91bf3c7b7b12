// Row-major f32 GEMM in BLAS's terms (see ck_gemm.h): the engine's GEMM where it is preferred,
// else oneDNN's sgemm.
#include "ck_gemm.h"
#include "ck_omp.h"
#include "ck_packed_gemm.h"
#include <dnnl.h>

/// The BLAS-style product as the engine's GEMM arguments.
static ck_gemm_args engine_args(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda,
                                const float *b, long ldb, float beta, float *c, long ldc) {
    ck_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .lda = lda, .a_km = transa == 'T' || transa == 't',
                      .b = b, .ldb = ldb, .b_nk = transb == 'T' || transb == 't', .alpha = alpha, .beta = beta,
                      .c = c, .ldc = ldc};
    return g;
}

int ck_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
             long ldb, float beta, float *c, long ldc) {
    if (ck_gemm_preferred_for_f32()) {
        ck_gemm_args g = engine_args(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return ck_gemm(&g);
    }
    ck_omp_apply();
    return (int)dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int ck_sgemm_serial(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda,
                    const float *b, long ldb, float beta, float *c, long ldc) {
    if (ck_gemm_preferred_for_f32()) {
        ck_gemm_args g = engine_args(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return ck_gemm_serial(&g);
    }
    ck_omp_apply_serial();
    return (int)dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
