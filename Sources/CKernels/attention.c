// Memory-bounded scaled dot-product attention on top of sgemm (forward and flash-style backward).
// Work is split over (slice, query block) items for the forward pass and over slices for the
// backward pass (dK/dV accumulate over query blocks in a fixed order), so results do not depend on
// the thread count. GEMMs run single-threaded inside the parallel region.
#include "ck_attention.h"
#include "ck_parallel.h"
#include "ck_gemm.h"
#include "ck_packed_gemm.h"
#include "ck_vexp.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_size_t scratch_now, scratch_peak;

static float *scratch_alloc(size_t floats) {
    size_t bytes = floats * sizeof(float);
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    size_t now = atomic_fetch_add(&scratch_now, bytes) + bytes;
    size_t peak = atomic_load(&scratch_peak);
    while (now > peak && !atomic_compare_exchange_weak(&scratch_peak, &peak, now)) {}
    return p;
}
static void scratch_free(float *p, size_t floats) {
    if (!p) return;
    atomic_fetch_sub(&scratch_now, floats * sizeof(float));
    free(p);
}
size_t ck_attention_scratch_peak(void) { return atomic_load(&scratch_peak); }
void ck_attention_scratch_reset(void) { atomic_store(&scratch_peak, atomic_load(&scratch_now)); }

static size_t block_rows(const ck_attention_shape *s) {
    size_t b = s->block ? s->block : 128;
    return b < s->lq ? b : s->lq;
}

/// Probabilities of query rows [r0, r0+n) against all keys from the saved log-sum-exp (backward):
/// P = exp(scale Q K^T - lse), masked; P is n x lk.
static void block_probs(const ck_attention_shape *s, const float *q, const float *k, size_t r0, size_t n,
                        float *S, const float *lse) {
    size_t lk = s->lk;
    ck_sgemm_serial('N', 'T', (long)n, (long)lk, (long)s->d, s->scale, q + r0 * s->d,
                (long)s->d, k, (long)s->d, 0.0f, S, (long)lk);
    for (size_t i = 0; i < n; i++) {
        float *row = S + i * lk;
        size_t visible = lk;
        if (s->causal) { visible = r0 + i + 1; if (visible > lk) visible = lk; }
        (void)ck_exp_shift_sum(row, visible, lse[r0 + i]);
        for (size_t j = visible; j < lk; j++) row[j] = 0.0f;
    }
}

typedef struct {
    const ck_attention_shape *s; const float *q, *k, *v, *o, *lse, *dout;
    float *out, *lse_out, *dq, *dk, *dv; size_t nblocks, block; int failed;
    /// Every slice's k packed once as the scores' B operand, and its v, transposed, as the output
    /// product's A operand, one packed block per key tile of `kt` keys (`vt_bytes` apart).
    char *kp, *vp; size_t kp_bytes, vp_bytes, vt_bytes, kt;
} attn_ctx;

/// Keys per tile of the forward pass: the whole row when a block's scores fit in 512 KiB (L2),
/// else tiles of that size (at least 64 keys, a multiple of 16).
/// A multiple of the GEMM tile's width (16 for f32, 32 for bf16), where the packed keys' column
/// panels start.
static size_t key_tile(const ck_attention_shape *s, size_t block) {
    size_t kt = ((size_t)1 << 17) / (block ? block : 1);
    if (kt >= s->lk) return s->lk;
    kt = kt < 64 ? 64 : kt & (s->compute ? ~(size_t)31 : ~(size_t)15);
    return kt < s->lk ? kt : s->lk;
}

