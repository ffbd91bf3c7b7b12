/*
 * gemm_check.c - standalone check + benchmark of Sources/CKernels/packed_gemm.c against oneDNN's sgemm
 *
 * Build (from the repo root):
 *   clang -O3 -mavx2 -mfma -mf16c -I Sources/CKernels/include Sources/CKernels/packed_gemm.c \
 *       Sources/CKernels/packed_gemm_avx512.c Sources/CKernels/packed_gemm_bf16.c Sources/CKernels/parallel.c Sources/CKernels/omp_threads.c Sources/CKernels/convert.c \
 *       scripts/dev/gemm_check.c -ldnnl -lopenblas -lm -lpthread -ldl -o /tmp/gemmcheck
 * Run: /tmp/gemmcheck [threads]
 * Correctness: every layout (B [k,n] and [n,k]), dtype (f32, f16, bf16), bias, addend and beta on
 * ragged shapes against a double-precision loop (error = max|got-ref| / max|ref| < 1e-5), in f32 and,
 * where the CPU has bf16 dot products, in bf16 (against the loop over the operands rounded to bf16).
 * Speed: the SD 1.5 UNet's linear shapes at 256 and 512 (batch 2), median of 7, GFLOP/s.
 */
#include "ck_packed_gemm.h"
#include "ck_parallel.h"
#include "ck_convert.h"
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float frand(void) { return (float)rand() / RAND_MAX * 2 - 1; }

static int check(long m, long n, long k, int nk, int dtype, int bias, int addend, float beta, int compute) {
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
    float *bs = malloc(sizeof(float) * n), *d = malloc(sizeof(float) * m * n), *c0 = malloc(sizeof(float) * m * n);
    uint16_t *b16 = malloc(2 * n * k);
    for (long i = 0; i < m * k; i++) a[i] = frand();
    for (long i = 0; i < n * k; i++) b[i] = frand();
    for (long i = 0; i < n; i++) bs[i] = frand();
    for (long i = 0; i < m * n; i++) d[i] = frand(), c[i] = c0[i] = frand();
    if (dtype == 1) { ck_f32_to_f16(b, b16, n * k); ck_f16_to_f32(b16, b, n * k); }
    if (dtype == 2) { ck_f32_to_bf16(b, b16, n * k); ck_bf16_to_f32(b16, b, n * k); }
    float alpha = beta != 0 ? 0.75f : 1;
    ck_gemm_args g = {m, n, k, a, k, 0, dtype ? (const void *)b16 : b, nk ? k : n, dtype, nk, alpha, beta,
                      bias ? bs : NULL, addend ? d : NULL, n, c, n, compute};
    if (ck_gemm(&g) != 0) { printf("failed\n"); return 1; }
    if (compute == 0) { // the AVX2 kernel must give the same bits as the one chosen
        float *c2 = malloc(sizeof(float) * m * n);
        memcpy(c2, c0, sizeof(float) * m * n);
        ck_gemm_args g2 = g;
        g2.c = c2;
        ck_gemm_limit_to_avx2(1); ck_gemm(&g2); ck_gemm_limit_to_avx2(0);
        if (memcmp(c, c2, sizeof(float) * m * n) != 0) { printf("FAIL AVX2 kernel differs m=%ld n=%ld k=%ld\n", m, n, k); return 1; }
        free(c2);
    }
    { // the same product from A packed in advance must give the same bits
        size_t bytes = ck_gemm_packed_a_bytes(compute, m, k);
        void *packed = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
        float *c2 = malloc(sizeof(float) * m * n);
        memcpy(c2, c0, sizeof(float) * m * n);
        ck_gemm_args g2 = g;
        g2.c = c2;
        if (k > 0 && ck_gemm_pack_a(&g2, packed) == 0) {
            g2.a_packed = packed;
            ck_gemm(&g2);
            if (memcmp(c, c2, sizeof(float) * m * n) != 0) { printf("FAIL prepacked A differs m=%ld n=%ld k=%ld compute=%d\n", m, n, k, compute); return 1; }
        }
        free(packed); free(c2);
    }
    if (compute == 1) { // the reference multiplies the operands as the kernel rounds them
        uint16_t *r = malloc(2 * (m * k > n * k ? m * k : n * k));
        ck_f32_to_bf16(a, r, m * k); ck_bf16_to_f32(r, a, m * k);
        ck_f32_to_bf16(b, r, n * k); ck_bf16_to_f32(r, b, n * k);
        free(r);
    }
    double maxerr = 0, maxref = 0;
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            double r = 0;
            for (long p = 0; p < k; p++) r += (double)a[i * k + p] * (nk ? b[j * k + p] : b[p * n + j]);
            r = alpha * r + beta * (double)c0[i * n + j] + (bias ? bs[j] : 0) + (addend ? d[i * n + j] : 0);
            double e = fabs(r - c[i * n + j]);
            if (e > maxerr) maxerr = e;
            if (fabs(r) > maxref) maxref = fabs(r);
        }
    double rel = maxerr / (maxref > 0 ? maxref : 1);
    int bad = !(rel < 1e-5);
    if (bad) printf("FAIL m=%ld n=%ld k=%ld nk=%d dtype=%d bias=%d addend=%d beta=%g compute=%d: %.3g\n", m, n, k, nk, dtype, bias, addend, beta, compute, rel);
    free(a); free(b); free(c); free(bs); free(d); free(c0); free(b16);
    return bad;
}

