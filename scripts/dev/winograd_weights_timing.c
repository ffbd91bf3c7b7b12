/*
 * winograd_weights_timing.c - one Winograd convolution of the UNet's low-resolution shapes with its
 * weights in each form (Sources/CKernels/winograd.c): U kept plain (oneDNN's sgemm), U kept packed
 * for the engine's GEMM, and the 3x3 weights transformed as the convolution runs (f32 and f16
 * weights); median of 7 calls, 2 threads. Also checks that the raw-weights form gives the packed
 * form's bits (docs/performance.md, "Winograd weights made as the convolution runs").
 *
 * Build (from the repo root):
 *   clang -O3 -mavx2 -mfma -mf16c -I Sources/CKernels/include Sources/CKernels/winograd.c \
 *       Sources/CKernels/packed_gemm.c Sources/CKernels/packed_gemm_avx512.c Sources/CKernels/packed_gemm_bf16.c \
 *       Sources/CKernels/parallel.c Sources/CKernels/omp_threads.c Sources/CKernels/convert.c \
 *       Sources/CKernels/gemm.c scripts/dev/winograd_weights_timing.c \
 *       -ldnnl -lopenblas -lm -lpthread -ldl -o /tmp/wwt
 * Run: OMP_WAIT_POLICY=PASSIVE /tmp/wwt [compute: 0 f32, 1 bf16]
 */
#include "ck_winograd.h"
#include "ck_packed_gemm.h"
#include "ck_parallel.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static float frand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f; }

typedef struct { size_t n, c, o, h, w; int tile; } shape;

static double median_ms(const float *x, shape s, const ck_winograd_weights *W, float *y) {
    double t[7];
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        if (ck_winograd_conv3x3(x, s.n, s.c, s.h, s.w, W, s.o, NULL, NULL, s.tile, y) != 0) { printf("failed\n"); exit(1); }
        t[r] = (now() - t0) * 1e3;
    }
    qsort(t, 7, sizeof(double), cmp);
    return t[3];
}

int main(int argc, char **argv) {
    int compute = argc > 1 ? atoi(argv[1]) : 0;
    ck_set_threads(2);
    shape shapes[] = {{2, 1280, 1280, 8, 8, 2}, {2, 2560, 1280, 8, 8, 2}, {2, 1280, 1280, 16, 16, 2}, {2, 2560, 1280, 16, 16, 2},
                      {2, 640, 640, 32, 32, 4}, {2, 1920, 640, 32, 32, 4}, {2, 1280, 1280, 32, 32, 2}, {1, 1280, 1280, 8, 8, 2},
                      {2, 320, 320, 64, 64, 4}, {2, 640, 640, 16, 16, 4}, {2, 320, 320, 32, 32, 4}, {1, 1280, 1280, 8, 8, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        shape s = shapes[i];
        unsigned seed = 1;
        size_t nw = s.o * s.c * 9, nx = s.n * s.c * s.h * s.w, ny = s.n * s.o * s.h * s.w;
        float *wt = malloc(nw * 4), *x = malloc(nx * 4), *y1 = malloc(ny * 4), *y2 = malloc(ny * 4);
        uint16_t *wh = malloc(nw * 2);
        for (size_t k = 0; k < nw; k++) { wh[k] = _cvtss_sh(frand(&seed) * 0.05f, 0); wt[k] = _cvtsh_ss(wh[k]); }
        for (size_t k = 0; k < nx; k++) x[k] = frand(&seed);
        float *u = malloc(ck_winograd_weights_count(s.o, s.c, s.tile) * 4);
        ck_winograd_transform_weights(wt, 0, s.o, s.c, 0, s.tile, u);
        size_t pb = ck_winograd_packed_bytes(s.o, s.c, s.tile, compute);
        void *up = aligned_alloc(64, (pb + 63) / 64 * 64);
        ck_winograd_transform_packed(wt, 0, s.o, s.c, 0, s.tile, compute, up);
        ck_winograd_weights plain = {.u = u}, packed = {.u_packed = up, .compute = compute},
                            raw32 = {.w = wt, .dtype = 0, .compute = compute}, raw16 = {.w = wh, .dtype = 1, .compute = compute};
        double tp = compute == 0 ? median_ms(x, s, &plain, y1) : 0;
        double tk = median_ms(x, s, &packed, y1);
        double tr = median_ms(x, s, &raw32, y2);
        int same = memcmp(y1, y2, ny * 4) == 0;
        double th = median_ms(x, s, &raw16, y2);
        same = same && memcmp(y1, y2, ny * 4) == 0;
        double flops = 2.0 * s.n * s.o * s.c * 9 * s.h * s.w;
        printf("%zu->%zu at %zux%zu n%zu F(%d): plain U %.2f ms, packed U %.2f, raw f32 %.2f, raw f16 %.2f ms "
               "(%.0f GFLOP/s direct at raw f32; fuses %d; same bits %s)\n",
               s.c, s.o, s.h, s.w, s.n, s.tile, tp, tk, tr, th, flops / tr * 1e-6,
               ck_winograd_fuses_weights(s.n, s.c, s.h, s.w, s.o, s.tile), same ? "yes" : "NO");
        free(wt); free(x); free(y1); free(y2); free(wh); free(u); free(up);
    }
}
