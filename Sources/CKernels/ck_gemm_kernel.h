#ifndef CK_GEMM_KERNEL_H
#define CK_GEMM_KERNEL_H
// What the engine's GEMM driver (packed_gemm.c) needs from one register-tile kernel: its tile and
// block sizes, how it packs panels of A and B, and the tile itself. The driver (blocking, thread
// split, epilogue rules) is shared; each kernel file supplies one of these.
#include "ck_packed_gemm.h"
#include "ck_element.h"
#include <immintrin.h>

/// What a tile does with its sums as it stores them (see ck_gemm_args).
typedef struct {
    int first;          // the first K block: C = alpha acc + beta C + bias + addend; later: C += alpha acc
    float alpha, beta;
    const float *bias;  // at this tile's first column, or NULL
    const float *addend;
    long ldd;
} ck_tile_epilogue;

typedef struct {
    long mr, nr;        // register tile
    long mc, kc, nc;    // block sizes: rows of A per packed block, K per block (at most kc + kc / 4), columns of B
    long kgroup;        // K is packed in groups of this many (a block's depth is rounded up to it, padded with 0)
    long element;       // bytes per packed element
    /// A[ic:ic+mc, pc:pc+kc] as panels of mr rows (rows past m are 0).
    void (*pack_a)(const ck_gemm_args *g, long ic, long mc, long pc, long kc, void *dst);
    /// B[pc:pc+kc, jc:jc+nc] as panels of nr columns (columns past n are 0).
    void (*pack_b)(const ck_gemm_args *g, long pc, long kc, long jc, long nc, void *dst);
    /// C[0:mr, 0:nr] from one packed A panel and one packed B panel, kc deep (already rounded up
    /// to kgroup).
    void (*tile)(long kc, const void *a, const void *b, float *c, long ldc, long mr, long nr, const ck_tile_epilogue *e);
} ck_gemm_kernel;

/// Transposes the 8x8 block of 32-bit lanes in r (row i becomes column i).
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/// B[pc:pc+kc, jc:jc+nc] widened to f32 as panels of `width` (a multiple of 8) columns, each kc
/// rows of `width` floats; columns past n are 0. B stored [n, k] is transposed 8x8 in registers.
static inline void ck_pack_b_f32(const ck_gemm_args *g, long pc, long kc, long jc, long nc, long width, float *dst) {
    for (long jr = 0; jr < nc; jr += width, dst += kc * width) {
        long cols = nc - jr < width ? nc - jr : width, j0 = jc + jr;
        if (!g->b_nk) {
            for (long p = 0; p < kc; p++) {
                long row = (pc + p) * g->ldb + j0;
                float *d = dst + p * width;
                if (cols == width) {
                    for (long h = 0; h < width; h += 8) _mm256_storeu_ps(d + h, ck_elements8_f32(g->b, g->b_dtype, (size_t)(row + h)));
                } else {
                    for (long j = 0; j < width; j++) d[j] = j < cols ? ck_element_f32(g->b, g->b_dtype, (size_t)(row + j)) : 0;
                }
            }
            continue;
        }
        // [n, k]: each panel column is a stored row.
        long p = 0;
        if (cols == width)
            for (; p + 8 <= kc; p += 8)
                for (long h = 0; h < width; h += 8) {
                    __m256 r[8];
                    for (int j = 0; j < 8; j++) r[j] = ck_elements8_f32(g->b, g->b_dtype, (size_t)(j0 + h + j) * g->ldb + pc + p);
                    transpose8(r);
                    for (int t = 0; t < 8; t++) _mm256_storeu_ps(dst + (p + t) * width + h, r[t]);
                }
        for (; p < kc; p++)
            for (long j = 0; j < width; j++)
                dst[p * width + j] = j < cols ? ck_element_f32(g->b, g->b_dtype, (size_t)(j0 + j) * g->ldb + pc + p) : 0;
    }
}

