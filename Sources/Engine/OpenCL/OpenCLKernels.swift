/// The OpenCL C source of every kernel of `OpenCLBackend`, built once per device (and cached on
/// disk by `OpenCLProgramCache`). The kernels follow the CPU kernels of `CKernels` operation for
/// operation (same formulas, statistics in double where the device has it), so that results agree
/// to rounding.
enum OpenCLKernels {
    /// Work-group size of the row reductions (a power of two).
    static let reductionGroup = 64
    /// GEMM: 64 x 64 output tiles, 16 x 16 work-items computing 4 x 4 outputs each.
    static let gemmTile = 64, gemmGroup = 16

    static let source = ElementwiseCodes.openCLDefinitions + #"""
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif

#define RG 64
#define MAXR 8

/* ---- reductions over a work-group of RG items ---- */
acc_t group_sum(acc_t v, __local acc_t *s) {
    int l = get_local_id(0);
    s[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int o = RG / 2; o > 0; o >>= 1) {
        if (l < o) s[l] += s[l + o];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    acc_t r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

float group_max(float v, __local float *s) {
    int l = get_local_id(0);
    s[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int o = RG / 2; o > 0; o >>= 1) {
        if (l < o) s[l] = fmax(s[l], s[l + o]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* ---- layout ---- */
/* Element offsets of linear index i in two strided views of `shape` (rank <= MAXR). */
void strided_offsets(long i, long8 shape8, long8 as8, long8 bs8, int rank, long *oa, long *ob) {
    long shape[MAXR], as[MAXR], bs[MAXR];
    vstore8(shape8, 0, shape); vstore8(as8, 0, as); vstore8(bs8, 0, bs);
    long rem = i, a = 0, b = 0;
    for (int d = rank - 1; d >= 0; d--) {
        long c = rem % shape[d];
        rem /= shape[d];
        a += c * as[d];
        b += c * bs[d];
    }
    *oa = a; *ob = b;
}

__kernel void copy_strided(__global const float *src, long soff, long8 ss, __global float *dst, long doff, long8 ds,
                           long8 shape, int rank, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0), a, b;
    strided_offsets(i, shape, ss, ds, rank, &a, &b);
    dst[doff + b] = src[soff + a];
}

__kernel void fill(__global float *x, float v, long n_) {
    if (get_global_id(0) >= n_) return;
    x[get_global_id(0)] = v;
}

/* ---- storage conversions ---- */
__kernel void f32_to_f16(__global const float *x, long off, __global half *y, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    vstore_half_rte(x[off + i], i, y);
}
__kernel void f16_to_f32(__global const half *x, long off, __global float *y, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    y[i] = vload_half(off + i, x);
}
__kernel void f32_to_bf16(__global const uint *x, long off, __global ushort *y, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    uint u = x[off + i];
    if ((u & 0x7fffffffu) > 0x7f800000u) { y[i] = (ushort)((u >> 16) | 0x0040u); return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    y[i] = (ushort)(u >> 16);
}
__kernel void bf16_to_f32(__global const ushort *x, long off, __global uint *y, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    y[i] = ((uint)x[off + i]) << 16;
}
__kernel void copy_bytes(__global const uchar *x, long off, __global uchar *y, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    y[i] = x[off + i];
}

/* ---- element-wise ---- */
#define SQRT2_INV 0.70710678118654752440f
#define TANH_C 0.79788456080286535588f
float sigmoid_(float x) { return 1.0f / (1.0f + exp(-x)); }
float gelu_f(float x) { return 0.5f * x * (1.0f + erf(x * SQRT2_INV)); }
float gelu_grad(float x) {
    float cdf = 0.5f * (1.0f + erf(x * SQRT2_INV));
    float pdf = exp(-0.5f * x * x) * 0.39894228040143267794f;
    return cdf + x * pdf;
}

/* op codes: CKernels' ck_unary_op and ck_binary_op, #defined before this source (ElementwiseCodes) */
__kernel void unary(int op, __global const float *xs, long xoff, __global float *y, float p0, float p1, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    float x = xs[xoff + i], r;
    switch (op) {
    case CK_UNARY_GELU: r = gelu_f(x); break;
    case CK_UNARY_GELU_TANH: r = 0.5f * x * (1.0f + tanh(TANH_C * (x + 0.044715f * x * x * x))); break;
    case CK_UNARY_QUICK_GELU: r = x * sigmoid_(1.702f * x); break;
    case CK_UNARY_SILU: r = x * sigmoid_(x); break;
    case CK_UNARY_EXP: r = exp(x); break;
    case CK_UNARY_LOG: r = log(x); break;
    case CK_UNARY_SQRT: r = sqrt(x); break;
    case CK_UNARY_NEG: r = -x; break;
    case CK_UNARY_SQUARE: r = x * x; break;
    default: r = fmin(fmax(x, p0), p1); break;   /* CK_UNARY_CLAMP */
    }
    y[i] = r;
}

__kernel void unary_backward(int op, __global const float *xs, long xoff, __global const float *ys, long yoff, int has_y,
                             __global const float *dys, long dyoff, __global float *dx, float p0, float p1, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    float x = xs[xoff + i], dy = dys[dyoff + i], r;
    switch (op) {
    case CK_UNARY_GELU: r = dy * gelu_grad(x); break;
    case CK_UNARY_GELU_TANH: {
        float inner = TANH_C * (x + 0.044715f * x * x * x), t = tanh(inner);
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * TANH_C * (1.0f + 3.0f * 0.044715f * x * x);
        r = dy * d; break;
    }
    case CK_UNARY_QUICK_GELU: { float s = sigmoid_(1.702f * x); r = dy * (s + 1.702f * x * s * (1.0f - s)); break; }
    case CK_UNARY_SILU: { float s = sigmoid_(x); r = dy * (s + x * s * (1.0f - s)); break; }
    case CK_UNARY_EXP: r = dy * (has_y ? ys[yoff + i] : exp(x)); break;
    case CK_UNARY_LOG: r = dy / x; break;
    case CK_UNARY_SQRT: r = dy * 0.5f / (has_y ? ys[yoff + i] : sqrt(x)); break;
    case CK_UNARY_NEG: r = -dy; break;
    case CK_UNARY_SQUARE: r = 2.0f * x * dy; break;
    default: r = (x >= p0 && x <= p1) ? dy : 0.0f; break;   /* CK_UNARY_CLAMP */
    }
    dx[i] = r;
}

__kernel void binary(int op, __global const float *a, long aoff, long8 as, __global const float *b, long boff, long8 bs,
                     __global float *out, long8 shape, int rank, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0), oa, ob;
    strided_offsets(i, shape, as, bs, rank, &oa, &ob);
    float x = a[aoff + oa], y = b[boff + ob], r;
    switch (op) {
    case CK_BINARY_ADD: r = x + y; break;
    case CK_BINARY_SUB: r = x - y; break;
    case CK_BINARY_MUL: r = x * y; break;
    default: r = x / y; break;   /* CK_BINARY_DIV */
    }
    out[i] = r;
}

__kernel void affine(__global const float *x, long off, __global float *y, float mul, float add, long n_) {
    if (get_global_id(0) >= n_) return;
    size_t i = get_global_id(0);
    y[i] = x[off + i] * mul + add;
}

/* ---- row reductions: one work-group per row ---- */
__kernel void row_sum(__global const float *x, long off, long cols, __global float *out) {
    __local acc_t s[RG];
    long r = get_group_id(0); int l = get_local_id(0);
    __global const float *row = x + off + r * cols;
    acc_t v = 0;
    for (long j = l; j < cols; j += RG) v += row[j];
    v = group_sum(v, s);
    if (l == 0) out[r] = (float)v;
}

__kernel void row_mean_var(__global const float *x, long off, long cols, __global float *mean, __global float *var) {
    __local acc_t s[RG];
    long r = get_group_id(0); int l = get_local_id(0);
    __global const float *row = x + off + r * cols;
    acc_t v = 0;
    for (long j = l; j < cols; j += RG) v += row[j];
    acc_t m = cols ? group_sum(v, s) / (acc_t)cols : 0;
    v = 0;
    for (long j = l; j < cols; j += RG) { acc_t d = row[j] - m; v += d * d; }
    v = group_sum(v, s);
    if (l == 0) { mean[r] = (float)m; var[r] = cols ? (float)(v / (acc_t)cols) : 0.0f; }
}

/* ---- GEMM: C[b] = alpha * A[b] B[b] (+ bias per column (1) or row (2)) + beta * C[b] ---- */
#define TS 64
#define TK 16
#define WG 16
#define WPT 4
__kernel __attribute__((reqd_work_group_size(WG, WG, 1)))
void gemm(int M, int N, int K, float alpha, float beta,
          __global const float *A, long aoff, long abs_, long ars, long acs,
          __global const float *B, long boff, long bbs, long brs, long bcs,
          __global float *C, long coff, long cbs, long crs,
          __global const float *bias, int bias_mode) {
    __local float As[TK][TS + 1];
    __local float Bs[TK][TS + 1];
    int tx = get_local_id(0), ty = get_local_id(1);
    int row0 = get_group_id(1) * TS, col0 = get_group_id(0) * TS;
    long b = get_global_id(2);
    A += aoff + b * abs_;
    B += boff + b * bbs;
    float acc[WPT][WPT];
    for (int i = 0; i < WPT; i++) for (int j = 0; j < WPT; j++) acc[i][j] = 0.0f;
    int lid = ty * WG + tx;
    for (int k0 = 0; k0 < K; k0 += TK) {
        for (int l = lid; l < TS * TK; l += WG * WG) {
            int kk = l % TK, mm = l / TK;
            int gm = row0 + mm, gk = k0 + kk;
            As[kk][mm] = (gm < M && gk < K) ? A[(long)gm * ars + (long)gk * acs] : 0.0f;
            int nn = l % TS, kb = l / TS;
            int gn = col0 + nn, gkb = k0 + kb;
            Bs[kb][nn] = (gkb < K && gn < N) ? B[(long)gkb * brs + (long)gn * bcs] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            float av[WPT], bv[WPT];
            for (int i = 0; i < WPT; i++) av[i] = As[kk][ty + i * WG];
            for (int j = 0; j < WPT; j++) bv[j] = Bs[kk][tx + j * WG];
            for (int i = 0; i < WPT; i++) for (int j = 0; j < WPT; j++) acc[i][j] = mad(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < WPT; i++) {
        int m = row0 + ty + i * WG;
        if (m >= M) continue;
        for (int j = 0; j < WPT; j++) {
            int n = col0 + tx + j * WG;
            if (n >= N) continue;
            float v = alpha * acc[i][j];
            if (bias_mode == 1) v += bias[n];
            else if (bias_mode == 2) v += bias[m];
            long ci = coff + b * cbs + (long)m * crs + n;
            if (beta != 0.0f) v += beta * C[ci];
            C[ci] = v;
        }
    }
}

/* C rows start as the bias (per column: mode 1, per row: mode 2), before a GEMM that accumulates
   into C. Work-items (n, m, batch). */
__kernel void gemm_init(__global float *C, long coff, long cbs, long crs, __global const float *bias, int bias_mode) {
    long n = get_global_id(0), m = get_global_id(1), b = get_global_id(2);
    C[coff + b * cbs + m * crs + n] = bias_mode == 1 ? bias[n] : bias_mode == 2 ? bias[m] : 0.0f;
}

/* ---- convolution as GEMM over unfolded patches: cols [C*k*k, count] of one image, output
   positions [p0, p0 + count) ---- */
__kernel void im2col(__global const float *x, long xoff, int H, int W, int k, int stride, int pad, int OH, int OW,
                     long p0, long count, __global float *cols, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    long p = p0 + i % count, row = i / count;
    int kx = row % k, ky = (row / k) % k, c = row / (k * k);
    int oy = p / OW, ox = p % OW;
    int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    cols[i] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[xoff + ((long)c * H + iy) * W + ix] : 0.0f;
}

/* y [N, C, plane] += bias per channel. */
__kernel void add_channel_bias(__global float *y, __global const float *bias, long channels, long plane, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    y[i] += bias[(i / plane) % channels];
}

/* dx of one image from dcols: every input pixel gathers the patch entries it was copied to. */
__kernel void col2im(__global const float *cols, int H, int W, int k, int stride, int pad, int OH, int OW,
                     __global float *dx, long dxoff, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    int ix = i % W, iy = (i / W) % H, c = i / ((long)W * H);
    float s = 0.0f;
    for (int ky = 0; ky < k; ky++) {
        int ty = iy + pad - ky;
        if (ty < 0 || ty % stride) continue;
        int oy = ty / stride;
        if (oy >= OH) continue;
        for (int kx = 0; kx < k; kx++) {
            int tx = ix + pad - kx;
            if (tx < 0 || tx % stride) continue;
            int ox = tx / stride;
            if (ox >= OW) continue;
            s += cols[((long)(c * k + ky) * k + kx) * OH * OW + (long)oy * OW + ox];
        }
    }
    dx[dxoff + i] = s;
}

/* Sum over images and positions of dy [N, O, P] for each channel (the bias gradient). */
__kernel void channel_sum(__global const float *dy, int n, int channels, long plane, __global float *out) {
    __local acc_t s[RG];
    int ch = get_group_id(0), l = get_local_id(0);
    acc_t v = 0;
    for (int b = 0; b < n; b++) {
        __global const float *p = dy + ((long)b * channels + ch) * plane;
        for (long j = l; j < plane; j += RG) v += p[j];
    }
    v = group_sum(v, s);
    if (l == 0) out[ch] = (float)v;
}

__kernel void upsample2x(__global const float *x, int h, int w, __global float *y, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    int ox = i % (2 * w), oy = (i / (2 * w)) % (2 * h);
    long plane = i / (4L * h * w);
    y[i] = x[(plane * h + oy / 2) * w + ox / 2];
}

__kernel void upsample2x_backward(__global const float *dy, int h, int w, __global float *dx, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    int x = i % w, yy = (i / w) % h;
    long plane = i / ((long)h * w);
    __global const float *r0 = dy + (plane * 2 * h + 2 * yy) * 2 * w, *r1 = r0 + 2 * w;
    dx[i] = (r0[2 * x] + r0[2 * x + 1]) + (r1[2 * x] + r1[2 * x + 1]);
}

/* ---- normalisation (NormLayout): one work-group per row ---- */
int channel_of(long r, long j, int groups, int cpg, long spatial) { return (int)((r % groups) * cpg + j / spatial); }

__kernel void norm_forward(__global const float *x, long len, int groups, int cpg, long spatial, float eps,
                           __global const float *gamma, int has_gamma, __global const float *beta, int has_beta,
                           __global float *y, __global float *mean, __global float *rstd) {
    __local acc_t s[RG];
    long r = get_group_id(0); int l = get_local_id(0);
    __global const float *xr = x + r * len;
    acc_t v = 0;
    for (long j = l; j < len; j += RG) v += xr[j];
    acc_t m = group_sum(v, s) / (acc_t)len;
    v = 0;
    for (long j = l; j < len; j += RG) { acc_t d = xr[j] - m; v += d * d; }
    acc_t rs = (acc_t)1 / sqrt(group_sum(v, s) / (acc_t)len + (acc_t)eps);
    float mf = (float)m, rf = (float)rs;
    if (l == 0) { mean[r] = mf; rstd[r] = rf; }
    for (long j = l; j < len; j += RG) {
        int ch = channel_of(r, j, groups, cpg, spatial);
        float g = has_gamma ? gamma[ch] : 1.0f, bb = has_beta ? beta[ch] : 0.0f;
        float scale = rf * g, shift = bb - mf * rf * g;
        y[r * len + j] = xr[j] * scale + shift;
    }
}

__kernel void norm_backward_dx(__global const float *x, __global const float *dy, long len, int groups, int cpg, long spatial,
                               __global const float *gamma, int has_gamma, __global const float *mean,
                               __global const float *rstd, __global float *dx) {
    __local acc_t s[RG];
    long r = get_group_id(0); int l = get_local_id(0);
    __global const float *xr = x + r * len, *dyr = dy + r * len;
    acc_t m = mean[r], rs = rstd[r], sg = 0, sgx = 0;
    for (long j = l; j < len; j += RG) {
        acc_t g = dyr[j] * (has_gamma ? gamma[channel_of(r, j, groups, cpg, spatial)] : 1.0f);
        sg += g; sgx += g * (xr[j] - m) * rs;
    }
    acc_t mg = group_sum(sg, s) / (acc_t)len, mgx = group_sum(sgx, s) / (acc_t)len;
    for (long j = l; j < len; j += RG) {
        acc_t g = dyr[j] * (has_gamma ? gamma[channel_of(r, j, groups, cpg, spatial)] : 1.0f);
        acc_t xh = (xr[j] - m) * rs;
        dx[r * len + j] = (float)(rs * (g - mg - xh * mgx));
    }
}

/* dgamma, dbeta: one work-group per channel, over the rows that hold it. */
__kernel void norm_backward_params(__global const float *x, __global const float *dy, long rows, long len, int groups, int cpg,
                                   long spatial, __global const float *mean, __global const float *rstd,
                                   __global float *dgamma, __global float *dbeta) {
    __local acc_t s[RG];
    int ch = get_group_id(0), l = get_local_id(0);
    int g = ch / cpg, cc = ch % cpg;
    acc_t sg = 0, sb = 0;
    for (long r = g; r < rows; r += groups) {
        __global const float *xr = x + r * len + cc * spatial, *dyr = dy + r * len + cc * spatial;
        acc_t m = mean[r], rs = rstd[r];
        for (long k = l; k < spatial; k += RG) { sg += dyr[k] * (xr[k] - m) * rs; sb += dyr[k]; }
    }
    sg = group_sum(sg, s);
    sb = group_sum(sb, s);
    if (l == 0) { dgamma[ch] = (float)sg; dbeta[ch] = (float)sb; }
}

/* ---- softmax over rows; one work-group per row ---- */
__kernel void softmax_rows(__global const float *x, long cols, __global float *y) {
    __local acc_t s[RG];
    __local float sm[RG];
    long r = get_group_id(0); int l = get_local_id(0);
    __global const float *xr = x + r * cols; __global float *yr = y + r * cols;
    float mx = -INFINITY;
    for (long j = l; j < cols; j += RG) mx = fmax(mx, xr[j]);
    mx = group_max(mx, sm);
    if (mx == -INFINITY) { for (long j = l; j < cols; j += RG) yr[j] = 0.0f; return; }
    acc_t v = 0;
    for (long j = l; j < cols; j += RG) { float e = exp(xr[j] - mx); yr[j] = e; v += e; }
    float inv = (float)((acc_t)1 / group_sum(v, s));
    for (long j = l; j < cols; j += RG) yr[j] *= inv;
}

__kernel void softmax_backward_rows(__global const float *y, __global const float *dy, long cols, __global float *dx) {
    __local acc_t s[RG];
    long r = get_group_id(0); int l = get_local_id(0);
    __global const float *yr = y + r * cols, *dyr = dy + r * cols;
    acc_t v = 0;
    for (long j = l; j < cols; j += RG) v += (acc_t)dyr[j] * yr[j];
    float d = (float)group_sum(v, s);
    for (long j = l; j < cols; j += RG) dx[r * cols + j] = yr[j] * (dyr[j] - d);
}

/* ---- attention on a block of query rows [r0, r0 + n) of every slice; S is [heads, n, lk] ---- */
/* Scores to probabilities over the visible keys, writing the log-sum-exp of each row.
   One work-group per score row. */
__kernel void attention_softmax(__global float *S, long n, long lk, long lq, long r0, int causal, __global float *lse) {
    __local acc_t s[RG];
    __local float sm[RG];
    long row = get_group_id(0); int l = get_local_id(0);
    long h = row / n, i = row % n;
    __global float *sr = S + row * lk;
    long visible = lk;
    if (causal) { visible = r0 + i + 1; if (visible > lk) visible = lk; }
    float mx = -INFINITY;
    for (long j = l; j < visible; j += RG) mx = fmax(mx, sr[j]);
    mx = group_max(mx, sm);
    acc_t v = 0;
    for (long j = l; j < visible; j += RG) { float e = exp(sr[j] - mx); sr[j] = e; v += e; }
    acc_t sum = group_sum(v, s);
    float inv = (float)((acc_t)1 / sum);
    for (long j = l; j < visible; j += RG) sr[j] *= inv;
    for (long j = visible + l; j < lk; j += RG) sr[j] = 0.0f;
    if (l == 0) lse[h * lq + r0 + i] = mx + (float)log(sum);
}

/* Probabilities from the saved log-sum-exp (backward): P = exp(S - lse), 0 where masked. */
__kernel void attention_exp(__global float *S, long n, long lk, long lq, long r0, int causal, __global const float *lse, long n_) {
    if (get_global_id(0) >= n_) return;
    long e = get_global_id(0);
    long row = e / lk, j = e % lk;
    long h = row / n, i = row % n;
    long visible = lk;
    if (causal) { visible = r0 + i + 1; if (visible > lk) visible = lk; }
    S[e] = j < visible ? exp(S[e] - lse[h * lq + r0 + i]) : 0.0f;
}

/* D[h, i] = dot(o row, dout row) for the block's rows; one work-group per row. */
__kernel void attention_rowdot(__global const float *o, __global const float *dout, long n, long lq, long r0, long dv,
                               __global float *D) {
    __local acc_t s[RG];
    long row = get_group_id(0); int l = get_local_id(0);
    long h = row / n, i = row % n;
    long base = (h * lq + r0 + i) * dv;
    acc_t v = 0;
    for (long j = l; j < dv; j += RG) v += (acc_t)o[base + j] * dout[base + j];
    v = group_sum(v, s);
    if (l == 0) D[row] = (float)v;
}

/* dS = P * (dP - D) * scale, in place in dP. */
__kernel void attention_dscores(__global const float *P, __global float *dP, __global const float *D, long lk, float scale, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    dP[i] = P[i] * (dP[i] - D[i / lk]) * scale;
}

/* ---- GEGLU ---- */
__kernel void geglu(__global const float *x, long half_, __global float *y, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    long r = i / half_, j = i % half_;
    __global const float *xr = x + r * 2 * half_;
    y[i] = xr[j] * gelu_f(xr[half_ + j]);
}

__kernel void geglu_backward(__global const float *x, __global const float *dy, long half_, __global float *dx, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    long r = i / half_, j = i % half_;
    __global const float *xr = x + r * 2 * half_;
    float g = xr[half_ + j], d = dy[i];
    dx[r * 2 * half_ + j] = d * gelu_f(g);
    dx[r * 2 * half_ + half_ + j] = d * xr[j] * gelu_grad(g);
}

/* ---- embedding ---- */
__kernel void embedding(__global const float *w, __global const int *ids, long d, __global float *out, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    out[i] = w[(long)ids[i / d] * d + i % d];
}

/* Rows of dw for the distinct ids: row u sums dy rows positions[starts[u] .. starts[u + 1]) in order. */
__kernel void embedding_backward(__global const float *dy, __global const int *unique_ids, __global const int *starts,
                                 __global const int *positions, long d, __global float *dw, long n_) {
    if (get_global_id(0) >= n_) return;
    long i = get_global_id(0);
    long u = i / d, j = i % d;
    float s = 0.0f;
    for (int p = starts[u]; p < starts[u + 1]; p++) s += dy[(long)positions[p] * d + j];
    dw[(long)unique_ids[u] * d + j] = s;
}
"""#
}
