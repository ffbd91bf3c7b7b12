// Element-wise, broadcasting, copy and small reduction kernels (f32, parallel over blocks).
#include "ck_elementwise.h"
#include "ck_parallel.h"
#include "ck_vexp.h"
#include <math.h>
#include <string.h>

#define GRAIN 16384

typedef struct { ck_unary_op op; const float *x, *y, *dy; float *out; float p0, p1; } unary_ctx;

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
static const float kSqrt2Inv = 0.70710678118654752440f;
static const float kTanhC = 0.79788456080286535588f; // sqrt(2/pi)

static inline float gelu_f(float x) { return 0.5f * x * (1.0f + erff(x * kSqrt2Inv)); }
static inline float gelu_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * kSqrt2Inv));
    float pdf = expf(-0.5f * x * x) * 0.39894228040143267794f;
    return cdf + x * pdf;
}

static void unary_range(void *p, size_t b, size_t e) {
    unary_ctx *c = p;
    const float *x = c->x; float *y = c->out;
    switch (c->op) {
    case CK_UNARY_GELU: CK_MAP8(ck_gelu8, x + b, y + b, e - b); break;
    case CK_UNARY_GELU_TANH:
        for (size_t i = b; i < e; i++) { float v = x[i]; y[i] = 0.5f * v * (1.0f + tanhf(kTanhC * (v + 0.044715f * v * v * v))); }
        break;
    case CK_UNARY_QUICK_GELU: for (size_t i = b; i < e; i++) y[i] = x[i] * sigmoidf_(1.702f * x[i]); break;
    case CK_UNARY_SILU: CK_MAP8(ck_silu8, x + b, y + b, e - b); break;
    case CK_UNARY_EXP: for (size_t i = b; i < e; i++) y[i] = expf(x[i]); break;
    case CK_UNARY_LOG: for (size_t i = b; i < e; i++) y[i] = logf(x[i]); break;
    case CK_UNARY_SQRT: for (size_t i = b; i < e; i++) y[i] = sqrtf(x[i]); break;
    case CK_UNARY_CLAMP: for (size_t i = b; i < e; i++) y[i] = fminf(fmaxf(x[i], c->p0), c->p1); break;
    case CK_UNARY_NEG: for (size_t i = b; i < e; i++) y[i] = -x[i]; break;
    case CK_UNARY_SQUARE: for (size_t i = b; i < e; i++) y[i] = x[i] * x[i]; break;
    }
}

void ck_unary(ck_unary_op op, const float *x, float *y, size_t n, float p0, float p1) {
    unary_ctx c = {op, x, NULL, NULL, y, p0, p1};
    ck_parallel_for(n, GRAIN, unary_range, &c);
}

static void unary_bwd_range(void *p, size_t b, size_t e) {
    unary_ctx *c = p;
    const float *x = c->x, *y = c->y, *dy = c->dy; float *dx = c->out;
    switch (c->op) {
    case CK_UNARY_GELU: for (size_t i = b; i < e; i++) dx[i] = dy[i] * gelu_grad(x[i]); break;
    case CK_UNARY_GELU_TANH:
        for (size_t i = b; i < e; i++) {
            float v = x[i], inner = kTanhC * (v + 0.044715f * v * v * v), t = tanhf(inner);
            float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kTanhC * (1.0f + 3.0f * 0.044715f * v * v);
            dx[i] = dy[i] * d;
        }
        break;
    case CK_UNARY_QUICK_GELU:
        for (size_t i = b; i < e; i++) { float s = sigmoidf_(1.702f * x[i]); dx[i] = dy[i] * (s + 1.702f * x[i] * s * (1.0f - s)); }
        break;
    case CK_UNARY_SILU:
        for (size_t i = b; i < e; i++) { float s = sigmoidf_(x[i]); dx[i] = dy[i] * (s + x[i] * s * (1.0f - s)); }
        break;
    case CK_UNARY_EXP: for (size_t i = b; i < e; i++) dx[i] = dy[i] * (y ? y[i] : expf(x[i])); break;
    case CK_UNARY_LOG: for (size_t i = b; i < e; i++) dx[i] = dy[i] / x[i]; break;
    case CK_UNARY_SQRT: for (size_t i = b; i < e; i++) dx[i] = dy[i] * 0.5f / (y ? y[i] : sqrtf(x[i])); break;
    case CK_UNARY_CLAMP:
        // torch passes the gradient where min <= x <= max.
        for (size_t i = b; i < e; i++) dx[i] = (x[i] >= c->p0 && x[i] <= c->p1) ? dy[i] : 0.0f;
        break;
    case CK_UNARY_NEG: for (size_t i = b; i < e; i++) dx[i] = -dy[i]; break;
    case CK_UNARY_SQUARE: for (size_t i = b; i < e; i++) dx[i] = 2.0f * x[i] * dy[i]; break;
    }
}