/// A[ic:ic+mc, pc:pc+kc] (f32) as panels of `width` (at most 16) rows, each kc columns of `width`
/// floats; rows past m are 0.
static inline void ck_pack_a_f32(const ck_gemm_args *g, long ic, long mc, long pc, long kc, long width, float *dst) {
    for (long ir = 0; ir < mc; ir += width, dst += kc * width) {
        long rows = mc - ir < width ? mc - ir : width;
        const float *src[16];
        for (long i = 0; i < width; i++) src[i] = (const float *)g->a + (ic + ir + (i < rows ? i : 0)) * g->lda + pc;
        for (long p = 0; p < kc; p++)
            for (long i = 0; i < width; i++) dst[p * width + i] = i < rows ? src[i][p] : 0;
    }
}

/// Stores a tile's sums `acc` (rows of `ld` floats) into C[0:mr, 0:nr] by the epilogue's rules,
/// one element at a time (the ragged edges of C).
static inline void ck_tile_store_edge(const float *acc, long ld, float *c, long ldc, long mr, long nr,
                                      const ck_tile_epilogue *e) {
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++) {
            float v = e->alpha * acc[i * ld + j], *out = c + i * ldc + j;
            if (!e->first) { *out += v; continue; }
            if (e->beta != 0) v += e->beta * *out;
            if (e->bias) v += e->bias[j];
            if (e->addend) v += e->addend[i * e->ldd + j];
            *out = v;
        }
}

#define CK_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/// One 16-lane row piece of a 12x32 tile's sums (row i, columns j..j+15) as the epilogue stores it.
CK_AVX512_TARGET static inline __m512 ck_tile_finish16(__m512 acc, const float *c, const ck_tile_epilogue *e, long i, long j) {
    if (e->alpha != 1) acc = _mm512_mul_ps(_mm512_set1_ps(e->alpha), acc);
    if (!e->first) return _mm512_add_ps(_mm512_loadu_ps(c), acc);
    if (e->beta != 0) acc = _mm512_fmadd_ps(_mm512_set1_ps(e->beta), _mm512_loadu_ps(c), acc);
    if (e->bias) acc = _mm512_add_ps(acc, _mm512_loadu_ps(e->bias + j));
    if (e->addend) acc = _mm512_add_ps(acc, _mm512_loadu_ps(e->addend + i * e->ldd + j));
    return acc;
}

/// Stores a 12x32 tile's sums (the AVX-512 f32 and bf16 kernels') into C[0:mr, 0:nr] by the
/// epilogue's rules: whole rows as vectors, a ragged tile through ck_tile_store_edge.
CK_AVX512_TARGET static inline void ck_tile_store_12x32(__m512 acc[12][2], float *c, long ldc, long mr, long nr,
                                                         const ck_tile_epilogue *e) {
    if (mr == 12 && nr == 32) {
        for (long i = 0; i < 12; i++) {
            float *row = c + i * ldc;
            _mm512_storeu_ps(row, ck_tile_finish16(acc[i][0], row, e, i, 0));
            _mm512_storeu_ps(row + 16, ck_tile_finish16(acc[i][1], row + 16, e, i, 16));
        }
        return;
    }
    float buf[12][32];
    for (long i = 0; i < 12; i++) _mm512_storeu_ps(buf[i], acc[i][0]), _mm512_storeu_ps(buf[i] + 16, acc[i][1]);
    ck_tile_store_edge(&buf[0][0], 32, c, ldc, mr, nr, e);
}

/// The f32 kernel for AVX-512 CPUs (packed_gemm_avx512.c): a 12x32 tile of 512-bit FMAs, the same
/// sums in the same order as every f32 kernel (one product term at a time, k ascending).
extern const ck_gemm_kernel ck_gemm_kernel_f32_avx512;

/// The bf16 kernel (packed_gemm_bf16.c): operands rounded to bf16 as they are packed, products
/// by AVX512_BF16 dot products, sums in f32. Only for CPUs where ck_gemm_bf16_supported().
extern const ck_gemm_kernel ck_gemm_kernel_bf16;
#endif
