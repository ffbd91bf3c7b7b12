// The engine's GEMM kernel for bf16 products (see ck_packed_gemm.h, compute 1): A and B are rounded
// to bf16 (round to nearest even, VCVTNEPS2BF16) as their panels are packed, and a 12x32 register
// tile of f32 sums is built with AVX512_BF16 dot products (VDPBF16PS: each lane adds the products
// of one pair of consecutive k). So the packed panels are K-pair interleaved: A as [k/2][12 rows][2],
// B as [k/2][32 columns][2]; an odd K is padded with a zero. The driver (blocking, thread split)
// is packed_gemm.c's. Every function here runs only where ck_gemm_bf16_supported().
#include "ck_gemm_kernel.h"
#include "ck_element.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define CK_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

enum { MR = 12, NR = 32, KC = 256, MC = 144, NC = 3072 };

/// Elements [i, i + 16) of `p` as f32.
CK_BF16 static inline __m512 elements16(const void *p, int dtype, size_t i) {
    if (dtype == 0) return _mm512_loadu_ps((const float *)p + i);
    return _mm512_insertf32x8(_mm512_castps256_ps512(ck_elements8_f32(p, dtype, i)), ck_elements8_f32(p, dtype, i + 8), 1);
}

/// `count` elements from `p` at i, i + 1, ... rounded to bf16 into out[0, padded) (0 past count).
CK_BF16 static void row_bf16(const void *p, int dtype, size_t i, long count, uint16_t *out, long padded) {
    long t = 0;
    for (; t + 16 <= count; t += 16) _mm256_storeu_si256((__m256i *)(out + t), (__m256i)_mm512_cvtneps_pbh(elements16(p, dtype, i + t)));
    for (; t < padded; t += 16) {
        float tmp[16];
        for (long r = 0; r < 16; r++) tmp[r] = t + r < count ? ck_element_f32(p, dtype, i + t + r) : 0;
        uint16_t h[16];
        _mm256_storeu_si256((__m256i *)h, (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(tmp)));
        for (long r = 0; r < 16 && t + r < padded; r++) out[t + r] = h[r];
    }
}

/// One panel of `width` (MR or NR) K-pair interleaved rows: dst[p][r] = the bf16 pair (k = 2p,
/// 2p + 1) of source row r, for the `rows` rows starting at element `first` of `src`, `ld` apart
/// (rows past `rows` and k past kc are 0). Eight rows of 16 k at a time: each row's 16 values become
/// 8 pair words, and the 8x8 block of words is transposed into 8 pairs of 8 rows. A width of 12 is
/// rows 0-7, then rows 4-11 of which the upper four are stored.
CK_BF16 static void pack_pairs(const void *src, int dtype, size_t first, long ld, long rows, long kc, long width,
                               uint32_t *dst) {
    const long pairs = (kc + 1) / 2;
    for (long p0 = 0; p0 < pairs; p0 += 8) {
        const long k0 = 2 * p0, whole = k0 + 16 <= kc, count = pairs - p0 < 8 ? pairs - p0 : 8;
        for (long g = 0; g < width; g += 8) {
            long r0 = g + 8 <= width ? g : width - 8, skip = g - r0; // rows stored: r0 + skip ..
            __m256 w[8];
            for (long i = 0; i < 8; i++) {
                long r = r0 + i;
                if (r >= rows) { w[i] = _mm256_setzero_ps(); continue; }
                size_t at = first + (size_t)(r * ld + k0);
                if (whole) {
                    w[i] = _mm256_castsi256_ps((__m256i)_mm512_cvtneps_pbh(elements16(src, dtype, at)));
                } else {
                    uint16_t h[16];
                    row_bf16(src, dtype, at, kc - k0, h, 16);
                    w[i] = _mm256_loadu_ps((const float *)h);
                }
            }
            transpose8(w);
            for (long t = 0; t < count; t++) {
                uint32_t *d = dst + (p0 + t) * width + r0;
                if (skip == 0) _mm256_storeu_ps((float *)d, w[t]);
                else _mm_storeu_ps((float *)(d + 4), _mm256_extractf128_ps(w[t], 1));
            }
        }
    }
}

/// A[ic:ic+mc, pc:pc+kc] as panels of MR rows, each [depth/2][MR] pairs.
CK_BF16 static void pack_a(const ck_gemm_args *g, long ic, long mc, long pc, long kc, void *out) {
    const long pairs = (kc + 1) / 2;
    uint32_t *dst = out;
    for (long ir = 0; ir < mc; ir += MR, dst += pairs * MR)
        pack_pairs(g->a, g->a_dtype, (size_t)((ic + ir) * g->lda + pc), g->lda, mc - ir < MR ? mc - ir : MR, kc, MR, dst);
}

