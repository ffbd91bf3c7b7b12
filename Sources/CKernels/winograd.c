// Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution (see ck_winograd.h).
//
// F(4x4, 3x3) (points 0, 1, -1, 2, -2, infinity; 6x6 input tiles, 36 GEMMs) is the same scheme with
// the matrices written out in the *4 functions below; its transforms work on eight tiles at once
// gathered into lanes (zeros outside the image), so every tile takes the same operations.
//
// F(2x2, 3x3) transforms (Lavin & Gray 2015):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   input tile d (4x4): V = B^T d B
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]  kernel g (3x3):     U = G g G^T
//   A^T = [1 1 1 0; 0 1 -1 -1]                         product m (4x4):    Y = A^T m A
// Layouts: U [16][O][C], V [16][C][T], M [16][O][T] with T = N * ceil(H/2) * ceil(W/2) tiles,
// tile t = (b * th + i) * tw + j covering output rows 2i, 2i+1 and columns 2j, 2j+1.
#include "ck_winograd.h"
#include "ck_gemm.h"
#include "ck_packed_gemm.h"
#include "ck_parallel.h"
#include "ck_element.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t ck_winograd_weights_count(size_t out_channels, size_t in_channels, int tile) {
    return (size_t)(tile + 2) * (size_t)(tile + 2) * out_channels * in_channels;
}

/// Filters [first, first + rows) of a transform go to u, which holds `rows` filters per point.
typedef struct { const void *w; int dtype; size_t o, c; int backward, tile; float *u; size_t first, rows; } weight_job;

/// The first `lanes` floats of v at dst.
static inline void store_lanes(float *dst, __m256 v, size_t lanes) {
    if (lanes == 8) { _mm256_storeu_ps(dst, v); return; }
    float out[8];
    _mm256_storeu_ps(out, v);
    memcpy(dst, out, lanes * sizeof(float));
}

/// G g for one column of the 3x3 kernel, F(2x2): four rows from three, eight lanes.
static inline void g_column2(__m256 g0, __m256 g1, __m256 g2, __m256 out[4]) {
    const __m256 half = _mm256_set1_ps(0.5f);
    out[0] = g0;
    out[1] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(g0, g1), g2));
    out[2] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(g0, g1), g2));
    out[3] = g2;
}

/// G g for one column of the 3x3 kernel, F(4x4): six rows from three, eight lanes.
static inline void g_column4(__m256 g0, __m256 g1, __m256 g2, __m256 out[6]) {
    const __m256 q = _mm256_set1_ps(0.25f), s = _mm256_set1_ps(1.0f / 6), s2 = _mm256_set1_ps(1.0f / 12),
                 s4 = _mm256_set1_ps(1.0f / 24);
    __m256 even = _mm256_add_ps(g0, g2);
    out[0] = _mm256_mul_ps(q, g0);
    out[1] = _mm256_mul_ps(_mm256_set1_ps(-1.0f / 6), _mm256_add_ps(even, g1));
    out[2] = _mm256_mul_ps(_mm256_set1_ps(-1.0f / 6), _mm256_sub_ps(even, g1));
    __m256 base = _mm256_add_ps(_mm256_mul_ps(s4, g0), _mm256_mul_ps(s, g2)), odd = _mm256_mul_ps(s2, g1);
    out[3] = _mm256_add_ps(base, odd);
    out[4] = _mm256_sub_ps(base, odd);
    out[5] = g2;
}

/// G g for one column, for the tile size (2 or 4).
static inline void g_column(int tile, __m256 g0, __m256 g1, __m256 g2, __m256 *out) {
    if (tile == 4) g_column4(g0, g1, g2, out);
    else g_column2(g0, g1, g2, out);
}

