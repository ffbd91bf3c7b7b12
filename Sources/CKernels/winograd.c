// Winograd F(2x2, 3x3) convolution (see ck_winograd.h).
//
// Transforms (Lavin & Gray 2015):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   input tile d (4x4): V = B^T d B
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]  kernel g (3x3):     U = G g G^T
//   A^T = [1 1 1 0; 0 1 -1 -1]                         product m (4x4):    Y = A^T m A
// Layouts: U [16][O][C], V [16][C][T], M [16][O][T] with T = N * ceil(H/2) * ceil(W/2) tiles,
// tile t = (b * th + i) * tw + j covering output rows 2i, 2i+1 and columns 2j, 2j+1.
#include "ck_winograd.h"
#include "ck_gemm.h"
#include "ck_parallel.h"
#include <stdlib.h>
#include <string.h>

size_t ck_winograd_weights_count(size_t out_channels, size_t in_channels) { return 16 * out_channels * in_channels; }

void ck_winograd_transform_weights(const float *w, size_t o, size_t c, int backward, float *u) {
    // Filters of the convolution being transformed: fo output x fc input channels.
    size_t fo = backward ? c : o, fc = backward ? o : c;
    for (size_t p = 0; p < fo; p++) {
        for (size_t q = 0; q < fc; q++) {
            double g[3][3];
            for (int r = 0; r < 3; r++) {
                for (int s = 0; s < 3; s++) {
                    g[r][s] = backward ? w[((q * c + p) * 3 + (2 - r)) * 3 + (2 - s)] : w[((p * c + q) * 3 + r) * 3 + s];
                }
            }
            double t[4][3];
            for (int s = 0; s < 3; s++) {
                t[0][s] = g[0][s];
                t[1][s] = 0.5 * (g[0][s] + g[1][s] + g[2][s]);
                t[2][s] = 0.5 * (g[0][s] - g[1][s] + g[2][s]);
                t[3][s] = g[2][s];
            }
            for (int r = 0; r < 4; r++) {
                double v[4] = {t[r][0], 0.5 * (t[r][0] + t[r][1] + t[r][2]), 0.5 * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
                for (int k = 0; k < 4; k++) u[((size_t)(r * 4 + k) * fo + p) * fc + q] = (float)v[k];
            }
        }
    }
}

typedef struct {
    const float *x;
    float *v;
    size_t n, c, h, w, th, tw, tiles;
} input_job;

/// V for the channels [begin, end).
static void input_transform(void *ctx, size_t begin, size_t end) {
    const input_job *J = ctx;
    const size_t h = J->h, w = J->w, plane = J->c * J->tiles;
    for (size_t ch = begin; ch < end; ch++) {
        for (size_t b = 0; b < J->n; b++) {
            const float *src = J->x + (b * J->c + ch) * h * w;
            for (size_t i = 0; i < J->th; i++) {
                for (size_t j = 0; j < J->tw; j++) {
                    float d[4][4];
                    long r0 = (long)(2 * i) - 1, c0 = (long)(2 * j) - 1;
                    if (r0 >= 0 && r0 + 4 <= (long)h && c0 >= 0 && c0 + 4 <= (long)w) {
                        for (int r = 0; r < 4; r++) memcpy(d[r], src + (size_t)(r0 + r) * w + (size_t)c0, 4 * sizeof(float));
                    } else {
                        for (int r = 0; r < 4; r++) {
                            long y = r0 + r;
                            for (int s = 0; s < 4; s++) {
                                long x = c0 + s;
                                d[r][s] = (y >= 0 && y < (long)h && x >= 0 && x < (long)w) ? src[(size_t)y * w + (size_t)x] : 0.0f;
                            }
                        }
                    }
                    float t[4][4];
                    for (int s = 0; s < 4; s++) {
                        t[0][s] = d[0][s] - d[2][s];
                        t[1][s] = d[1][s] + d[2][s];
                        t[2][s] = d[2][s] - d[1][s];
                        t[3][s] = d[1][s] - d[3][s];
                    }
                    size_t tile = (b * J->th + i) * J->tw + j;
                    float *dst = J->v + ch * J->tiles + tile;
                    for (int r = 0; r < 4; r++) {
                        dst[(size_t)(r * 4 + 0) * plane] = t[r][0] - t[r][2];
                        dst[(size_t)(r * 4 + 1) * plane] = t[r][1] + t[r][2];
                        dst[(size_t)(r * 4 + 2) * plane] = t[r][2] - t[r][1];
                        dst[(size_t)(r * 4 + 3) * plane] = t[r][1] - t[r][3];
                    }
                }
            }
        }
    }
}

typedef struct {
    const float *u, *v;
    float *m;
    size_t o, c, tiles;
    int status;
} gemm_job;

/// M[xi] = U[xi] V[xi] for the transform points [begin, end).
static void point_gemms(void *ctx, size_t begin, size_t end) {
    gemm_job *J = ctx;
    for (size_t xi = begin; xi < end; xi++) {
        int st = ck_sgemm_serial('N', 'N', (long)J->o, (long)J->tiles, (long)J->c, 1.0f, J->u + xi * J->o * J->c, (long)J->c,
                                 J->v + xi * J->c * J->tiles, (long)J->tiles, 0.0f, J->m + xi * J->o * J->tiles, (long)J->tiles);
        if (st != 0) J->status = st;
    }
}

typedef struct {
    const float *m, *bias;
    float *y;
    size_t n, o, h, w, th, tw, tiles;
} output_job;

/// Y for the output channels [begin, end).
static void output_transform(void *ctx, size_t begin, size_t end) {
    const output_job *J = ctx;
    const size_t h = J->h, w = J->w, plane = J->o * J->tiles;
    for (size_t oc = begin; oc < end; oc++) {
        const float bias = J->bias ? J->bias[oc] : 0.0f;
        for (size_t b = 0; b < J->n; b++) {
            float *dst = J->y + (b * J->o + oc) * h * w;
            for (size_t i = 0; i < J->th; i++) {
                for (size_t j = 0; j < J->tw; j++) {
                    size_t tile = (b * J->th + i) * J->tw + j;
                    const float *src = J->m + oc * J->tiles + tile;
                    float m[4][4];
                    for (int k = 0; k < 16; k++) m[k / 4][k % 4] = src[(size_t)k * plane];
                    float t[2][4];
                    for (int s = 0; s < 4; s++) {
                        t[0][s] = m[0][s] + m[1][s] + m[2][s];
                        t[1][s] = m[1][s] - m[2][s] - m[3][s];
                    }
                    for (int r = 0; r < 2; r++) {
                        size_t y = 2 * i + (size_t)r;
                        if (y >= h) break;
                        float y0 = t[r][0] + t[r][1] + t[r][2] + bias, y1 = t[r][1] - t[r][2] - t[r][3] + bias;
                        dst[y * w + 2 * j] = y0;
                        if (2 * j + 1 < w) dst[y * w + 2 * j + 1] = y1;
                    }
                }
            }
        }
    }
}

int ck_winograd_conv3x3(const float *x, size_t n, size_t c, size_t h, size_t w, const float *u, size_t o,
                        const float *bias, float *y) {
    size_t th = (h + 1) / 2, tw = (w + 1) / 2, tiles = n * th * tw;
    float *v = NULL, *m = NULL;
    if (posix_memalign((void **)&v, 64, 16 * c * tiles * sizeof(float) + 64) != 0) return -1;
    if (posix_memalign((void **)&m, 64, 16 * o * tiles * sizeof(float) + 64) != 0) {
        free(v);
        return -1;
    }
    input_job in = {x, v, n, c, h, w, th, tw, tiles};
    ck_parallel_for(c, 1, input_transform, &in);
    gemm_job g = {u, v, m, o, c, tiles, 0};
    ck_parallel_for(16, 1, point_gemms, &g);
    free(v);
    if (g.status == 0) {
        output_job out = {m, bias, y, n, o, h, w, th, tw, tiles};
        ck_parallel_for(o, 1, output_transform, &out);
    }
    free(m);
    return g.status;
}
