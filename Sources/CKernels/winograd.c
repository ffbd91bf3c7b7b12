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
#include "ck_gemm_kernel.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t ck_winograd_weights_count(size_t out_channels, size_t in_channels, int tile) {
    return (size_t)(tile + 2) * (size_t)(tile + 2) * out_channels * in_channels;
}

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

/// Where a transform reads its filters: w [o][c][3][3] of element type `dtype` (0 f32, 1 f16, 2
/// bf16), for the forward convolution or (`backward`) its backward-data one, and the tile size.
typedef struct { const void *w; int dtype; size_t o, c; int backward, tile; } weight_src;

/// Filter count and channels per filter of the transformed convolution (fo x fc pairs).
static inline size_t filters_of(const weight_src *S) { return S->backward ? S->c : S->o; }
static inline size_t channels_of(const weight_src *S) { return S->backward ? S->o : S->c; }

/// g[k][l] = the 3x3 kernel of filter p and channel q0 + l, for `lanes` channels (lanes past them 0).
static inline void gather_kernels(const weight_src *S, size_t p, size_t q0, size_t lanes, float g[9][8]) {
    if (!S->backward && lanes == 8) {
        // Forward: the eight kernels are 72 consecutive elements.
        float flat[72];
        size_t base = (p * S->c + q0) * 9;
        for (int v = 0; v < 9; v++) _mm256_storeu_ps(flat + 8 * v, ck_elements8_f32(S->w, S->dtype, base + (size_t)(8 * v)));
        for (int l = 0; l < 8; l++)
            for (int k = 0; k < 9; k++) g[k][l] = flat[l * 9 + k];
        return;
    }
    memset(g, 0, 9 * 8 * sizeof(float));
    for (size_t l = 0; l < lanes; l++) {
        size_t q = q0 + l;
        for (int k = 0; k < 9; k++)
            g[k][l] = S->backward ? ck_element_f32(S->w, S->dtype, (q * S->c + p) * 9 + (size_t)(8 - k))
                                  : ck_element_f32(S->w, S->dtype, (p * S->c + q) * 9 + (size_t)k);
    }
}

/// U = G g G^T for filters [p0, p1) and channels [q0, q1) in f32 lanes, eight channels at a time (the
/// same operations for every lane, so a tail lane equals a full one): point xi of filter p and
/// channel q at u[xi * point_stride + (p - p0) * row_stride + (q - q0)].
static void transform_block(const weight_src *S, size_t p0, size_t p1, size_t q0, size_t q1, float *u, size_t point_stride,
                            size_t row_stride) {
    const int a = S->tile + 2;
    for (size_t p = p0; p < p1; p++) {
        for (size_t q = q0; q < q1; q += 8) {
            size_t lanes = q1 - q < 8 ? q1 - q : 8;
            float g[9][8];
            gather_kernels(S, p, q, lanes, g);
            __m256 t[3][6]; // t[s] = G g[:, s]
            for (int sc = 0; sc < 3; sc++) g_column(S->tile, _mm256_loadu_ps(g[sc]), _mm256_loadu_ps(g[3 + sc]), _mm256_loadu_ps(g[6 + sc]), t[sc]);
            float *dst = u + (p - p0) * row_stride + (q - q0);
            for (int r = 0; r < a; r++) {
                __m256 v[6];
                g_column(S->tile, t[0][r], t[1][r], t[2][r], v);
                for (int k = 0; k < a; k++) store_lanes(dst + (size_t)(r * a + k) * point_stride, v[k], lanes);
            }
        }
    }
}

typedef struct { weight_src S; float *u; } weight_job;

static void transform_filters(void *ctx, size_t begin, size_t end) {
    const weight_job *J = ctx;
    size_t fo = filters_of(&J->S), fc = channels_of(&J->S);
    transform_block(&J->S, begin, end, 0, fc, J->u + begin * fc, fo * fc, fc);
}

void ck_winograd_transform_weights(const void *w, int dtype, size_t o, size_t c, int backward, int tile, float *u) {
    weight_job J = {{w, dtype, o, c, backward, tile == 4 ? 4 : 2}, u};
    ck_parallel_for(filters_of(&J.S), 1, transform_filters, &J);
}

/// Channels a packed transform takes at once: its f32 points for one panel of filters stay in L2.
enum { PACK_CHANNELS = 256 };

/// Floats of the buffer pack_filters needs for panels of `rows` filters.
static size_t pack_buffer_floats(const weight_src *S, long rows) {
    size_t a = (size_t)(S->tile + 2);
    return a * a * (size_t)rows * PACK_CHANNELS;
}