/// Filters p in [begin, end) of the convolution being transformed, eight input channels q at a
/// time: U[a * a][fo][fc] = G g G^T (a = tile + 2) in f32 lanes (the same operations for every
/// lane, so a tail lane equals a full one).
static void transform_filters(void *ctx, size_t begin, size_t end) {
    const weight_job *J = ctx;
    const size_t o = J->o, c = J->c, fc = J->backward ? o : c;
    const int a = J->tile + 2;
    for (size_t p = begin; p < end; p++) {
        for (size_t q0 = 0; q0 < fc; q0 += 8) {
            size_t lanes = fc - q0 < 8 ? fc - q0 : 8;
            float g[9][8] = {{0}};
            for (size_t l = 0; l < lanes; l++) {
                size_t q = q0 + l;
                for (int k = 0; k < 9; k++) {
                    g[k][l] = J->backward ? ck_element_f32(J->w, J->dtype, (q * c + p) * 9 + (size_t)(8 - k))
                                          : ck_element_f32(J->w, J->dtype, (p * c + q) * 9 + (size_t)k);
                }
            }
            __m256 t[3][6]; // t[s] = G g[:, s]
            for (int sc = 0; sc < 3; sc++) g_column(J->tile, _mm256_loadu_ps(g[sc]), _mm256_loadu_ps(g[3 + sc]), _mm256_loadu_ps(g[6 + sc]), t[sc]);
            for (int r = 0; r < a; r++) {
                __m256 v[6];
                g_column(J->tile, t[0][r], t[1][r], t[2][r], v);
                for (int k = 0; k < a; k++) store_lanes(J->u + ((size_t)(r * a + k) * J->rows + p - J->first) * fc + q0, v[k], lanes);
            }
        }
    }
}

void ck_winograd_transform_weights(const void *w, int dtype, size_t o, size_t c, int backward, int tile, float *u) {
    weight_job J = {w, dtype, o, c, backward, tile == 4 ? 4 : 2, u, 0, backward ? c : o};
    ck_parallel_for(backward ? c : o, 1, transform_filters, &J);
}

typedef struct { const void *w; int dtype; size_t o, c; int backward, tile, compute; char *dst; long panel_rows; int status; } packed_job;

/// Panels [begin, end) of a packed transform: each panel's filters transformed into a buffer of
/// `panel_rows` filters (rows past the last filter 0), then each point's panel packed into place.
static void transform_panels(void *ctx, size_t begin, size_t end) {
    packed_job *J = ctx;
    const size_t fo = J->backward ? J->c : J->o, fc = J->backward ? J->o : J->c, points = (size_t)(J->tile + 2) * (size_t)(J->tile + 2);
    const size_t rows = (size_t)J->panel_rows;
    const size_t point_bytes = ck_gemm_packed_a_bytes(J->compute, (long)fo, (long)fc);
    const size_t panel_bytes = ck_gemm_packed_a_bytes(J->compute, (long)rows, (long)fc);
    float *buf = calloc(points * rows * fc, sizeof(float));
    if (!buf) { J->status = -1; return; }
    for (size_t panel = begin; panel < end; panel++) {
        size_t first = panel * rows, last = first + rows < fo ? first + rows : fo;
        if (last - first < rows) memset(buf, 0, points * rows * fc * sizeof(float));
        weight_job W = {J->w, J->dtype, J->o, J->c, J->backward, J->tile, buf, first, rows};
        transform_filters(&W, first, last);
        for (size_t xi = 0; xi < points; xi++) {
            ck_gemm_args g = {.m = (long)rows, .k = (long)fc, .a = buf + xi * rows * fc, .lda = (long)fc, .compute = J->compute};
            if (ck_gemm_pack_a(&g, J->dst + xi * point_bytes + panel * panel_bytes) != 0) J->status = -2;
        }
    }
    free(buf);
}

size_t ck_winograd_packed_bytes(size_t o, size_t c, int tile, int compute) {
    size_t side = (size_t)(tile == 4 ? 6 : 4);
    return side * side * ck_gemm_packed_a_bytes(compute, (long)o, (long)c);
}

int ck_winograd_transform_packed(const void *w, int dtype, size_t o, size_t c, int backward, int tile, int compute, void *dst) {
    long rows = ck_gemm_tile_rows(compute);
    if (rows == 0) return -2;
    size_t fo = backward ? c : o;
    packed_job J = {w, dtype, o, c, backward, tile == 4 ? 4 : 2, compute, dst, rows, 0};
    ck_parallel_for((fo + (size_t)rows - 1) / (size_t)rows, 1, transform_panels, &J);
    return J.status;
}