/// Largest of row[0..n) and row[j] = exp(row[j] - shift) with its sum: AVX-512 when the CPU has it.
static inline float row_max(const float *row, size_t n, int avx512) {
    if (avx512) return ck_row_max16(row, n);
    // Four AVX2 lanes of eight; _mm256_max_ps(x, m) keeps m where x is NaN, as fmaxf ignores NaN.
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(row + j), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(row + j + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(row + j + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(row + j + 24), m3);
    }
    float lanes[8], mx = -INFINITY;
    _mm256_storeu_ps(lanes, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
    for (int t = 0; t < 8; t++) mx = fmaxf(mx, lanes[t]);
    for (; j < n; j++) mx = fmaxf(mx, row[j]);
    return mx;
}
static inline double exp_shift_sum(float *row, size_t n, float shift, int avx512) {
    return avx512 ? (double)ck_exp_shift_sum16(row, n, shift) : ck_exp_shift_sum(row, n, shift);
}

/// Flash-style forward: for each block of query rows, the keys in tiles whose scores stay in cache;
/// each row keeps its running max m and sum l, earlier partial outputs are rescaled by
/// exp(m_old - m_new) when the max grows, and the output is divided by l at the end.
/// Both products go through the engine's GEMM on the calling thread (ck_gemm_serial), with the
/// products the shape asks for, on packed keys and values. Not oneDNN's sgemm: called per block
/// from the pool's threads on an AVX-512 CPU (Zen 4, oneDNN 2.6), it corrupted the heap now and
/// then under load ("corrupted size vs. prev_size" in the free of its own workspace, inside
/// dnnl_sgemm; 5 of 12 loaded test runs of the interrupted-generation test, session 14).
static void fwd_range(void *p, size_t b, size_t e) {
    attn_ctx *c = p; const ck_attention_shape *s = c->s;
    const size_t kt = key_tile(s, c->block);
    float *S = scratch_alloc(c->block * kt), *T = scratch_alloc(c->block * s->dv);
    if (!S || !T) { c->failed = 1; scratch_free(S, c->block * kt); scratch_free(T, c->block * s->dv); return; }
    int strided = s->q_off != NULL, avx512 = ck_has_avx512();
    size_t ldq = strided ? s->ldq : s->d, ldk = strided ? s->ldk : s->d, ldv = strided ? s->ldv : s->dv;
    size_t ldo = strided ? s->ldo : s->dv;
    for (size_t item = b; item < e; item++) {
        size_t h = item / c->nblocks, r0 = (item % c->nblocks) * c->block;
        size_t n = s->lq - r0 < c->block ? s->lq - r0 : c->block;
        const float *q = c->q + (strided ? (size_t)s->q_off[h] : h * s->lq * s->d);
        const float *k = c->k + (strided ? (size_t)s->k_off[h] : h * s->lk * s->d);
        const float *v = c->v + (strided ? (size_t)s->v_off[h] : h * s->lk * s->dv);
        float *o = c->out + (strided ? (size_t)s->o_off[h] : h * s->lq * s->dv) + r0 * ldo;
        float *lse = c->lse_out ? c->lse_out + h * s->lq : NULL;
        float m[n];
        double l[n];
        for (size_t i = 0; i < n; i++) { m[i] = -INFINITY; l[i] = 0; }
        for (size_t k0 = 0; k0 < s->lk; k0 += kt) {
            size_t nk = s->lk - k0 < kt ? s->lk - k0 : kt;
            // The keys k0.. are the packed keys' column panels from k0 / (tile width) on.
            // (Keys are packed unless there is no output product: then they are read as stored.)
            ck_gemm_args scores = {.m = (long)n, .n = (long)nk, .k = (long)s->d, .a = q + r0 * ldq, .lda = (long)ldq,
                                   .b = k + k0 * ldk, .ldb = (long)ldk, .b_nk = 1, .alpha = s->scale, .c = S, .ldc = (long)nk,
                                   .compute = s->compute,
                                   .b_packed = c->kp_bytes ? c->kp + h * c->kp_bytes + ck_gemm_packed_b_bytes(s->compute, (long)k0, (long)s->d) : NULL};
            int st = ck_gemm_serial(&scores);
            if (st != 0) { c->failed = st == -2 ? 2 : 1; break; }
            for (size_t i = 0; i < n; i++) {
                float *row = S + i * nk;
                size_t visible = nk;
                if (s->causal) {
                    size_t seen = r0 + i + 1; // keys [0, seen) are visible to this query
                    visible = seen <= k0 ? 0 : (seen - k0 < nk ? seen - k0 : nk);
                }
                if (visible > 0) {
                    float mt = row_max(row, visible, avx512), mn = mt > m[i] ? mt : m[i];
                    double sum = exp_shift_sum(row, visible, mn, avx512);
                    if (k0 > 0 && mn > m[i]) { // earlier tiles were relative to a smaller max
                        float sc = expf(m[i] - mn);
                        l[i] *= sc;
                        for (size_t j = 0; j < s->dv; j++) o[i * ldo + j] *= sc;
                    }
                    l[i] += sum;
                    m[i] = mn;
                }
                for (size_t j = visible; j < nk; j++) row[j] = 0.0f;
            }
            // O^T = V^T P^T for these keys: dv rows fill the register tile better than the
            // n x dv product would (d = 40 is a 32-wide tile and a quarter of another).
            ck_gemm_args values = {.m = (long)s->dv, .n = (long)n, .k = (long)nk,
                                   .a_packed = c->vp + h * c->vp_bytes + (k0 / kt) * c->vt_bytes, .b = S, .ldb = (long)nk,
                                   .b_nk = 1, .alpha = 1, .c = T, .ldc = (long)n, .compute = s->compute};
            st = ck_gemm_serial(&values);
            for (size_t i = 0; i < n && st == 0; i++)
                for (size_t j = 0; j < s->dv; j++) o[i * ldo + j] = k0 == 0 ? T[j * n + i] : o[i * ldo + j] + T[j * n + i];
            if (st != 0) { c->failed = st == -2 ? 2 : 1; break; }
        }
        for (size_t i = 0; i < n; i++) {
            float inv = (float)(1.0 / l[i]);
            for (size_t j = 0; j < s->dv; j++) o[i * ldo + j] *= inv;
            if (lse) lse[r0 + i] = m[i] + (float)log(l[i]);
        }
    }
    scratch_free(S, c->block * kt);
    scratch_free(T, c->block * s->dv);
}

/// Packs slices [b, e)'s keys as the scores' B operand (into c->kp) and their values, transposed,
/// as the output product's A operand, a block per key tile (into c->vp).
static void pack_range(void *p, size_t b, size_t e) {
    attn_ctx *c = p; const ck_attention_shape *s = c->s;
    int strided = s->q_off != NULL;
    size_t ldk = strided ? s->ldk : s->d, ldv = strided ? s->ldv : s->dv;
    float *vt = scratch_alloc(s->dv * s->lk);
    if (!vt) { c->failed = 1; return; }
    for (size_t h = b; h < e; h++) {
        const float *k = c->k + (strided ? (size_t)s->k_off[h] : h * s->lk * s->d);
        const float *v = c->v + (strided ? (size_t)s->v_off[h] : h * s->lk * s->dv);
        ck_gemm_args gk = {.n = (long)s->lk, .k = (long)s->d, .b = k, .ldb = (long)ldk, .b_nk = 1, .compute = s->compute};
        if (s->d > 0 && ck_gemm_pack_b(&gk, c->kp + h * c->kp_bytes) != 0) c->failed = 2;
        for (size_t r = 0; r < s->lk; r++)
            for (size_t j = 0; j < s->dv; j++) vt[j * s->lk + r] = v[r * ldv + j];
        for (size_t k0 = 0; k0 < s->lk; k0 += c->kt) {
            size_t nk = s->lk - k0 < c->kt ? s->lk - k0 : c->kt;
            ck_gemm_args gv = {.m = (long)s->dv, .k = (long)nk, .a = vt + k0, .lda = (long)s->lk, .compute = s->compute};
            if (ck_gemm_pack_a(&gv, c->vp + h * c->vp_bytes + (k0 / c->kt) * c->vt_bytes) != 0) c->failed = 2;
        }
    }
    scratch_free(vt, s->dv * s->lk);
}

int ck_attention_forward(const ck_attention_shape *s, const float *q, const float *k, const float *v, float *o,
                         float *lse) {
    if (s->lq == 0 || s->heads == 0) return 0;
    size_t block = block_rows(s);
    attn_ctx c = {.s = s, .q = q, .k = k, .v = v, .out = o, .lse_out = lse, .block = block,
                  .nblocks = (s->lq + block - 1) / block};
    if (s->lk > 0 && s->dv > 0) { // (no keys or no value columns: no output product, nothing to pack)
        // Keys of no columns (d = 0) give zero scores with nothing to pack.
        c.kp_bytes = s->d > 0 ? (ck_gemm_packed_b_bytes(s->compute, (long)s->lk, (long)s->d) + 63) & ~(size_t)63 : 0;
        c.kt = key_tile(s, block);
        c.vt_bytes = (ck_gemm_packed_a_bytes(s->compute, (long)s->dv, (long)c.kt) + 63) & ~(size_t)63;
        c.vp_bytes = (s->lk + c.kt - 1) / c.kt * c.vt_bytes;
        if ((s->d > 0 && c.kp_bytes == 0) || c.vt_bytes == 0) return -2; // a compute type this CPU lacks
        c.kp = (char *)scratch_alloc(s->heads * (c.kp_bytes + c.vp_bytes) / sizeof(float));
        if (!c.kp) return -1;
        c.vp = c.kp + s->heads * c.kp_bytes;
        ck_parallel_for(s->heads, 1, pack_range, &c);
    }
    if (!c.failed) ck_parallel_for(s->heads * c.nblocks, 1, fwd_range, &c);
    if (c.kp) scratch_free((float *)c.kp, s->heads * (c.kp_bytes + c.vp_bytes) / sizeof(float));
    return c.failed == 2 ? -2 : c.failed ? -1 : 0;
}

static void bwd_range(void *p, size_t b, size_t e) {
    attn_ctx *c = p; const ck_attention_shape *s = c->s;
    size_t lk = s->lk, d = s->d, dvn = s->dv, B = c->block;
    float *P = scratch_alloc(B * lk), *dP = scratch_alloc(B * lk), *D = scratch_alloc(B);
    if (!P || !dP || !D) { c->failed = 1; scratch_free(P, B * lk); scratch_free(dP, B * lk); scratch_free(D, B); return; }
    for (size_t h = b; h < e; h++) {
        const float *q = c->q + h * s->lq * d, *k = c->k + h * lk * d, *v = c->v + h * lk * dvn;
        const float *o = c->o + h * s->lq * dvn, *dout = c->dout + h * s->lq * dvn, *lse = c->lse + h * s->lq;
        float *dq = c->dq + h * s->lq * d, *dk = c->dk + h * lk * d, *dv = c->dv + h * lk * dvn;
        memset(dk, 0, lk * d * sizeof(float));
        memset(dv, 0, lk * dvn * sizeof(float));
        for (size_t r0 = 0; r0 < s->lq; r0 += B) {
            size_t n = s->lq - r0 < B ? s->lq - r0 : B;
            block_probs(s, q, k, r0, n, P, lse);
            const float *dO = dout + r0 * dvn;
            // dV += P^T dO
            ck_sgemm_serial('T', 'N', (long)lk, (long)dvn, (long)n, 1.0f, P, (long)lk, dO,
                        (long)dvn, 1.0f, dv, (long)dvn);
            // dP = dO V^T
            ck_sgemm_serial('N', 'T', (long)n, (long)lk, (long)dvn, 1.0f, dO, (long)dvn, v,
                        (long)dvn, 0.0f, dP, (long)lk);
            for (size_t i = 0; i < n; i++) {
                double acc = 0;
                const float *orow = o + (r0 + i) * dvn, *grow = dO + i * dvn;
                for (size_t j = 0; j < dvn; j++) acc += (double)orow[j] * grow[j];
                D[i] = (float)acc;
            }
            // dS = P * (dP - D) * scale, stored in dP
            for (size_t i = 0; i < n; i++) {
                float *ds = dP + i * lk; const float *pr = P + i * lk; float di = D[i];
                for (size_t j = 0; j < lk; j++) ds[j] = pr[j] * (ds[j] - di) * s->scale;
            }
            // dQ = dS K ; dK += dS^T Q
            ck_sgemm_serial('N', 'N', (long)n, (long)d, (long)lk, 1.0f, dP, (long)lk, k,
                        (long)d, 0.0f, dq + r0 * d, (long)d);
            ck_sgemm_serial('T', 'N', (long)lk, (long)d, (long)n, 1.0f, dP, (long)lk,
                        q + r0 * d, (long)d, 1.0f, dk, (long)d);
        }
    }
    scratch_free(P, B * lk); scratch_free(dP, B * lk); scratch_free(D, B);
}

int ck_attention_backward(const ck_attention_shape *s, const float *q, const float *k, const float *v,
                          const float *o, const float *lse, const float *dout, float *dq, float *dk, float *dv) {
    if (s->lq == 0 || s->heads == 0) return 0;
    attn_ctx c = {.s = s, .q = q, .k = k, .v = v, .o = o, .lse = lse, .dout = dout, .dq = dq, .dk = dk, .dv = dv,
                  .block = block_rows(s)};
    ck_parallel_for(s->heads, 1, bwd_range, &c);
    return c.failed ? -1 : 0;
}