/// The first `rows` (4, 6 or 8) lanes of v at dst.
static inline void store_rows(float *dst, __m256 v, long rows) {
    if (rows == 8) { _mm256_storeu_ps(dst, v); return; }
    _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
    if (rows == 6) _mm_storel_pi((__m64 *)(dst + 4), _mm256_extractf128_ps(v, 1));
    else if (rows != 4) store_lanes(dst, v, (size_t)rows);
}

/// Taps 0-8 of `count` (at most eight) filters' kernels for one channel (forward): filter l's at
/// element e + l * stride; lanes past count 0. g[k] holds tap k of the eight (the kernels loaded as rows and transposed), all in
/// registers; the filters' streams are fetched ahead, 24 channels on.
static inline __attribute__((always_inline)) void load_forward_taps(const void *w, int dtype, size_t e, size_t stride, long count,
                                                                      __m256 g[9]) {
    const size_t element = dtype == 0 ? 4 : 2;
    float t8[8] = {0};
    for (int l = 0; l < 8; l++) {
        if (l >= count) { g[l] = _mm256_setzero_ps(); continue; }
        size_t at = e + (size_t)l * stride;
        _mm_prefetch((const char *)w + (at + 9 * 24) * element, _MM_HINT_T0);
        g[l] = ck_elements8_f32(w, dtype, at);
        t8[l] = ck_element_f32(w, dtype, at + 8);
    }
    transpose8(g);
    g[8] = _mm256_setr_ps(t8[0], t8[1], t8[2], t8[3], t8[4], t8[5], t8[6], t8[7]);
}

/// The same for the backward-data convolution: `count` consecutive kernels (9 elements each from
/// e) rotated by 180 degrees, g[k] holding tap 8 - k of each.
static inline __attribute__((always_inline)) void load_backward_taps(const void *w, int dtype, size_t e, long count, __m256 g[9]) {
    const __m256i reverse = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    float t0[8] = {0};
    for (int l = 0; l < 8; l++) {
        if (l >= count) { g[l] = _mm256_setzero_ps(); continue; }
        size_t at = e + (size_t)(9 * l);
        g[l] = _mm256_permutevar8x32_ps(ck_elements8_f32(w, dtype, at + 1), reverse);
        t0[l] = ck_element_f32(w, dtype, at);
    }
    transpose8(g);
    g[8] = _mm256_setr_ps(t0[0], t0[1], t0[2], t0[3], t0[4], t0[5], t0[6], t0[7]);
}

/// U of filters [first, first + mr) (mr the f32 register tile's rows: 6 or 12; filters past the
/// last are 0) and channels [q0, q1) written straight into the f32 kernel's packed panel, one per
/// point: channel q's mr values at panel + (q - q0) * mr, point xi's panel at dst + xi *
/// point_floats. The lanes are filters
/// (eight at a time), so each point's values for a channel are stored as they come. The same
/// operations as transform_block, lane for lane, so the same bits.
static inline __attribute__((always_inline)) void transform_panel_tile(const weight_src *S, size_t first, long mr, size_t q0,
                                                                         size_t q1, float *dst, size_t point_floats, const int tile) {
    const size_t fo = filters_of(S);
    const int a = tile + 2;
    for (long r0 = 0; r0 < mr; r0 += 8) {
        const long rows = mr - r0 < 8 ? mr - r0 : 8;
        const size_t p0 = first + (size_t)r0;
        const long valid = p0 >= fo ? 0 : (fo - p0 < (size_t)rows ? (long)(fo - p0) : rows);
        const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (size_t q = q0; q < q1; q++) {
            // Each filter's taps 0-7 as a vector (a 180-degree rotation reverses them), then a
            // transpose: g[k] holds tap k of the eight filters.
            __m256 g[9];
            if (S->backward) load_backward_taps(S->w, S->dtype, (q * S->c + p0) * 9, valid, g);
            else load_forward_taps(S->w, S->dtype, (p0 * S->c + q) * 9, S->c * 9, valid, g);
            __m256 t[3][6];
            for (int sc = 0; sc < 3; sc++) g_column(tile, g[sc], g[3 + sc], g[6 + sc], t[sc]);
            float *out = dst + (q - q0) * (size_t)mr + (size_t)r0;
            for (int r = 0; r < a; r++) {
                __m256 v[6];
                g_column(tile, t[0][r], t[1][r], t[2][r], v);
                if (valid < rows) // rows past the last filter: +0, as ck_gemm_pack_a pads (the transform gives -0 too)
                    for (int k = 0; k < a; k++) v[k] = _mm256_and_ps(v[k], _mm256_castsi256_ps(live));
                for (int k = 0; k < a; k++) store_rows(out + (size_t)(r * a + k) * point_floats, v[k], rows);
            }
        }
    }
}