/// The problem: input, transformed weights, output, and the tile grid.
typedef struct {
    const float *x, *u, *bias, *residual;
    float *y;
    size_t n, c, o, h, w, th, tw, tiles;
    int m;         // output tile size: 2 or 4
    const char *u_packed; // U packed for ck_gemm at `compute`, or NULL: then u, through ck_sgemm
    int compute;
    size_t points; // (m + 2)^2 GEMMs
} problem;

/// B^T d for one column of six (F(4x4)).
static inline void bt_column4(const __m256 d[6], __m256 out[6]) {
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
    out[0] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four, d[0]), _mm256_mul_ps(five, d[2])), d[4]);
    __m256 a = _mm256_sub_ps(d[4], _mm256_mul_ps(four, d[2])), b = _mm256_sub_ps(d[3], _mm256_mul_ps(four, d[1]));
    out[1] = _mm256_add_ps(a, b);
    out[2] = _mm256_sub_ps(a, b);
    __m256 e = _mm256_sub_ps(d[4], d[2]), f = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
    out[3] = _mm256_add_ps(e, f);
    out[4] = _mm256_sub_ps(e, f);
    out[5] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four, d[1]), _mm256_mul_ps(five, d[3])), d[5]);
}

/// F(4x4) input transform of eight consecutive tiles [tile, tile + lanes) of channel ch: each
/// tile's 6x6 input (rows 4i-1.., columns 4j-1..; zero outside the image) gathered into a lane,
/// B^T d B, and the 36 points written to the planes at dst (plane stride `plane`).
static void input_tiles4(const problem *P, size_t ch, size_t tile, size_t lanes, float *dst, size_t plane) {
    const size_t h = P->h, w = P->w;
    float d[6][6][8] = {{{0}}};
    for (size_t l = 0; l < lanes; l++) {
        size_t t = tile + l, j = t % P->tw, i = (t / P->tw) % P->th, b = t / (P->tw * P->th);
        const float *src = P->x + (b * P->c + ch) * h * w;
        long r0 = (long)(4 * i) - 1, c0 = (long)(4 * j) - 1;
        for (int r = 0; r < 6; r++) {
            long y = r0 + r;
            if (y < 0 || y >= (long)h) continue;
            for (int q = 0; q < 6; q++) {
                long x = c0 + q;
                if (x >= 0 && x < (long)w) d[r][q][l] = src[(size_t)y * w + (size_t)x];
            }
        }
    }
    __m256 col[6], t[6][6]; // t = B^T d, by column
    for (int q = 0; q < 6; q++) {
        for (int r = 0; r < 6; r++) col[r] = _mm256_loadu_ps(d[r][q]);
        __m256 out[6];
        bt_column4(col, out);
        for (int r = 0; r < 6; r++) t[r][q] = out[r];
    }
    for (int r = 0; r < 6; r++) {
        __m256 out[6];
        bt_column4(t[r], out);
        for (int k = 0; k < 6; k++) store_lanes(dst + (size_t)(r * 6 + k) * plane, out[k], lanes);
    }
}

/// A^T m for one column of six (F(4x4)).
static inline void at_column4(const __m256 m[6], __m256 out[4]) {
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
    __m256 a = _mm256_add_ps(m[1], m[2]), b = _mm256_sub_ps(m[1], m[2]);
    __m256 c = _mm256_add_ps(m[3], m[4]), d = _mm256_sub_ps(m[3], m[4]);
    out[0] = _mm256_add_ps(_mm256_add_ps(m[0], a), c);
    out[1] = _mm256_add_ps(b, _mm256_mul_ps(two, d));
    out[2] = _mm256_add_ps(a, _mm256_mul_ps(four, c));
    out[3] = _mm256_add_ps(_mm256_add_ps(b, _mm256_mul_ps(eight, d)), m[5]);
}