static int cmp(const void *x, const void *y) { double a = *(const double *)x, b = *(const double *)y; return a < b ? -1 : a > b; }

static void bench(long m, long k, long n, int dtype, int compute) {
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
    uint16_t *b16 = malloc(2 * n * k);
    for (long i = 0; i < m * k; i++) a[i] = frand();
    for (long i = 0; i < n * k; i++) b[i] = frand();
    ck_f32_to_f16(b, b16, n * k);
    double tc[7], td[7], t2v[7];
    for (int r = 0; r < 8; r++) {
        ck_gemm_args g = {m, n, k, a, k, 0, dtype ? (const void *)b16 : b, k, dtype, 1, 1, 0, NULL, NULL, 0, c, n, compute};
        double t0 = now(); ck_gemm(&g); double t1 = now();
        dnnl_sgemm('N', 'T', m, n, k, 1, a, k, b, k, 0, c, n); double t2 = now();
        ck_gemm_limit_to_avx2(1); ck_gemm(&g); ck_gemm_limit_to_avx2(0); double t3 = now();
        if (r) tc[r - 1] = t1 - t0, td[r - 1] = t2 - t1, t2v[r - 1] = t3 - t2;
    }
    qsort(tc, 7, sizeof(double), cmp); qsort(td, 7, sizeof(double), cmp); qsort(t2v, 7, sizeof(double), cmp);
    double f = 2.0 * m * n * k * 1e-9;
    printf("%6ld x %5ld x %5ld  %s%s  ck_gemm %6.1f GFLOP/s (%s)  AVX2 kernel %6.1f  dnnl_sgemm(f32) %6.1f\n", m, k, n,
           dtype ? "f16" : "f32", compute ? " bf16 products" : "", f / tc[3], compute ? "bf16" : ck_gemm_f32_kernel_name(),
           f / t2v[3], f / td[3]);
    free(a); free(b); free(c); free(b16);
}

int main(int argc, char **argv) {
    if (argc > 1) ck_set_threads(atoi(argv[1]));
    int bad = 0;
    long shapes[][3] = {{1, 1, 1}, {7, 17, 9}, {6, 16, 256}, {13, 35, 300}, {150, 70, 517}, {64, 3100, 40}, {300, 40, 33}};
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int nk = 0; nk < 2; nk++)
            for (int dt = 0; dt < 3; dt++)
                for (int e = 0; e < 4; e++)
                    for (int compute = 0; compute <= ck_gemm_bf16_supported(); compute++)
                        bad += check(shapes[s][0], shapes[s][1], shapes[s][2], nk, dt, e & 1, e >> 1, e == 3 ? 0.5f : 0, compute);
    bad += check(5, 9, 0, 1, 0, 1, 1, 0.5f, 0);
    printf("correctness: %s\n", bad ? "FAILED" : "ok");
    long bs[][3] = {{2048, 320, 320}, {2048, 320, 2560}, {2048, 1280, 320}, {512, 640, 640}, {512, 640, 5120},
                    {512, 2560, 640}, {128, 1280, 1280}, {128, 1280, 10240}, {128, 5120, 1280}, {8192, 320, 2560}, {8192, 320, 320}};
    for (unsigned s = 0; s < sizeof bs / sizeof bs[0]; s++) {
        bench(bs[s][0], bs[s][1], bs[s][2], 0, 0);
        bench(bs[s][0], bs[s][1], bs[s][2], 1, 0);
        if (ck_gemm_bf16_supported()) bench(bs[s][0], bs[s][1], bs[s][2], 1, 1);
    }
    return bad != 0;
}