/// transform_panel_tile for the problem's tile size (its loops unrolled for each).
static void transform_panel_f32(const weight_src *S, size_t first, long mr, size_t q0, size_t q1, float *dst, size_t point_floats) {
    if (S->tile == 4) transform_panel_tile(S, first, mr, q0, q1, dst, point_floats, 4);
    else transform_panel_tile(S, first, mr, q0, q1, dst, point_floats, 2);
}

/// U of filters [first, first + rows) (rows past the last filter 0) packed for the engine's GEMM
/// at `compute` as one panel per point: point xi's at dst + xi * point_bytes, the whole depth. The
/// channels go PACK_CHANNELS at a time through buf (pack_buffer_floats).
static int pack_filters(const weight_src *S, size_t first, long rows, int compute, float *buf, char *dst, size_t point_bytes) {
    const size_t fo = filters_of(S), fc = channels_of(S), points = (size_t)(S->tile + 2) * (size_t)(S->tile + 2);
    const size_t last = first + (size_t)rows < fo ? first + (size_t)rows : fo, stride = (size_t)rows * PACK_CHANNELS;
    if (compute == 0) {
        transform_panel_f32(S, first, rows, 0, fc, (float *)dst, point_bytes / sizeof(float));
        return 0;
    }
    for (size_t q0 = 0; q0 < fc; q0 += PACK_CHANNELS) {
        size_t q1 = q0 + PACK_CHANNELS < fc ? q0 + PACK_CHANNELS : fc;
        if (last - first < (size_t)rows) memset(buf, 0, points * stride * sizeof(float));
        transform_block(S, first, last, q0, q1, buf, stride, PACK_CHANNELS);
        for (size_t xi = 0; xi < points; xi++) {
            ck_gemm_args g = {.m = rows, .k = (long)fc, .a = buf + xi * stride, .lda = PACK_CHANNELS, .compute = compute};
            if (ck_gemm_pack_a_columns(&g, (long)q0, (long)(q1 - q0), dst + xi * point_bytes) != 0) return -2;
        }
    }
    return 0;
}

typedef struct { weight_src S; int compute; char *dst; long panel_rows; int status; } packed_job;

