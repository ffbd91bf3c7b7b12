// GEMM through oneDNN's sgemm (see ck_gemm.h).
#include "ck_gemm.h"
#include "ck_omp.h"
#include <dnnl.h>

int ck_sgemm(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
             long ldb, float beta, float *c, long ldc) {
    ck_omp_apply();
    return (int)dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int ck_sgemm_serial(char transa, char transb, long m, long n, long k, float alpha, const float *a, long lda,
                    const float *b, long ldb, float beta, float *c, long ldc) {
    ck_omp_apply_serial();
    return (int)dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
