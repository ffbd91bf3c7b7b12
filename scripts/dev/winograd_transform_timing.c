/*
 * winograd_transform_timing.c - the F(2x2) weight transform of 16-bit 1280 -> 1280 filters
 * (Sources/CKernels/winograd.c), into reused memory and into fresh pages (docs/performance.md,
 * "Defaults and the engine's GEMM").
 *
 * Build (from the repo root):
 *   clang -O3 -mavx2 -mfma -mf16c -I Sources/CKernels/include Sources/CKernels/winograd.c \
 *       Sources/CKernels/parallel.c Sources/CKernels/omp_threads.c Sources/CKernels/convert.c \
 *       Sources/CKernels/gemm.c scripts/dev/winograd_transform_timing.c \
 *       -ldnnl -lopenblas -lm -lpthread -ldl -o /tmp/wt
 * Run: OMP_WAIT_POLICY=PASSIVE /tmp/wt
 */
#include "ck_winograd.h"
#include "ck_parallel.h"
#include "ck_convert.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    size_t o = 1280, c = 1280; int tile = 2;
    uint16_t *w = malloc(2 * o * c * 9);
    for (size_t i = 0; i < o * c * 9; i++) w[i] = 0x3c00;
    size_t n = ck_winograd_weights_count(o, c, tile);
    float *u = malloc(4 * n);
    memset(u, 0, 4 * n);
    for (int r = 0; r < 4; r++) {
        double t0 = now();
        ck_winograd_transform_weights(w, 1, o, c, 0, tile, u);
        double t1 = now();
        float *fresh = malloc(4 * n);
        double t2 = now();
        ck_winograd_transform_weights(w, 1, o, c, 0, tile, fresh);
        double t3 = now();
        free(fresh);
        printf("transform into reused buffer %.1f ms, into fresh %.1f ms (%zu MB)\n", (t1 - t0) * 1e3, (t3 - t2) * 1e3, 4 * n >> 20);
    }
}
