// The engine's GEMM (see ck_packed_gemm.h): the driver shared by its kernels, and the f32 kernel
// on AVX2/FMA. Structure after BLIS (Van Zee & van de Geijn, "BLIS: A Framework for Rapidly
// Instantiating BLAS Functionality"): C is computed in MR x NR register tiles from a KC-deep panel
// of A (packed MR rows at a time, kept in L2) and of B (packed NR columns at a time, kept in L3 and
// streamed through L1). The bf16 kernel is in packed_gemm_bf16.c.
#include "ck_packed_gemm.h"
#include "ck_gemm_kernel.h"
#include "ck_parallel.h"
#include "ck_vexp.h"
#include "ck_element.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MR = 6, NR = 16, KC = 256, MC = 144, NC = 3072 };

// ---- packing (the f32 packers are shared with the AVX-512 kernel: ck_gemm_kernel.h) ----------

static void pack_b(const ck_gemm_args *g, long pc, long kc, long jc, long nc, void *out) {
    ck_pack_b_f32(g, pc, kc, jc, nc, NR, out);
}

static void pack_a(const ck_gemm_args *g, long ic, long mc, long pc, long kc, void *out) {
    ck_pack_a_f32(g, ic, mc, pc, kc, MR, out);
}

// ---- the register tile ----------------------------------------------------------------------

static inline __m256 finish(__m256 acc, const float *c, const ck_tile_epilogue *e, __m256 bias, long i, long j) {
    if (e->alpha != 1) acc = _mm256_mul_ps(_mm256_set1_ps(e->alpha), acc);
    if (!e->first) return _mm256_add_ps(_mm256_loadu_ps(c), acc);
    if (e->beta != 0) acc = _mm256_fmadd_ps(_mm256_set1_ps(e->beta), _mm256_loadu_ps(c), acc);
    if (e->bias) acc = _mm256_add_ps(acc, bias);
    if (e->addend) acc = _mm256_add_ps(acc, _mm256_loadu_ps(e->addend + i * e->ldd + j));
    return acc;
}

/// C[0:mr, 0:nr] from a packed A panel and B panel, kc deep.
static void tile(long kc, const void *pa, const void *pb, float *c, long ldc, long mr, long nr,
                 const ck_tile_epilogue *e) {
    const float *restrict a = pa, *restrict b = pb;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (long i = 0; i < mr; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0), _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
#define CK_STEP(P)                                                                                  \
    {                                                                                               \
        __m256 b0 = _mm256_loadu_ps(b + (P) * NR), b1 = _mm256_loadu_ps(b + (P) * NR + 8), av;      \
        av = _mm256_broadcast_ss(a + (P) * MR + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01); \
        av = _mm256_broadcast_ss(a + (P) * MR + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11); \
        av = _mm256_broadcast_ss(a + (P) * MR + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21); \
        av = _mm256_broadcast_ss(a + (P) * MR + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31); \
        av = _mm256_broadcast_ss(a + (P) * MR + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41); \
        av = _mm256_broadcast_ss(a + (P) * MR + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51); \
    }
    long p = 0;
    for (; p + 4 <= kc; p += 4, a += 4 * MR, b += 4 * NR) {
        _mm_prefetch((const char *)(b + 8 * NR), _MM_HINT_T0);
        CK_STEP(0) CK_STEP(1) CK_STEP(2) CK_STEP(3)
    }
    for (; p < kc; p++, a += MR, b += NR) CK_STEP(0)
#undef CK_STEP
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == MR && nr == NR) {
        __m256 bias0 = e->bias ? _mm256_loadu_ps(e->bias) : _mm256_setzero_ps();
        __m256 bias1 = e->bias ? _mm256_loadu_ps(e->bias + 8) : _mm256_setzero_ps();
        for (long i = 0; i < MR; i++) {
            float *row = c + i * ldc;
            _mm256_storeu_ps(row, finish(acc[i][0], row, e, bias0, i, 0));
            _mm256_storeu_ps(row + 8, finish(acc[i][1], row + 8, e, bias1, i, 8));
        }
        return;
    }
    float buf[MR][NR];
    for (long i = 0; i < MR; i++) _mm256_storeu_ps(buf[i], acc[i][0]), _mm256_storeu_ps(buf[i] + 8, acc[i][1]);
    ck_tile_store_edge(&buf[0][0], NR, c, ldc, mr, nr, e);
}