/// Panels [begin, end) of a packed transform, each into its place for every point.
static void transform_panels(void *ctx, size_t begin, size_t end) {
    packed_job *J = ctx;
    const size_t fo = filters_of(&J->S), fc = channels_of(&J->S);
    const size_t point_bytes = ck_gemm_packed_a_bytes(J->compute, (long)fo, (long)fc);
    const size_t panel_bytes = ck_gemm_packed_a_bytes(J->compute, J->panel_rows, (long)fc);
    float *buf = J->compute == 0 ? NULL : malloc(pack_buffer_floats(&J->S, J->panel_rows) * sizeof(float));
    if (J->compute != 0 && !buf) { J->status = -1; return; }
    for (size_t panel = begin; panel < end; panel++) {
        if (pack_filters(&J->S, panel * (size_t)J->panel_rows, J->panel_rows, J->compute, buf, J->dst + panel * panel_bytes,
                         point_bytes) != 0) J->status = -2;
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
    packed_job J = {{w, dtype, o, c, backward, tile == 4 ? 4 : 2}, compute, dst, rows, 0};
    ck_parallel_for((filters_of(&J.S) + (size_t)rows - 1) / (size_t)rows, 1, transform_panels, &J);
    return J.status;
}

/// The problem: input, weights, output, and the tile grid.
typedef struct {
    const float *x, *bias, *residual;
    float *y;
    size_t n, c, o, h, w, th, tw, tiles;
    int m;                // output tile size: 2 or 4
    ck_winograd_weights W;
    const char *u_packed; // W.u_packed, or U packed for this call from W.w (blocked schedule)
    size_t points;        // (m + 2)^2 GEMMs
} problem;

/// The filters of W.w as a transform reads them.
static weight_src source_of(const problem *P) {
    int backward = P->W.backward != 0;
    return (weight_src){P->W.w, P->W.dtype, backward ? P->c : P->o, backward ? P->o : P->c, backward, P->m};
}

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
                              .a_packed = P->u_packed + xi * ck_gemm_packed_a_bytes(P->W.compute, (long)P->o, (long)P->c),
                              .b = v + xi * P->c * ld, .ldb = (long)ld, .alpha = 1,
                              .c = m + xi * P->o * ld, .ldc = (long)ld, .compute = P->W.compute};
            int st = ck_gemm_serial(&g);
            if (st != 0) status = st;
            continue;
        }
        int st = ck_sgemm_serial('N', 'N', (long)P->o, (long)count, (long)P->c, 1.0f, P->W.u + xi * P->o * P->c, (long)P->c,
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
 *    channels, then transform points (or, weights given raw, blocks of filters), then output
 *    channels.
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

/// This thread's buffer `which` (0-3) of at least `bytes` bytes (64-byte aligned), kept and reused
/// across calls (grown when short): fresh pages for each call's few megabytes cost more than
/// transforming the filters into them. NULL when it cannot be allocated. What the whole schedule
/// keeps this way is bounded by its tile limit (a few tens of megabytes a thread).
static char *thread_buffer(int which, size_t bytes) {
    static _Thread_local char *kept[4];
    static _Thread_local size_t size[4];
    if (size[which] < bytes) {
        free(kept[which]);
        size[which] = (bytes + 4095) / 4096 * 4096;
        kept[which] = aligned_alloc(64, size[which]);
        if (!kept[which]) size[which] = 0;
    }
    return kept[which];
}

/* Weights given raw (f32 products, whole schedule): the channels go in the blocks the GEMM sums
 * its depth in (ck_gemm_k_step), so each point's product is the same sums as with U packed whole.
 * For each block of channels, V's rows are packed once for every point, then each thread takes
 * blocks of filters: their U for those channels is made into the thread's buffer, already in the
 * GEMM's packed layout, and multiplied into M (added to it after the first block of channels).
 * Every filter and channel is transformed once per call, the weights are read once, and V's
 * packed block (a few megabytes) stays in the last-level cache while all filters pass over it. */
typedef struct {
    const problem *P;
    const float *v;
    float *m;
    size_t ld, c0, kc;  // the block of channels
    char *v_packed;     // its V rows packed as the GEMM's B, point after point
    size_t v_bytes;     // per point
    long rows;          // filters per block
    int status;
} fused_job;

static void fused_pack_inputs(void *ctx, size_t begin, size_t end) {
    fused_job *J = ctx;
    const problem *P = J->P;
    for (size_t xi = begin; xi < end; xi++) {
        ck_gemm_args g = {.n = (long)P->tiles, .k = (long)J->kc, .b = J->v + (xi * P->c + J->c0) * J->ld, .ldb = (long)J->ld};
        if (ck_gemm_pack_b(&g, J->v_packed + xi * J->v_bytes) != 0) J->status = -2;
    }
}

static void fused_blocks(void *ctx, size_t begin, size_t end) {
    fused_job *J = ctx;
    const problem *P = J->P;
    const weight_src S = source_of(P);
    const long mr = ck_gemm_tile_rows(0);
    // Points' blocks 4 KiB-aligned plus three cache lines apart: 16 or 36 streams a whole number of
    // pages apart would share one set of the L1 cache as the transform writes them.
    const size_t block_bytes = (ck_gemm_packed_a_bytes(0, J->rows, (long)J->kc) + 4095) / 4096 * 4096 + 192,
                 panel_bytes = ck_gemm_packed_a_bytes(0, mr, (long)J->kc);
    char *a = thread_buffer(0, P->points * block_bytes);
    if (!a) { J->status = -1; return; }
    for (size_t blk = begin; blk < end; blk++) {
        size_t o0 = blk * (size_t)J->rows, rows = P->o - o0 < (size_t)J->rows ? P->o - o0 : (size_t)J->rows;
        for (size_t panel = 0; panel * (size_t)mr < rows; panel++)
            transform_panel_f32(&S, o0 + panel * (size_t)mr, mr, J->c0, J->c0 + J->kc, (float *)(a + panel * panel_bytes),
                                block_bytes / sizeof(float));
        for (size_t xi = 0; xi < P->points; xi++) {
            ck_gemm_args g = {.m = (long)rows, .n = (long)P->tiles, .k = (long)J->kc, .a_packed = a + xi * block_bytes,
                              .b_packed = J->v_packed + xi * J->v_bytes, .alpha = 1, .beta = J->c0 == 0 ? 0 : 1,
                              .c = J->m + (xi * P->o + o0) * J->ld, .ldc = (long)J->ld};
            int st = ck_gemm_serial(&g);
            if (st != 0) J->status = st;
        }
    }
}

/// Filters per block: whole register-tile panels, a block's U for every point and `kc` channels
/// in about 512 KiB (so it stays in L2 between its transform and its products: 2 and 4 MiB were
/// 10-40 % slower, scripts/dev/winograd_weights_timing.c), and at least two blocks per thread
/// where the filters allow.
static long fused_rows(const problem *P, size_t kc) {
    const long mr = ck_gemm_tile_rows(0);
    long rows = (long)((512u << 10) / (P->points * kc * sizeof(float))) / mr * mr;
    long spread = (long)((P->o + 2 * (size_t)ck_get_threads() - 1) / (2 * (size_t)ck_get_threads()));
    spread = (spread + mr - 1) / mr * mr;
    if (rows > spread) rows = spread;
    return rows < mr ? mr : rows;
}

static int fused_products(const problem *P, const float *v, float *m, size_t ld) {
    const size_t step = (size_t)ck_gemm_k_step(0, (long)P->c);
    fused_job J = {P, v, m, ld, 0, 0, NULL, (ck_gemm_packed_b_bytes(0, (long)P->tiles, (long)step) + 63) / 64 * 64,
                   fused_rows(P, step), 0};
    J.v_packed = thread_buffer(1, P->points * J.v_bytes);
    if (!J.v_packed) return -1;
    for (size_t c0 = 0; c0 < P->c && J.status == 0; c0 += step) {
        J.c0 = c0, J.kc = P->c - c0 < step ? P->c - c0 : step;
        ck_parallel_for(P->points, 1, fused_pack_inputs, &J);
        if (J.status == 0) ck_parallel_for((P->o + (size_t)J.rows - 1) / (size_t)J.rows, 1, fused_blocks, &J);
    }
    return J.status;
}

static int whole_schedule(const problem *P) {
    size_t ld = P->tiles;
    float *v = (float *)thread_buffer(2, P->points * P->c * ld * sizeof(float) + 64);
    float *mm = (float *)thread_buffer(3, P->points * P->o * ld * sizeof(float) + 64);
    if (!v || !mm) return -1;
    whole_job J = {P, v, mm, ld, 0};
    ck_parallel_for(P->c, 1, whole_inputs, &J);
    if (P->W.w) J.status = fused_products(P, v, mm, ld);
    else ck_parallel_for(P->points, 1, whole_gemms, &J);
    if (J.status == 0) ck_parallel_for(P->o, 1, whole_outputs, &J);
    return J.status;
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

/// The problem's tile grid and transform size.
static problem make_problem(const float *x, size_t n, size_t c, size_t h, size_t w, size_t o, int tile) {
    const int m = tile == 4 ? 4 : 2;
    size_t th = (h + (size_t)m - 1) / (size_t)m, tw = (w + (size_t)m - 1) / (size_t)m;
    return (problem){.x = x, .n = n, .c = c, .o = o, .h = h, .w = w, .th = th, .tw = tw, .tiles = n * th * tw, .m = m,
                     .points = (size_t)(m + 2) * (size_t)(m + 2)};
}

static int blocked(const problem *P) { return P->tiles >= 4 * block_tiles(P->points, P->c, P->o); }

int ck_winograd_fuses_weights(size_t n, size_t c, size_t h, size_t w, size_t o, int tile) {
    problem P = make_problem(NULL, n, c, h, w, o, tile);
    return !blocked(&P);
}

int ck_winograd_conv3x3(const float *x, size_t n, size_t c, size_t h, size_t w, const ck_winograd_weights *weights, size_t o,
                        const float *bias, const float *residual, int tile, float *y) {
    problem P = make_problem(x, n, c, h, w, o, tile);
    P.bias = bias, P.residual = residual, P.y = y, P.W = *weights, P.u_packed = weights->u_packed;
    if (!blocked(&P) && (!P.W.w || P.W.compute == 0)) return whole_schedule(&P);
    char *made = NULL;
    if (P.W.w) {
        // Every block of tiles needs all of U (and bf16 products take it whole): make it packed
        // once for this call.
        weight_src S = source_of(&P);
        size_t bytes = ck_winograd_packed_bytes(P.o, P.c, P.m, P.W.compute);
        if (bytes == 0) return -2;
        made = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!made) return -1;
        int st = ck_winograd_transform_packed(S.w, S.dtype, S.o, S.c, S.backward, S.tile, P.W.compute, made);
        if (st != 0) { free(made); return st; }
        P.u_packed = made, P.W.w = NULL;
    }
    int status;
    if (!blocked(&P)) {
        status = whole_schedule(&P);
    } else {
        size_t block = block_tiles(P.points, c, o);
        blocked_job J = {&P, block, 0};
        ck_parallel_for((P.tiles + block - 1) / block, 1, blocked_range, &J);
        status = J.status;
    }
    free(made);
    return status;
}