/// F(4x4) output transform of eight consecutive tiles [tile, tile + lanes) of output channel oc
/// (points at src, plane stride `plane`): A^T m A, plus bias and residual, written where inside.
static void output_tiles4(const problem *P, size_t oc, size_t tile, size_t lanes, const float *src, size_t plane) {
    const size_t h = P->h, w = P->w;
    __m256 m[6][6];
    for (int k = 0; k < 36; k++) {
        if (lanes == 8) m[k / 6][k % 6] = _mm256_loadu_ps(src + (size_t)k * plane);
        else { float v[8] = {0}; memcpy(v, src + (size_t)k * plane, lanes * sizeof(float)); m[k / 6][k % 6] = _mm256_loadu_ps(v); }
    }
    __m256 t[4][6]; // A^T m, by column
    for (int q = 0; q < 6; q++) {
        __m256 col[6], out[4];
        for (int r = 0; r < 6; r++) col[r] = m[r][q];
        at_column4(col, out);
        for (int r = 0; r < 4; r++) t[r][q] = out[r];
    }
    float y[4][4][8];
    const __m256 bias = _mm256_set1_ps(P->bias ? P->bias[oc] : 0.0f);
    for (int r = 0; r < 4; r++) {
        __m256 out[4];
        at_column4(t[r], out);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(y[r][k], _mm256_add_ps(out[k], bias));
    }
    for (size_t l = 0; l < lanes; l++) {
        size_t tl = tile + l, j = tl % P->tw, i = (tl / P->tw) % P->th, b = tl / (P->tw * P->th);
        float *dst = P->y + (b * P->o + oc) * h * w;
        const float *res = P->residual ? P->residual + (b * P->o + oc) * h * w : NULL;
        for (int r = 0; r < 4; r++) {
            size_t yy = 4 * i + (size_t)r;
            if (yy >= h) break;
            for (int k = 0; k < 4; k++) {
                size_t xx = 4 * j + (size_t)k;
                if (xx >= w) break;
                dst[yy * w + xx] = y[r][k][l] + (res ? res[yy * w + xx] : 0.0f);
            }
        }
    }
}

/// Even and odd elements of the 16 floats at p: columns p[0], p[2], ..., p[14] and p[1], ..., p[15].
static inline void deinterleave16(const float *p, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
}

/// B^T d B of one 4x4 tile (scalar), written to the 16 planes at dst (plane stride `plane`).
static inline void input_tile(const float d[4][4], float *dst, size_t plane) {
    float t[4][4];
    for (int q = 0; q < 4; q++) {
        t[0][q] = d[0][q] - d[2][q];
        t[1][q] = d[1][q] + d[2][q];
        t[2][q] = d[2][q] - d[1][q];
        t[3][q] = d[1][q] - d[3][q];
    }
    for (int r = 0; r < 4; r++) {
        dst[(size_t)(r * 4 + 0) * plane] = t[r][0] - t[r][2];
        dst[(size_t)(r * 4 + 1) * plane] = t[r][1] + t[r][2];
        dst[(size_t)(r * 4 + 2) * plane] = t[r][2] - t[r][1];
        dst[(size_t)(r * 4 + 3) * plane] = t[r][1] - t[r][3];
    }
}

/// The same for eight horizontally adjacent interior tiles whose top-left input element is at src
/// (row stride w): the same additions in the same order, eight lanes at once, so the results equal
/// the scalar path's bit for bit.
static inline void input_tiles8(const float *src, size_t w, float *dst, size_t plane) {
    __m256 d[4][4];
    for (int r = 0; r < 4; r++) {
        deinterleave16(src + (size_t)r * w, &d[r][0], &d[r][1]);
        deinterleave16(src + (size_t)r * w + 2, &d[r][2], &d[r][3]);
    }
    __m256 t[4][4];
    for (int q = 0; q < 4; q++) {
        t[0][q] = _mm256_sub_ps(d[0][q], d[2][q]);
        t[1][q] = _mm256_add_ps(d[1][q], d[2][q]);
        t[2][q] = _mm256_sub_ps(d[2][q], d[1][q]);
        t[3][q] = _mm256_sub_ps(d[1][q], d[3][q]);
    }
    for (int r = 0; r < 4; r++) {
        _mm256_storeu_ps(dst + (size_t)(r * 4 + 0) * plane, _mm256_sub_ps(t[r][0], t[r][2]));
        _mm256_storeu_ps(dst + (size_t)(r * 4 + 1) * plane, _mm256_add_ps(t[r][1], t[r][2]));
        _mm256_storeu_ps(dst + (size_t)(r * 4 + 2) * plane, _mm256_sub_ps(t[r][2], t[r][1]));
        _mm256_storeu_ps(dst + (size_t)(r * 4 + 3) * plane, _mm256_sub_ps(t[r][1], t[r][3]));
    }
}

