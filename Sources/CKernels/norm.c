// Group/layer normalisation and softmax, forward and backward. Statistics in double.
#include "ck_norm.h"
#include "ck_parallel.h"
#include "ck_vexp.h"
#include <math.h>

typedef struct {
    const ck_norm_shape *s; const float *x, *gamma, *beta, *mean, *rstd, *dy;
    float *y, *mean_out, *rstd_out, *dx, *dgamma, *dbeta;
} norm_ctx;

static inline size_t channel_of(const ck_norm_shape *s, size_t r, size_t j) {
    return (r % s->groups) * s->ch_per_group + j / s->spatial;
}

static inline double hsum4(__m256d v) {
    double l[4]; _mm256_storeu_pd(l, v);
    return (l[0] + l[1]) + (l[2] + l[3]);
}

/// Mean and 1/sqrt(variance + eps) of x[0..L), in double: four-wide lanes over pairs of floats in
/// a fixed order (the same on any thread count), the deviations in a second pass.
static void row_stats(const float *x, size_t L, double eps, double *mean, double *rstd) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t j = 0;
    for (; j + 8 <= L; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double sum = hsum4(_mm256_add_pd(s0, s1));
    for (size_t t = j; t < L; t++) sum += x[t];
    double m = sum / (double)L;
    __m256d mv = _mm256_set1_pd(m), q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    for (j = 0; j + 8 <= L; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mv);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mv);
        q0 = _mm256_fmadd_pd(d0, d0, q0); q1 = _mm256_fmadd_pd(d1, d1, q1);
    }
    double ss = hsum4(_mm256_add_pd(q0, q1));
    for (size_t t = j; t < L; t++) { double d = x[t] - m; ss += d * d; }
    *mean = m;
    *rstd = 1.0 / sqrt(ss / (double)L + eps);
}

static void fwd_range(void *p, size_t b, size_t e) {
    norm_ctx *c = p; const ck_norm_shape *s = c->s; size_t L = s->len;
    for (size_t r = b; r < e; r++) {
        const float *x = c->x + r * L; float *y = c->y + r * L;
        double m, rs;
        row_stats(x, L, (double)s->eps, &m, &rs);
        float mf = (float)m, rf = (float)rs;
        if (c->mean_out) c->mean_out[r] = mf;
        if (c->rstd_out) c->rstd_out[r] = rf;
        size_t base = (r % s->groups) * s->ch_per_group;
        if (s->spatial == 1) { // layer norm: one element per channel
            const float *g = c->gamma ? c->gamma + base : NULL, *bb = c->beta ? c->beta + base : NULL;
            for (size_t j = 0; j < L; j++) {
                float gj = g ? g[j] : 1.0f, bj = bb ? bb[j] : 0.0f;
                float scale = rf * gj, shift = bj - mf * rf * gj;
                y[j] = x[j] * scale + shift;
            }
        } else {
            for (size_t ch = 0; ch < s->ch_per_group; ch++) {
                float g = c->gamma ? c->gamma[base + ch] : 1.0f, bb = c->beta ? c->beta[base + ch] : 0.0f;
                float scale = rf * g, shift = bb - mf * rf * g;
                const float *xs = x + ch * s->spatial; float *ys = y + ch * s->spatial;
                for (size_t k = 0; k < s->spatial; k++) ys[k] = xs[k] * scale + shift;
            }
        }
        if (s->silu) CK_MAP8(ck_silu8, y, y, L);
    }
}

void ck_norm_forward(const ck_norm_shape *s, const float *x, const float *gamma, const float *beta, float *y,
                     float *mean, float *rstd) {
    norm_ctx c = {.s = s, .x = x, .gamma = gamma, .beta = beta, .y = y, .mean_out = mean, .rstd_out = rstd};
    size_t grain = s->len ? 16384 / s->len : 1; if (grain < 1) grain = 1;
    ck_parallel_for(s->rows, grain, fwd_range, &c);
}

