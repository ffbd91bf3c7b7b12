// The engine's f32 GEMM kernel for AVX-512 CPUs (see ck_packed_gemm.h, compute 0): a 12x32 register
// tile of f32 sums (24 of the 32 zmm registers) built with 512-bit FMAs, on panels packed as the
// AVX2 kernel packs them (ck_gemm_kernel.h), 32 columns wide. Every sum takes its k terms one at a
// time in ascending order, fused, and the driver's K blocks and epilogue are shared, so this kernel
// gives the AVX2 kernel's bits: the choice of kernel never changes a result. The driver is
// packed_gemm.c's. Every function here runs only where ck_has_avx512().
#include "ck_gemm_kernel.h"
#include <immintrin.h>

#define CK_AVX512 CK_AVX512_TARGET

enum { MR = 12, NR = 32, KC = 256, MC = 144, NC = 3072 };

static void pack_b(const ck_gemm_args *g, long pc, long kc, long jc, long nc, void *out) {
    ck_pack_b_f32(g, pc, kc, jc, nc, NR, out);
}

static void pack_a(const ck_gemm_args *g, long ic, long mc, long pc, long kc, void *out) {
    ck_pack_a_f32(g, ic, mc, pc, kc, MR, out);
}

/// C[0:mr, 0:nr] from a packed A panel ([kc][12]) and B panel ([kc][32]), kc deep.
CK_AVX512 static void tile(long kc, const void *pa, const void *pb, float *c, long ldc, long mr, long nr,
                           const ck_tile_epilogue *e) {
    const float *restrict a = pa, *restrict b = pb;
    __m512 z = _mm512_setzero_ps();
    __m512 c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z;
    __m512 c6a = z, c6b = z, c7a = z, c7b = z, c8a = z, c8b = z, c9a = z, c9b = z, cAa = z, cAb = z, cBa = z, cBb = z;
    for (long i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0), _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);
#define CK_ROW(P, I, A0, A1)                                                                   \
    {                                                                                          \
        __m512 av = _mm512_set1_ps(a[(P) * MR + (I)]);                                         \
        A0 = _mm512_fmadd_ps(av, b0, A0);                                                      \
        A1 = _mm512_fmadd_ps(av, b1, A1);                                                      \
    }
#define CK_STEP(P)                                                                             \
    {                                                                                          \
        __m512 b0 = _mm512_loadu_ps(b + (P) * NR), b1 = _mm512_loadu_ps(b + (P) * NR + 16);   \
        CK_ROW(P, 0, c0a, c0b) CK_ROW(P, 1, c1a, c1b) CK_ROW(P, 2, c2a, c2b) CK_ROW(P, 3, c3a, c3b)             \
        CK_ROW(P, 4, c4a, c4b) CK_ROW(P, 5, c5a, c5b) CK_ROW(P, 6, c6a, c6b) CK_ROW(P, 7, c7a, c7b)             \
        CK_ROW(P, 8, c8a, c8b) CK_ROW(P, 9, c9a, c9b) CK_ROW(P, 10, cAa, cAb) CK_ROW(P, 11, cBa, cBb)           \
    }
    long p = 0;
    for (; p + 2 <= kc; p += 2, a += 2 * MR, b += 2 * NR) {
        _mm_prefetch((const char *)(b + 4 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 5 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + 8 * MR), _MM_HINT_T0);
        CK_STEP(0) CK_STEP(1)
    }
    for (; p < kc; p++, a += MR, b += NR) CK_STEP(0)
#undef CK_STEP
#undef CK_ROW
    __m512 acc[MR][2] = {{c0a, c0b}, {c1a, c1b}, {c2a, c2b}, {c3a, c3b}, {c4a, c4b}, {c5a, c5b},
                         {c6a, c6b}, {c7a, c7b}, {c8a, c8b}, {c9a, c9b}, {cAa, cAb}, {cBa, cBb}};
    ck_tile_store_12x32(acc, c, ldc, mr, nr, e);
}

const ck_gemm_kernel ck_gemm_kernel_f32_avx512 = {MR, NR, MC, KC, NC, 1, sizeof(float), pack_a, pack_b, tile};