/// V[xi][ch][t - t0] (leading dimension ld) for channels [c0, c1) and tiles [t0, t1).
static void input_transform(const problem *P, size_t c0, size_t c1, size_t t0, size_t t1, float *v, size_t ld) {
    const size_t h = P->h, w = P->w, plane = P->c * ld;
    if (P->m == 4) {
        for (size_t ch = c0; ch < c1; ch++)
            for (size_t tile = t0; tile < t1; tile += 8)
                input_tiles4(P, ch, tile, t1 - tile < 8 ? t1 - tile : 8, v + ch * ld + (tile - t0), plane);
        return;
    }
    for (size_t ch = c0; ch < c1; ch++) {
        for (size_t tile = t0; tile < t1;) {
            size_t j = tile % P->tw, i = (tile / P->tw) % P->th, b = tile / (P->tw * P->th);
            const float *src = P->x + (b * P->c + ch) * h * w;
            float *dst = v + ch * ld + (tile - t0);
            long r0 = (long)(2 * i) - 1, col0 = (long)(2 * j) - 1;
            int rows_inside = r0 >= 0 && r0 + 4 <= (long)h;
            // Eight tiles of this tile row at once when all eight lie inside the image (and the block).
            if (rows_inside && col0 >= 0 && col0 + 18 <= (long)w && tile + 8 <= t1 && j + 8 <= P->tw) {
                input_tiles8(src + (size_t)r0 * w + (size_t)col0, w, dst, plane);
                tile += 8;
                continue;
            }
            float d[4][4];
            if (rows_inside && col0 >= 0 && col0 + 4 <= (long)w) {
                for (int r = 0; r < 4; r++) memcpy(d[r], src + (size_t)(r0 + r) * w + (size_t)col0, 4 * sizeof(float));
            } else {
                for (int r = 0; r < 4; r++) {
                    long y = r0 + r;
                    for (int q = 0; q < 4; q++) {
                        long x = col0 + q;
                        d[r][q] = (y >= 0 && y < (long)h && x >= 0 && x < (long)w) ? src[(size_t)y * w + (size_t)x] : 0.0f;
                    }
                }
            }
            input_tile(d, dst, plane);
            tile += 1;
        }
    }
}

/// M[xi] = U[xi] V[xi] for the points [p0, p1), over `count` tiles (leading dimension ld).
static int point_gemms(const problem *P, size_t p0, size_t p1, const float *v, float *m, size_t count, size_t ld) {
    int status = 0;
    for (size_t xi = p0; xi < p1; xi++) {
        if (P->u_packed) {
            ck_gemm_args g = {.m = (long)P->o, .n = (long)count, .k = (long)P->c,
                              .a_packed = P->u_packed + xi * ck_gemm_packed_a_bytes(P->compute, (long)P->o, (long)P->c),
                              .b = v + xi * P->c * ld, .ldb = (long)ld, .alpha = 1,
                              .c = m + xi * P->o * ld, .ldc = (long)ld, .compute = P->compute};
            int st = ck_gemm_serial(&g);
            if (st != 0) status = st;
            continue;
        }
        int st = ck_sgemm_serial('N', 'N', (long)P->o, (long)count, (long)P->c, 1.0f, P->u + xi * P->o * P->c, (long)P->c,
                                 v + xi * P->c * ld, (long)ld, 0.0f, m + xi * P->o * ld, (long)ld);
        if (st != 0) status = st;
    }
    return status;
}