static const ck_gemm_kernel kernel_f32 = {MR, NR, MC, KC, NC, 1, sizeof(float), pack_a, pack_b, tile};

// ---- one thread's block of C ----------------------------------------------------------------

static _Thread_local void *packed_a, *packed_b;
static _Thread_local size_t packed_a_bytes, packed_b_bytes;

/// The calling thread's packing buffers, grown to what kernel `kn` needs.
static int ensure_buffers(const ck_gemm_kernel *kn) {
    size_t depth = (size_t)(kn->kc + kn->kc / 4 + kn->kgroup);
    size_t a = (size_t)kn->element * (size_t)kn->mc * depth, b = (size_t)kn->element * depth * (size_t)kn->nc;
    if (packed_a_bytes < a) { free(packed_a); packed_a = aligned_alloc(64, a); packed_a_bytes = packed_a ? a : 0; }
    if (packed_b_bytes < b) { free(packed_b); packed_b = aligned_alloc(64, b); packed_b_bytes = packed_b ? b : 0; }
    return packed_a && packed_b ? 0 : -1;
}

/// An operand's block of panels at depth pc: inside the operand packed in advance (`packed`,
/// `packed_depth` deep, from row or column `start`), or `buffer`, where the caller has just packed
/// it `depth` deep. Its panels of `width` rows or columns are *panel bytes apart.
static const char *operand_block(const ck_gemm_kernel *kn, const void *packed, long packed_depth, long start, long pc,
                                 long width, const char *buffer, long depth, long *panel) {
    *panel = (packed ? packed_depth : depth) * width * kn->element;
    return packed ? (const char *)packed + (start * packed_depth + pc * width) * kn->element : buffer;
}

/// K in equal blocks of at most KC + KC/4 (320 is one block, 640 two), each a whole number of
/// groups: a short last block would pay a whole tile's loads and stores for a few terms.
static long k_step(const ck_gemm_kernel *kn, long k) {
    const long most = kn->kc + kn->kc / 4, blocks = (k + most - 1) / most, step = (k + blocks - 1) / blocks;
    return (step + kn->kgroup - 1) / kn->kgroup * kn->kgroup;
}

/// C[m0:m1, n0:n1] on the calling thread.
static int gemm_block(const ck_gemm_kernel *kn, const ck_gemm_args *g, long m0, long m1, long n0, long n1) {
    if (m1 <= m0 || n1 <= n0) return 0;
    if (ensure_buffers(kn) != 0) return -1;
    const long MRk = kn->mr, NRk = kn->nr, MCk = kn->mc, NCk = kn->nc, group = kn->kgroup;
    char *pa = packed_a, *pb = packed_b;
    const long full_depth = (g->k + group - 1) / group * group; // a prepacked panel's depth
    for (long jc = n0; jc < n1; jc += NCk) {
        long nc = n1 - jc < NCk ? n1 - jc : NCk;
        const long step = k_step(kn, g->k);
        for (long pc = 0; pc < g->k; pc += step) {
            long kc = g->k - pc < step ? g->k - pc : step, depth = (kc + group - 1) / group * group;
            if (!g->b_packed) kn->pack_b(g, pc, kc, jc, nc, pb);
            long b_panel;
            const char *b_block = operand_block(kn, g->b_packed, full_depth, jc, pc, NRk, pb, depth, &b_panel);
            for (long ic = m0; ic < m1; ic += MCk) {
                long mc = m1 - ic < MCk ? m1 - ic : MCk;
                if (!g->a_packed) kn->pack_a(g, ic, mc, pc, kc, pa);
                long a_panel;
                const char *a_block = operand_block(kn, g->a_packed, full_depth, ic, pc, MRk, pa, depth, &a_panel);
                for (long jr = 0; jr < nc; jr += NRk) {
                    long nr = nc - jr < NRk ? nc - jr : NRk, col = jc + jr;
                    for (long ir = 0; ir < mc; ir += MRk) {
                        long mr = mc - ir < MRk ? mc - ir : MRk, row = ic + ir;
                        ck_tile_epilogue e = {pc == 0, g->alpha, g->beta, g->bias ? g->bias + col : NULL,
                                              g->addend ? g->addend + row * g->ldd + col : NULL, g->ldd};
                        kn->tile(depth, a_block + ir / MRk * a_panel, b_block + jr / NRk * b_panel,
                                 g->c + row * g->ldc + col, g->ldc, mr, nr, &e);
                    }
                }
            }
        }
    }
    return 0;
}