void ck_unary_backward(ck_unary_op op, const float *x, const float *y, const float *dy, float *dx, size_t n,
                       float p0, float p1) {
    unary_ctx c = {op, x, y, dy, dx, p0, p1};
    ck_parallel_for(n, GRAIN, unary_bwd_range, &c);
}

typedef struct {
    ck_binary_op op; const float *a, *b; float *out;
    int64_t as[CK_MAX_RANK], bs[CK_MAX_RANK], shape[CK_MAX_RANK]; int rank;
} binary_ctx;

static void binary_range(void *p, size_t rb, size_t re) {
    binary_ctx *c = p;
    int r = c->rank;
    int64_t inner = c->shape[r - 1], ia = c->as[r - 1], ib = c->bs[r - 1];
    for (size_t row = rb; row < re; row++) {
        // Decompose the row index into coordinates of the leading dimensions.
        int64_t rem = (int64_t)row, offa = 0, offb = 0;
        for (int d = r - 2; d >= 0; d--) {
            int64_t coord = rem % c->shape[d]; rem /= c->shape[d];
            offa += coord * c->as[d]; offb += coord * c->bs[d];
        }
        const float *pa = c->a + offa, *pb = c->b + offb;
        float *po = c->out + (int64_t)row * inner;
        switch (c->op) {
        case CK_BINARY_ADD: for (int64_t i = 0; i < inner; i++) po[i] = pa[i * ia] + pb[i * ib]; break;
        case CK_BINARY_SUB: for (int64_t i = 0; i < inner; i++) po[i] = pa[i * ia] - pb[i * ib]; break;
        case CK_BINARY_MUL: for (int64_t i = 0; i < inner; i++) po[i] = pa[i * ia] * pb[i * ib]; break;
        case CK_BINARY_DIV: for (int64_t i = 0; i < inner; i++) po[i] = pa[i * ia] / pb[i * ib]; break;
        }
    }
}

void ck_binary(ck_binary_op op, const float *a, const int64_t *a_strides, const float *b, const int64_t *b_strides,
               float *out, const int64_t *shape, int rank) {
    binary_ctx c = {.op = op, .a = a, .b = b, .out = out, .rank = rank};
    if (rank == 0) { // scalar
        c.rank = 1; c.shape[0] = 1; c.as[0] = 0; c.bs[0] = 0;
    } else {
        for (int i = 0; i < rank; i++) { c.as[i] = a_strides[i]; c.bs[i] = b_strides[i]; c.shape[i] = shape[i]; }
    }
    size_t rows = 1;
    for (int i = 0; i < c.rank - 1; i++) rows *= (size_t)c.shape[i];
    size_t inner = (size_t)c.shape[c.rank - 1];
    if (inner == 0 || rows == 0) return;
    size_t grain = GRAIN / inner; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, binary_range, &c);
}

typedef struct { const float *x; float *y; float mul, add; } affine_ctx;
static void affine_range(void *p, size_t b, size_t e) {
    affine_ctx *c = p;
    for (size_t i = b; i < e; i++) c->y[i] = c->x[i] * c->mul + c->add;
}
void ck_affine_scalar(const float *x, float *y, size_t n, float mul, float add) {
    affine_ctx c = {x, y, mul, add};
    ck_parallel_for(n, GRAIN, affine_range, &c);
}

typedef struct { const float *src; float *dst; int64_t ss[CK_MAX_RANK], ds[CK_MAX_RANK], shape[CK_MAX_RANK]; int rank; } copy_ctx;
static void copy_range(void *p, size_t rb, size_t re) {
    copy_ctx *c = p;
    int r = c->rank;
    int64_t inner = c->shape[r - 1], is = c->ss[r - 1], id = c->ds[r - 1];
    for (size_t row = rb; row < re; row++) {
        int64_t rem = (int64_t)row, off = 0, offd = 0;
        for (int d = r - 2; d >= 0; d--) {
            int64_t coord = rem % c->shape[d]; rem /= c->shape[d];
            off += coord * c->ss[d]; offd += coord * c->ds[d];
        }
        const float *ps = c->src + off; float *pd = c->dst + offd;
        if (is == 1 && id == 1) memcpy(pd, ps, (size_t)inner * sizeof(float));
        else for (int64_t i = 0; i < inner; i++) pd[i * id] = ps[i * is];
    }
}
void ck_strided_copy(const float *src, const int64_t *src_strides, float *dst, const int64_t *dst_strides,
                     const int64_t *shape, int rank) {
    copy_ctx c = {.src = src, .dst = dst, .rank = rank};
    if (rank == 0) { dst[0] = src[0]; return; }
    int64_t st = 1;
    for (int i = rank - 1; i >= 0; i--) {
        c.ss[i] = src_strides[i]; c.shape[i] = shape[i];
        c.ds[i] = dst_strides ? dst_strides[i] : st;
        st *= shape[i];
    }
    size_t rows = 1;
    for (int i = 0; i < rank - 1; i++) rows *= (size_t)shape[i];
    size_t inner = (size_t)shape[rank - 1];
    if (inner == 0 || rows == 0) return;
    size_t grain = GRAIN / inner; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, copy_range, &c);
}

