#ifndef CK_PACKED_GEMM_H
#define CK_PACKED_GEMM_H
#include <stddef.h>

/// One product C = alpha A B + beta C (+ bias per column) (+ addend), A row-major [m, k], B
/// f32, f16 or bf16, stored [k, n] or, as linear and convolution weights are, [n, k].
typedef struct {
    long m, n, k;
    /// A's elements; `a_dtype` as b_dtype (16-bit A only with compute 1).
    const void *a;
    long lda;
    int a_dtype;
    /// B's elements; `b_dtype`: 0 f32, 1 f16, 2 bf16.
    const void *b;
    long ldb;
    int b_dtype;
    /// 1: B is stored [n, k] (element (p, j) at b[j * ldb + p]); 0: [k, n] (at b[p * ldb + j]).
    int b_nk;
    float alpha, beta;
    /// Added to every row, or NULL.
    const float *bias;
    /// [m, n] with row stride ldd, added to the product, or NULL (may be C itself only with beta 0).
    const float *addend;
    long ldd;
    float *c;
    long ldc;
    /// How the products are taken: 0 in f32 (FMA), 1 with both operands rounded to bf16 (round to
    /// nearest even) as they are packed and summed in f32 (AVX512_BF16 dot products; only where
    /// ck_gemm_bf16_supported()).
    int compute;
    /// A as ck_gemm_pack_a packed it (same compute, m and k), or NULL: then `a` is packed as the
    /// product runs. With it, `a` is not read: a fixed A (transformed weights) is packed once.
    const void *a_packed;
    /// B as ck_gemm_pack_b packed it (same compute, n and k), or NULL; with it, `b` is not read.
    const void *b_packed;
} ck_gemm_args;

/// The engine's own GEMM (BLIS-style: packed panels and a register tile: for f32, 12x32 on AVX-512
/// CPUs and 6x16 on AVX2/FMA ones, which give the same bits; 12x32 AVX512_BF16 for bf16). B is widened from 16 bits as its panels are
/// packed, so 16-bit weights cost no f32 copy; bias and addend are added as each tile is stored.
/// Work is split over C's rows or columns only, so every element sums its k terms in the same
/// order whatever the thread count. Returns 0, -1 when a buffer could not be allocated, or -2 for
/// bf16 products on a CPU without them.
int ck_gemm(const ck_gemm_args *g);
/// The same on the calling thread only (for use inside ck_parallel_for); the same sums as ck_gemm.
int ck_gemm_serial(const ck_gemm_args *g);

/// Rows of A per packed panel at this compute type (the register tile's rows), 0 where lacking.
long ck_gemm_tile_rows(int compute);
/// The depth of the blocks a product of depth k is summed in (each tile stores its sums after each
/// block): a product split into calls of this depth, each adding to C (beta 1 after the first),
/// takes the same sums in the same order as one call. 0 for a compute type this CPU lacks.
long ck_gemm_k_step(int compute, long k);
/// Bytes ck_gemm_pack_a writes for an m x k A at this compute type (0 for a compute type this CPU
/// lacks).
size_t ck_gemm_packed_a_bytes(int compute, long m, long k);
/// Packs g's A (m x k, `a`, `lda`, `a_dtype`) for g's compute type into dst (64-byte aligned,
/// ck_gemm_packed_a_bytes long). Returns 0, or -2 for a compute type this CPU lacks.
int ck_gemm_pack_a(const ck_gemm_args *g, void *dst);

/// Packs columns [pc, pc + kc) of g's m x k A into their place in A's packed form at dst (as
/// ck_gemm_pack_a lays out the whole): `a` holds just those columns (column 0 is A's column pc,
/// rows lda apart), so A can be packed a block of columns at a time as it is made. pc must be a
/// multiple of the kernel's K group (2 for bf16; any whole number of 256 is). Returns 0, -2 for a
/// compute type this CPU lacks, -3 for a misaligned pc.
int ck_gemm_pack_a_columns(const ck_gemm_args *g, long pc, long kc, void *dst);

/// The same for B (n x k as b, ldb, b_dtype, b_nk say): ck_gemm_pack_b packs it whole.
size_t ck_gemm_packed_b_bytes(int compute, long n, long k);
int ck_gemm_pack_b(const ck_gemm_args *g, void *dst);

/// Whether ck_gemm is the faster f32 GEMM on this CPU: an AVX2 CPU without AVX-512, where it matches
/// oneDNN's sgemm and reads 16-bit weights without an f32 copy. On AVX-512 CPUs oneDNN's sgemm
/// keeps the f32 products: on Zen 4 the AVX-512 kernel is level with it on the UNet's large
/// products but slower on a batch-1 training step's small ones (see docs/performance.md).
/// SDSHELL_GEMM=engine or onednn overrides the choice, SDSHELL_GEMM=avx2 takes the engine with its
/// AVX2 kernel on an AVX-512 CPU (read once).
int ck_gemm_preferred_for_f32(void);

/// The f32 register tile this thread's products take ("AVX-512 12x32" or "AVX2 6x16").
const char *ck_gemm_f32_kernel_name(void);
/// With `on`, ck_gemm, ck_gemm_serial and the packing functions called on this thread take the
/// AVX2 kernel for f32 even on an AVX-512 CPU (for tests and benchmarks: the two give the same
/// bits). Work those functions are called for on other threads (Winograd, attention) is not
/// affected. A packed A or B is laid out for one kernel: pack and multiply under the same setting.
void ck_gemm_limit_to_avx2(int on);

/// Whether this CPU has bf16 dot products (AVX512_BF16 with AVX512BW/VL), which compute 1 needs.
/// SDSHELL_BF16=0 reports none (to check the fallback on a CPU that has them).
int ck_gemm_bf16_supported(void);
#endif
