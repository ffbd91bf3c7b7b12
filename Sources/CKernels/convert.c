// Half and bfloat16 storage conversion, and the FMA peak probe.
#include "ck_convert.h"
#include "ck_parallel.h"
#include <immintrin.h>
#include <string.h>

void ck_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

void ck_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

void ck_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u; memcpy(&u, &src[i], 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) { dst[i] = (uint16_t)((u >> 16) | 0x0040u); continue; } // quiet NaN
        u += 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

void ck_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) { uint32_t u = (uint32_t)src[i] << 16; memcpy(&dst[i], &u, 4); }
}

typedef struct { long iters; float sink[64]; int wide; } peak_ctx;

// 10 independent accumulator chains hide the FMA latency (4-5 cycles on 2 ports).
#define PEAK_LOOP(VEC, SET1, FMA, ADD, STORE, LANES)                                                  \
    VEC a0 = SET1(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0; \
    const VEC m = SET1(0.999999f), k = SET1(1e-7f);                                                   \
    for (long i = 0; i < iters; i++) {                                                                 \
        a0 = FMA(a0, m, k); a1 = FMA(a1, m, k); a2 = FMA(a2, m, k); a3 = FMA(a3, m, k);                 \
        a4 = FMA(a4, m, k); a5 = FMA(a5, m, k); a6 = FMA(a6, m, k); a7 = FMA(a7, m, k);                 \
        a8 = FMA(a8, m, k); a9 = FMA(a9, m, k);                                                         \
    }                                                                                                  \
    VEC s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(ADD(a6, a7), ADD(a8, a9))));     \
    float out[LANES]; STORE(out, s); return out[0];

static float peak_avx2(long iters) { PEAK_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8) }

__attribute__((target("avx512f")))
static float peak_avx512(long iters) { PEAK_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16) }

static void peak_range(void *p, size_t b, size_t e) {
    peak_ctx *c = p;
    for (size_t t = b; t < e; t++) c->sink[t % 64] = c->wide ? peak_avx512(c->iters) : peak_avx2(c->iters);
}

int ck_fma_vector_width(void) { return __builtin_cpu_supports("avx512f") ? 16 : 8; }

double ck_fma_peak_probe(long iters) {
    peak_ctx c = {.iters = iters, .wide = ck_fma_vector_width() == 16};
    int t = ck_get_threads();
    ck_parallel_for((size_t)t, 1, peak_range, &c);
    return (double)t * (double)iters * 10.0 * (double)ck_fma_vector_width() * 2.0;
}