// ---- splitting C over the threads -----------------------------------------------------------

typedef struct {
    const ck_gemm_kernel *kn;
    const ck_gemm_args *g;
    long tm, tn;         // thread grid: tm slices of rows by tn slices of columns
    long mu, nu;         // C's size in MR rows and NR columns
    int failed;
} split_ctx;

static void run_slices(void *p, size_t begin, size_t end) {
    split_ctx *s = p;
    for (size_t t = begin; t < end; t++) {
        long ti = (long)t / s->tn, tj = (long)t % s->tn;
        long m0 = s->mu * ti / s->tm * s->kn->mr, m1 = s->mu * (ti + 1) / s->tm * s->kn->mr;
        long n0 = s->nu * tj / s->tn * s->kn->nr, n1 = s->nu * (tj + 1) / s->tn * s->kn->nr;
        if (m1 > s->g->m) m1 = s->g->m;
        if (n1 > s->g->n) n1 = s->g->n;
        if (gemm_block(s->kn, s->g, m0, m1, n0, n1) != 0) s->failed = 1;
    }
}

/// C = beta C + bias + addend when k is 0 (alpha A B is then 0).
static void no_product(const ck_gemm_args *g) {
    for (long i = 0; i < g->m; i++)
        for (long j = 0; j < g->n; j++) {
            float *out = g->c + i * g->ldc + j, v = g->beta != 0 ? g->beta * *out : 0;
            if (g->bias) v += g->bias[j];
            if (g->addend) v += g->addend[i * g->ldd + j];
            *out = v;
        }
}

static _Thread_local int avx2_only; // ck_gemm_limit_to_avx2

void ck_gemm_limit_to_avx2(int on) { avx2_only = on; }

/// Whether f32 products take the AVX-512 kernel: on AVX-512 CPUs unless SDSHELL_GEMM=avx2 (read
/// once) or the calling thread asked for the AVX2 kernel.
static int f32_avx512(void) {
    static int available = -1;
    if (available < 0) {
        const char *choice = getenv("SDSHELL_GEMM");
        available = ck_has_avx512() && !(choice && strcmp(choice, "avx2") == 0);
    }
    return available && !avx2_only;
}

const char *ck_gemm_f32_kernel_name(void) { return f32_avx512() ? "AVX-512 12x32" : "AVX2 6x16"; }

/// The kernel for g's compute type, or NULL when this CPU lacks it (or, for f32 products, A is
/// not f32).
static const ck_gemm_kernel *kernel_for(const ck_gemm_args *g) {
    if (g->compute == 1) return ck_gemm_bf16_supported() ? &ck_gemm_kernel_bf16 : NULL;
    if (g->a_dtype != 0) return NULL;
    return f32_avx512() ? &ck_gemm_kernel_f32_avx512 : &kernel_f32;
}

/// The kernel for f32 A at this compute type (what sizes and offsets of packed operands follow).
static const ck_gemm_kernel *kernel_for_compute(int compute) {
    ck_gemm_args g = {.compute = compute};
    return kernel_for(&g);
}

/// Bytes of `count` rows or columns packed `k` deep in panels of `width`: whole panels, k rounded
/// up to the kernel's K group.
static size_t packed_bytes(const ck_gemm_kernel *kn, long count, long width, long k) {
    if (!kn || count <= 0 || k <= 0) return 0;
    return (size_t)((count + width - 1) / width * width) * (size_t)((k + kn->kgroup - 1) / kn->kgroup * kn->kgroup) *
           (size_t)kn->element;
}

long ck_gemm_k_step(int compute, long k) {
    const ck_gemm_kernel *kn = kernel_for_compute(compute);
    return kn && k > 0 ? k_step(kn, k) : 0;
}

long ck_gemm_tile_rows(int compute) {
    const ck_gemm_kernel *kn = kernel_for_compute(compute);
    return kn ? kn->mr : 0;
}