/// Y of eight horizontally adjacent tiles whose two output rows are complete: the scalar path's
/// additions in the same order, eight lanes at once, columns interleaved back on the store.
static inline void output_tiles8(const float *src, size_t plane, float bias, float *dst, const float *res, size_t w) {
    __m256 q[4][4];
    for (int k = 0; k < 16; k++) q[k / 4][k % 4] = _mm256_loadu_ps(src + (size_t)k * plane);
    __m256 t[2][4];
    for (int k = 0; k < 4; k++) {
        t[0][k] = _mm256_add_ps(_mm256_add_ps(q[0][k], q[1][k]), q[2][k]);
        t[1][k] = _mm256_sub_ps(_mm256_sub_ps(q[1][k], q[2][k]), q[3][k]);
    }
    const __m256 bv = _mm256_set1_ps(bias);
    for (int r = 0; r < 2; r++) {
        __m256 even = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t[r][0], t[r][1]), t[r][2]), bv);
        __m256 odd = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(t[r][1], t[r][2]), t[r][3]), bv);
        __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
        __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
        if (res) {
            first = _mm256_add_ps(first, _mm256_loadu_ps(res + (size_t)r * w));
            second = _mm256_add_ps(second, _mm256_loadu_ps(res + (size_t)r * w + 8));
        }
        _mm256_storeu_ps(dst + (size_t)r * w, first);
        _mm256_storeu_ps(dst + (size_t)r * w + 8, second);
    }
}

/// Y for output channels [o0, o1) and tiles [t0, t1) from M (leading dimension ld).
static void output_transform(const problem *P, size_t o0, size_t o1, size_t t0, size_t t1, const float *m, size_t ld) {
    const size_t h = P->h, w = P->w, plane = P->o * ld;
    if (P->m == 4) {
        for (size_t oc = o0; oc < o1; oc++)
            for (size_t tile = t0; tile < t1; tile += 8)
                output_tiles4(P, oc, tile, t1 - tile < 8 ? t1 - tile : 8, m + oc * ld + (tile - t0), plane);
        return;
    }
    for (size_t oc = o0; oc < o1; oc++) {
        const float bias = P->bias ? P->bias[oc] : 0.0f;
        for (size_t tile = t0; tile < t1;) {
            size_t j = tile % P->tw, i = (tile / P->tw) % P->th, b = tile / (P->tw * P->th);
            float *dst = P->y + (b * P->o + oc) * h * w;
            const float *res = P->residual ? P->residual + (b * P->o + oc) * h * w : NULL;
            const float *src = m + oc * ld + (tile - t0);
            if (2 * i + 2 <= h && 2 * j + 16 <= w && tile + 8 <= t1 && j + 8 <= P->tw) {
                output_tiles8(src, plane, bias, dst + 2 * i * w + 2 * j, res ? res + 2 * i * w + 2 * j : NULL, w);
                tile += 8;
                continue;
            }
            float q[4][4];
            for (int k = 0; k < 16; k++) q[k / 4][k % 4] = src[(size_t)k * plane];
            float t[2][4];
            for (int k = 0; k < 4; k++) {
                t[0][k] = q[0][k] + q[1][k] + q[2][k];
                t[1][k] = q[1][k] - q[2][k] - q[3][k];
            }
            for (int r = 0; r < 2; r++) {
                size_t y = 2 * i + (size_t)r;
                if (y >= h) break;
                dst[y * w + 2 * j] = t[r][0] + t[r][1] + t[r][2] + bias + (res ? res[y * w + 2 * j] : 0.0f);
                if (2 * j + 1 < w) dst[y * w + 2 * j + 1] = t[r][1] - t[r][2] - t[r][3] + bias + (res ? res[y * w + 2 * j + 1] : 0.0f);
            }
            tile += 1;
        }
    }
}