typedef struct { float *y; const float *bias; size_t cols; } bias_ctx;
static void bias_range(void *p, size_t b, size_t e) {
    bias_ctx *c = p;
    for (size_t r = b; r < e; r++) { float *row = c->y + r * c->cols; for (size_t j = 0; j < c->cols; j++) row[j] += c->bias[j]; }
}
static void fill_range(void *p, size_t b, size_t e) {
    bias_ctx *c = p;
    for (size_t r = b; r < e; r++) memcpy(c->y + r * c->cols, c->bias, c->cols * sizeof(float));
}
void ck_fill_rows(float *y, const float *row, size_t rows, size_t cols) {
    bias_ctx c = {y, row, cols};
    size_t grain = cols ? GRAIN / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, fill_range, &c);
}
typedef struct { float *y; const float *values, *addend; size_t count, cols; } per_row_ctx;
static void per_row_range(void *p, size_t b, size_t e) {
    per_row_ctx *c = p;
    for (size_t r = b; r < e; r++) {
        float v = c->values ? c->values[r % c->count] : 0.0f, *y = c->y + r * c->cols;
        if (c->addend) { const float *a = c->addend + r * c->cols; for (size_t j = 0; j < c->cols; j++) y[j] = a[j] + v; }
        else for (size_t j = 0; j < c->cols; j++) y[j] = v;
    }
}
void ck_fill_each_row(float *y, const float *values, size_t count, const float *addend, size_t rows, size_t cols) {
    per_row_ctx c = {y, values, addend, count, cols};
    size_t grain = cols ? GRAIN / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, per_row_range, &c);
}

typedef struct { float *y; const float *addend, *row; size_t cols; } addend_ctx;
static void addend_range(void *p, size_t b, size_t e) {
    addend_ctx *c = p;
    for (size_t r = b; r < e; r++) {
        float *y = c->y + r * c->cols; const float *a = c->addend + r * c->cols;
        if (c->row) { for (size_t j = 0; j < c->cols; j++) y[j] = a[j] + c->row[j]; }
        else memcpy(y, a, c->cols * sizeof(float));
    }
}
void ck_fill_rows_adding(float *y, const float *addend, const float *row, size_t rows, size_t cols) {
    addend_ctx c = {y, addend, row, cols};
    size_t grain = cols ? GRAIN / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, addend_range, &c);
}
void ck_add_bias_rows(float *y, const float *bias, size_t rows, size_t cols) {
    bias_ctx c = {y, bias, cols};
    size_t grain = cols ? GRAIN / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, bias_range, &c);
}

typedef struct { const float *x; size_t rows, cols; float *out, *out2; } reduce_ctx;
static void col_sum_range(void *p, size_t b, size_t e) {
    reduce_ctx *c = p;
    for (size_t j = b; j < e; j++) {
        double s = 0; for (size_t r = 0; r < c->rows; r++) s += c->x[r * c->cols + j];
        c->out[j] = (float)s;
    }
}
void ck_col_sum(const float *x, size_t rows, size_t cols, float *out) {
    reduce_ctx c = {x, rows, cols, out, NULL};
    ck_parallel_for(cols, 64, col_sum_range, &c);
}
static void row_sum_range(void *p, size_t b, size_t e) {
    reduce_ctx *c = p;
    for (size_t r = b; r < e; r++) {
        const float *row = c->x + r * c->cols; double s = 0;
        for (size_t j = 0; j < c->cols; j++) s += row[j];
        c->out[r] = (float)s;
    }
}
void ck_row_sum(const float *x, size_t rows, size_t cols, float *out) {
    reduce_ctx c = {x, rows, cols, out, NULL};
    size_t grain = cols ? GRAIN / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, row_sum_range, &c);
}
static void row_mv_range(void *p, size_t b, size_t e) {
    reduce_ctx *c = p;
    for (size_t r = b; r < e; r++) {
        const float *row = c->x + r * c->cols; double s = 0, ss = 0;
        for (size_t j = 0; j < c->cols; j++) s += row[j];
        double m = c->cols ? s / (double)c->cols : 0;
        for (size_t j = 0; j < c->cols; j++) { double d = row[j] - m; ss += d * d; }
        if (c->out) c->out[r] = (float)m;
        if (c->out2) c->out2[r] = c->cols ? (float)(ss / (double)c->cols) : 0.0f;
    }
}
void ck_row_mean_var(const float *x, size_t rows, size_t cols, float *mean, float *var) {
    reduce_ctx c = {x, rows, cols, mean, var};
    size_t grain = cols ? GRAIN / cols : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, row_mv_range, &c);
}

