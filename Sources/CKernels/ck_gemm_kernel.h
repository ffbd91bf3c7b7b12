#ifndef CK_GEMM_KERNEL_H
#define CK_GEMM_KERNEL_H
// What the engine's GEMM driver (packed_gemm.c) needs from one register-tile kernel: its tile and
// block sizes, how it packs panels of A and B, and the tile itself. The driver (blocking, thread
// split, epilogue rules) is shared; each kernel file supplies one of these.
#include "ck_packed_gemm.h"
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

/// The bf16 kernel (packed_gemm_bf16.c): operands rounded to bf16 as they are packed, products
/// by AVX512_BF16 dot products, sums in f32. Only for CPUs where ck_gemm_bf16_supported().
extern const ck_gemm_kernel ck_gemm_kernel_bf16;
#endif