/* Two schedules, chosen by the tile count alone (so never by the thread count):
 *  - whole: few tiles (deep, small layers). Each phase runs over the whole problem, parallel over
 *    channels, then transform points, then output channels.
 *  - blocked: many tiles. Blocks of `block` tiles are independent units of work (input transform,
 *    16 GEMMs, output transform), so each thread's V and M stay small enough to live in cache. */
typedef struct {
    const problem *P;
    const float *v;
    float *m;
    size_t ld;
    int status;
} whole_job;

static void whole_inputs(void *ctx, size_t begin, size_t end) {
    whole_job *J = ctx;
    input_transform(J->P, begin, end, 0, J->P->tiles, (float *)J->v, J->ld);
}
static void whole_gemms(void *ctx, size_t begin, size_t end) {
    whole_job *J = ctx;
    int st = point_gemms(J->P, begin, end, J->v, J->m, J->P->tiles, J->ld);
    if (st != 0) J->status = st;
}
static void whole_outputs(void *ctx, size_t begin, size_t end) {
    whole_job *J = ctx;
    output_transform(J->P, begin, end, 0, J->P->tiles, J->m, J->ld);
}

typedef struct {
    const problem *P;
    size_t block;
    int status;
} blocked_job;

static void blocked_range(void *ctx, size_t begin, size_t end) {
    blocked_job *J = ctx;
    const problem *P = J->P;
    size_t ld = J->block;
    float *v = NULL, *m = NULL;
    if (posix_memalign((void **)&v, 64, P->points * P->c * ld * sizeof(float)) != 0 ||
        posix_memalign((void **)&m, 64, P->points * P->o * ld * sizeof(float)) != 0) {
        free(v);
        J->status = -1;
        return;
    }
    for (size_t blk = begin; blk < end; blk++) {
        size_t t0 = blk * J->block, t1 = t0 + J->block < P->tiles ? t0 + J->block : P->tiles;
        input_transform(P, 0, P->c, t0, t1, v, ld);
        int st = point_gemms(P, 0, P->points, v, m, t1 - t0, ld);
        if (st != 0) { J->status = st; break; }
        output_transform(P, 0, P->o, t0, t1, m, ld);
    }
    free(v);
    free(m);
}

/// Tiles per block: V and M of a block in about 6 MiB, 64 to 1024 tiles, a multiple of 16.
static size_t block_tiles(size_t points, size_t c, size_t o) {
    size_t b = (6u << 20) / (points * (c + o) * sizeof(float));
    b = b < 64 ? 64 : (b > 1024 ? 1024 : b);
    return b / 16 * 16;
}

int ck_winograd_conv3x3(const float *x, size_t n, size_t c, size_t h, size_t w, const float *u, size_t o,
                        const float *bias, const float *residual, int tile, const void *u_packed, int compute, float *y) {
    const int m = tile == 4 ? 4 : 2;
    size_t th = (h + (size_t)m - 1) / (size_t)m, tw = (w + (size_t)m - 1) / (size_t)m;
    problem P = {x, u, bias, residual, y, n, c, o, h, w, th, tw, n * th * tw, m, u_packed, compute, (size_t)(m + 2) * (size_t)(m + 2)};
    size_t block = block_tiles(P.points, c, o);
    if (P.tiles >= 4 * block) {
        blocked_job J = {&P, block, 0};
        ck_parallel_for((P.tiles + block - 1) / block, 1, blocked_range, &J);
        return J.status;
    }
    float *v = NULL, *mm = NULL;
    size_t ld = P.tiles;
    if (posix_memalign((void **)&v, 64, P.points * c * ld * sizeof(float) + 64) != 0) return -1;
    if (posix_memalign((void **)&mm, 64, P.points * o * ld * sizeof(float) + 64) != 0) {
        free(v);
        return -1;
    }
    whole_job J = {&P, v, mm, ld, 0};
    ck_parallel_for(c, 1, whole_inputs, &J);
    ck_parallel_for(P.points, 1, whole_gemms, &J);
    if (J.status == 0) ck_parallel_for(o, 1, whole_outputs, &J);
    free(v);
    free(mm);
    return J.status;
}