size_t ck_gemm_packed_a_bytes(int compute, long m, long k) {
    const ck_gemm_kernel *kn = kernel_for_compute(compute);
    return packed_bytes(kn, m, kn ? kn->mr : 1, k);
}

int ck_gemm_pack_a(const ck_gemm_args *g, void *dst) {
    const ck_gemm_kernel *kn = kernel_for(g);
    if (!kn) return -2;
    if (g->m > 0 && g->k > 0) kn->pack_a(g, 0, g->m, 0, g->k, dst);
    return 0;
}

int ck_gemm_pack_a_columns(const ck_gemm_args *g, long pc, long kc, void *dst) {
    const ck_gemm_kernel *kn = kernel_for(g);
    if (!kn) return -2;
    if (pc % kn->kgroup != 0) return -3;
    const long full_depth = (g->k + kn->kgroup - 1) / kn->kgroup * kn->kgroup;
    for (long ir = 0; ir < g->m && kc > 0; ir += kn->mr) {
        long rows = g->m - ir < kn->mr ? g->m - ir : kn->mr;
        kn->pack_a(g, ir, rows, 0, kc, (char *)dst + (ir * full_depth + pc * kn->mr) * kn->element);
    }
    return 0;
}

size_t ck_gemm_packed_b_bytes(int compute, long n, long k) {
    const ck_gemm_kernel *kn = kernel_for_compute(compute);
    return packed_bytes(kn, n, kn ? kn->nr : 1, k);
}

int ck_gemm_pack_b(const ck_gemm_args *g, void *dst) {
    const ck_gemm_kernel *kn = kernel_for(g);
    if (!kn) return -2;
    if (g->n > 0 && g->k > 0) kn->pack_b(g, 0, g->k, 0, g->n, dst);
    return 0;
}

int ck_gemm_serial(const ck_gemm_args *g) {
    const ck_gemm_kernel *kn = kernel_for(g);
    if (!kn) return -2;
    if (g->m <= 0 || g->n <= 0) return 0;
    if (g->k <= 0) { no_product(g); return 0; }
    return gemm_block(kn, g, 0, g->m, 0, g->n);
}

int ck_gemm(const ck_gemm_args *g) {
    const ck_gemm_kernel *kn = kernel_for(g);
    if (!kn) return -2;
    if (g->m <= 0 || g->n <= 0) return 0;
    if (g->k <= 0) { no_product(g); return 0; }
    const long tile_rows = kn->mr, tile_cols = kn->nr;
    split_ctx s = {kn, g, 1, 1, (g->m + tile_rows - 1) / tile_rows, (g->n + tile_cols - 1) / tile_cols, 0};
    long threads = ck_get_threads();
    if ((double)g->m * g->n * g->k < 64.0 * 64 * 64) threads = 1;
    // The grid with the least work on its busiest thread; packing (per element, about as costly
    // as 8 multiply-adds) counts the rows and columns each thread packs.
    double best = -1;
    for (long tm = 1; tm <= threads; tm++) {
        if (threads % tm) continue;
        long tn = threads / tm;
        if (tm > s.mu || tn > s.nu) continue;
        double rows = (double)((s.mu + tm - 1) / tm) * tile_rows, cols = (double)((s.nu + tn - 1) / tn) * tile_cols;
        double cost = rows * cols + 8 * (rows + cols);
        if (best < 0 || cost < best) best = cost, s.tm = tm, s.tn = tn;
    }
    ck_parallel_for((size_t)(s.tm * s.tn), 1, run_slices, &s);
    return s.failed ? -1 : 0;
}

int ck_gemm_preferred_for_f32(void) {
    static int preferred = -1;
    if (preferred < 0) {
        const char *choice = getenv("SDSHELL_GEMM");
        if (choice && (strcmp(choice, "engine") == 0 || strcmp(choice, "avx2") == 0)) preferred = 1;
        else if (choice && strcmp(choice, "onednn") == 0) preferred = 0;
        else preferred = !ck_has_avx512() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return preferred;
}

int ck_gemm_bf16_supported(void) {
    static int supported = -1;
    if (supported < 0) {
        const char *choice = getenv("SDSHELL_BF16");
        supported = !(choice && strcmp(choice, "0") == 0) && __builtin_cpu_supports("avx512bf16") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    }
    return supported;
}