static void bwd_dx_range(void *p, size_t b, size_t e) {
    norm_ctx *c = p; const ck_norm_shape *s = c->s; size_t L = s->len;
    for (size_t r = b; r < e; r++) {
        const float *x = c->x + r * L, *dy = c->dy + r * L; float *dx = c->dx + r * L;
        double m = c->mean[r], rs = c->rstd[r];
        double sum_g = 0, sum_gx = 0; // sums of g = dy*gamma and g*xhat
        for (size_t j = 0; j < L; j++) {
            double g = dy[j] * (c->gamma ? c->gamma[channel_of(s, r, j)] : 1.0f);
            sum_g += g; sum_gx += g * (x[j] - m) * rs;
        }
        double mg = sum_g / (double)L, mgx = sum_gx / (double)L;
        for (size_t j = 0; j < L; j++) {
            double g = dy[j] * (c->gamma ? c->gamma[channel_of(s, r, j)] : 1.0f);
            double xh = (x[j] - m) * rs;
            dx[j] = (float)(rs * (g - mg - xh * mgx));
        }
    }
}

static void bwd_param_range(void *p, size_t b, size_t e) {
    // One channel per item: channel ch = g * ch_per_group + cc; rows with r % groups == g hold it.
    norm_ctx *c = p; const ck_norm_shape *s = c->s; size_t L = s->len;
    for (size_t ch = b; ch < e; ch++) {
        size_t g = ch / s->ch_per_group, cc = ch % s->ch_per_group;
        double sg = 0, sb = 0;
        for (size_t r = g; r < s->rows; r += s->groups) {
            const float *x = c->x + r * L + cc * s->spatial, *dy = c->dy + r * L + cc * s->spatial;
            double m = c->mean[r], rs = c->rstd[r];
            for (size_t k = 0; k < s->spatial; k++) { sg += dy[k] * (x[k] - m) * rs; sb += dy[k]; }
        }
        if (c->dgamma) c->dgamma[ch] = (float)sg;
        if (c->dbeta) c->dbeta[ch] = (float)sb;
    }
}

void ck_norm_backward(const ck_norm_shape *s, const float *x, const float *gamma, const float *mean,
                      const float *rstd, const float *dy, float *dx, float *dgamma, float *dbeta) {
    norm_ctx c = {.s = s, .x = x, .gamma = gamma, .mean = mean, .rstd = rstd, .dy = dy, .dx = dx,
                  .dgamma = dgamma, .dbeta = dbeta};
    if (dx) {
        size_t grain = s->len ? 16384 / s->len : 1; if (grain < 1) grain = 1;
        ck_parallel_for(s->rows, grain, bwd_dx_range, &c);
    }
    if (dgamma || dbeta) ck_parallel_for(s->groups * s->ch_per_group, 8, bwd_param_range, &c);
}

typedef struct { const float *x, *y, *dy; float *out; size_t cols; } sm_ctx;
static void sm_range(void *p, size_t b, size_t e) {
    sm_ctx *c = p; size_t n = c->cols;
    for (size_t r = b; r < e; r++) {
        const float *x = c->x + r * n; float *y = c->out + r * n;
        float mx = -INFINITY;
        for (size_t j = 0; j < n; j++) mx = fmaxf(mx, x[j]);
        if (mx == -INFINITY) { for (size_t j = 0; j < n; j++) y[j] = 0.0f; continue; }
        double sum = 0;
        for (size_t j = 0; j < n; j++) { float v = expf(x[j] - mx); y[j] = v; sum += v; }
        float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < n; j++) y[j] *= inv;
    }
}
void ck_softmax_rows(const float *x, float *y, size_t rows, size_t cols) {
    sm_ctx c = {x, NULL, NULL, y, cols};
    size_t grain = cols ? 16384 / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, sm_range, &c);
}
static void smb_range(void *p, size_t b, size_t e) {
    sm_ctx *c = p; size_t n = c->cols;
    for (size_t r = b; r < e; r++) {
        const float *y = c->y + r * n, *dy = c->dy + r * n; float *dx = c->out + r * n;
        double dot = 0;
        for (size_t j = 0; j < n; j++) dot += (double)dy[j] * y[j];
        float d = (float)dot;
        for (size_t j = 0; j < n; j++) dx[j] = y[j] * (dy[j] - d);
    }
}
void ck_softmax_backward_rows(const float *y, const float *dy, float *dx, size_t rows, size_t cols) {
    sm_ctx c = {NULL, y, dy, dx, cols};
    size_t grain = cols ? 16384 / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, smb_range, &c);
}