/// B[pc:pc+kc, jc:jc+nc] as panels of NR columns, each [depth/2][NR] pairs.
CK_BF16 static void pack_b(const ck_gemm_args *g, long pc, long kc, long jc, long nc, void *out) {
    const long depth = (kc + 1) & ~1L, pairs = depth / 2;
    uint32_t *dst = out;
    if (g->b_nk) { // [n, k]: a column's pairs are consecutive in its stored row
        for (long jr = 0; jr < nc; jr += NR, dst += pairs * NR)
            pack_pairs(g->b, g->b_dtype, (size_t)((jc + jr) * g->ldb + pc), g->ldb, nc - jr < NR ? nc - jr : NR, kc, NR, dst);
        return;
    }
    // [k, n]: rows 2p and 2p + 1 are converted together and interleaved.
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (long jr = 0; jr < nc; jr += NR, dst += pairs * NR) {
        long cols = nc - jr < NR ? nc - jr : NR, j0 = jc + jr;
        for (long p = 0; p < pairs; p++) {
            long k0 = pc + 2 * p, has1 = 2 * p + 1 < kc;
            for (long h = 0; h < NR; h += 16) {
                __m512 r0, r1;
                if (h + 16 <= cols) {
                    r0 = elements16(g->b, g->b_dtype, (size_t)(k0 * g->ldb + j0 + h));
                    r1 = has1 ? elements16(g->b, g->b_dtype, (size_t)((k0 + 1) * g->ldb + j0 + h)) : _mm512_setzero_ps();
                } else {
                    float t0[16], t1[16];
                    for (long j = 0; j < 16; j++) {
                        int in = h + j < cols;
                        t0[j] = in ? ck_element_f32(g->b, g->b_dtype, (size_t)(k0 * g->ldb + j0 + h + j)) : 0;
                        t1[j] = in && has1 ? ck_element_f32(g->b, g->b_dtype, (size_t)((k0 + 1) * g->ldb + j0 + h + j)) : 0;
                    }
                    r0 = _mm512_loadu_ps(t0), r1 = _mm512_loadu_ps(t1);
                }
                __m512i both = (__m512i)_mm512_cvtne2ps_pbh(r1, r0); // lanes 0-15: row 2p, 16-31: row 2p + 1
                _mm512_storeu_si512(dst + p * NR + h, _mm512_permutexvar_epi16(interleave, both));
            }
        }
    }
}

/// C[0:mr, 0:nr] from a packed A panel and B panel, depth (even) deep.
CK_BF16 static void tile(long depth, const void *pa, const void *pb, float *c, long ldc, long mr, long nr,
                         const ck_tile_epilogue *e) {
    const uint32_t *restrict a = pa;
    const uint32_t *restrict b = pb;
    __m512 z = _mm512_setzero_ps();
    __m512 c0a = z, c0b = z, c1a = z, c1b = z, c2a = z, c2b = z, c3a = z, c3b = z, c4a = z, c4b = z, c5a = z, c5b = z;
    __m512 c6a = z, c6b = z, c7a = z, c7b = z, c8a = z, c8b = z, c9a = z, c9b = z, cAa = z, cAb = z, cBa = z, cBb = z;
    for (long i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0), _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);
#define CK_ROW(I, A0, A1)                                                                      \
    {                                                                                          \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[I]);                                 \
        A0 = _mm512_dpbf16_ps(A0, av, b0);                                                     \
        A1 = _mm512_dpbf16_ps(A1, av, b1);                                                     \
    }
    for (long p = 0; p < depth / 2; p++, a += MR, b += NR) {
        _mm_prefetch((const char *)(b + 4 * NR), _MM_HINT_T0);
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        CK_ROW(0, c0a, c0b) CK_ROW(1, c1a, c1b) CK_ROW(2, c2a, c2b) CK_ROW(3, c3a, c3b)
        CK_ROW(4, c4a, c4b) CK_ROW(5, c5a, c5b) CK_ROW(6, c6a, c6b) CK_ROW(7, c7a, c7b)
        CK_ROW(8, c8a, c8b) CK_ROW(9, c9a, c9b) CK_ROW(10, cAa, cAb) CK_ROW(11, cBa, cBb)
    }
#undef CK_ROW
    __m512 acc[MR][2] = {{c0a, c0b}, {c1a, c1b}, {c2a, c2b}, {c3a, c3b}, {c4a, c4b}, {c5a, c5b},
                         {c6a, c6b}, {c7a, c7b}, {c8a, c8b}, {c9a, c9b}, {cAa, cAb}, {cBa, cBb}};
    ck_tile_store_12x32(acc, c, ldc, mr, nr, e);
}

const ck_gemm_kernel ck_gemm_kernel_bf16 = {MR, NR, MC, KC, NC, 2, sizeof(uint16_t), pack_a, pack_b, tile};