typedef struct { const float *x, *dy; float *out; size_t half; } geglu_ctx;
static void geglu_range(void *p, size_t b, size_t e) {
    geglu_ctx *c = p; size_t h = c->half;
    for (size_t r = b; r < e; r++) {
        const float *xr = c->x + r * 2 * h; float *yr = c->out + r * h;
        CK_MAP8(ck_gelu8, xr + h, yr, h);
        for (size_t j = 0; j < h; j++) yr[j] *= xr[j];
    }
}
void ck_geglu(const float *x, float *y, size_t rows, size_t half) {
    geglu_ctx c = {x, NULL, y, half};
    size_t grain = half ? GRAIN / half : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, geglu_range, &c);
}
static void geglu_bwd_range(void *p, size_t b, size_t e) {
    geglu_ctx *c = p; size_t h = c->half;
    for (size_t r = b; r < e; r++) {
        const float *xr = c->x + r * 2 * h, *dyr = c->dy + r * h; float *dxr = c->out + r * 2 * h;
        for (size_t j = 0; j < h; j++) {
            float g = xr[h + j];
            dxr[j] = dyr[j] * gelu_f(g);
            dxr[h + j] = dyr[j] * xr[j] * gelu_grad(g);
        }
    }
}
void ck_geglu_backward(const float *x, const float *dy, float *dx, size_t rows, size_t half) {
    geglu_ctx c = {x, dy, dx, half};
    size_t grain = half ? GRAIN / half : 1; if (grain < 1) grain = 1;
    ck_parallel_for(rows, grain, geglu_bwd_range, &c);
}

typedef struct { const float *in; float *out; size_t h, w; } up_ctx;
static void up_range(void *p, size_t b, size_t e) {
    up_ctx *c = p; size_t h = c->h, w = c->w;
    for (size_t pl = b; pl < e; pl++) {
        const float *x = c->in + pl * h * w; float *y = c->out + pl * 4 * h * w;
        for (size_t i = 0; i < h; i++) {
            float *r0 = y + (2 * i) * 2 * w, *r1 = r0 + 2 * w;
            for (size_t j = 0; j < w; j++) { float v = x[i * w + j]; r0[2 * j] = v; r0[2 * j + 1] = v; }
            memcpy(r1, r0, 2 * w * sizeof(float));
        }
    }
}
void ck_upsample_nearest2x(const float *x, float *y, size_t planes, size_t h, size_t w) {
    up_ctx c = {x, y, h, w};
    ck_parallel_for(planes, 1, up_range, &c);
}
static void up_bwd_range(void *p, size_t b, size_t e) {
    up_ctx *c = p; size_t h = c->h, w = c->w;
    for (size_t pl = b; pl < e; pl++) {
        const float *dy = c->in + pl * 4 * h * w; float *dx = c->out + pl * h * w;
        for (size_t i = 0; i < h; i++) {
            const float *r0 = dy + (2 * i) * 2 * w, *r1 = r0 + 2 * w;
            for (size_t j = 0; j < w; j++) dx[i * w + j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}
void ck_upsample_nearest2x_backward(const float *dy, float *dx, size_t planes, size_t h, size_t w) {
    up_ctx c = {dy, dx, h, w};
    ck_parallel_for(planes, 1, up_bwd_range, &c);
}

void ck_embedding_backward(const int64_t *ids, size_t n, const float *dy, float *dw, size_t dim) {
    for (size_t i = 0; i < n; i++) {
        float *row = dw + (size_t)ids[i] * dim; const float *g = dy + i * dim;
        for (size_t j = 0; j < dim; j++) row[j] += g[j];
    }
}
