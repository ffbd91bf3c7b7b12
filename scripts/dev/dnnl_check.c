/*
 * dnnl_check.c - standalone check + benchmark for Sources/CKernels/dnnl.c
 *
 * Build (from the repo root):
 *   gcc -O2 -I Sources/CKernels/include Sources/CKernels/dnnl.c \
 *       Sources/CKernels/omp_threads.c scripts/dev/dnnl_check.c \
 *       -ldnnl -lm -lpthread -ldl -o /tmp/convcheck
 * Run:
 *   /tmp/convcheck            correctness + benchmark
 *   /tmp/convcheck check      correctness only
 *   DNNL_MAX_CPU_ISA=AVX2 /tmp/convcheck   emulate an AVX2-only CPU
 *   DNNL_VERBOSE=1 ...        show the implementation / layouts oneDNN picks
 *
 * Correctness: forward (with and without bias), backward-data and
 * backward-weights (with and without db) against naive double-precision
 * loops; error = max|got - ref| / max|ref| per tensor, must be < 1e-5.
 * Forward and backward-data run with weight_key 0 and with a non-zero key;
 * a second call with the key must return the same bits. Also: the weight
 * cache really is used (changed weights under the same key give the old
 * result) and ck_conv_forget_weights makes the next call see new weights;
 * eviction under a small limit, limit 0; primitive-cache hit timing,
 * bad-shape error path, three threads at once (two convolving with keys,
 * one forgetting those keys in a loop).
 *
 * Benchmark: forward on SD-like 3x3 shapes, 2 threads, best of 7 after
 * warm-up, GFLOP/s = 2*N*O*C*k*k*OH*OW / s. "key 0" reorders the weights
 * every call, "cached" passes a weight_key; "bare" rebuilds the same oneDNN
 * primitive here and times the convolution alone on blocked buffers (the
 * ceiling; "b/cac" = bare time / cached time); "rw" is the weights reorder
 * alone. The four are interleaved round by round (VM noise hits them
 * alike). A last line cycles through weights with the cache limit below
 * their total (LRU misses every time), interleaved with key 0 likewise.
 */
#define _GNU_SOURCE
#include "ck_dnnl.h"
#include "ck_omp.h"

#include <dnnl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}
static float *rand_buf(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static ck_conv_shape mk(int n, int c, int h, int w, int o, int k, int st,
                        int p) {
    ck_conv_shape s = {n, c, h, w, o, k, st, p, 0, 0};
    s.oh = (h + 2 * p - k) / st + 1;
    s.ow = (w + 2 * p - k) / st + 1;
    return s;
}

#define X(s, n, c, i, j) (((size_t)(n) * (s)->c + (c)) * (s)->h + (i)) * (s)->w + (j)
#define Y(s, n, o, i, j) (((size_t)(n) * (s)->o + (o)) * (s)->oh + (i)) * (s)->ow + (j)
#define W(s, o, c, i, j) (((size_t)(o) * (s)->c + (c)) * (s)->k + (i)) * (s)->k + (j)

/* Naive reference: visits every (n,o,oy,ox,c,ky,kx) term once. */
static void ref_all(const ck_conv_shape *s, const float *x, const float *w,
                    const float *b, const float *dy, double *y, double *dx,
                    double *dw, double *db) {
    size_t ny = (size_t)s->n * s->o * s->oh * s->ow;
    size_t nx = (size_t)s->n * s->c * s->h * s->w;
    size_t nw = (size_t)s->o * s->c * s->k * s->k;
    memset(dx, 0, nx * sizeof *dx);
    memset(dw, 0, nw * sizeof *dw);
    memset(db, 0, s->o * sizeof *db);
    for (size_t i = 0; i < ny; i++) y[i] = 0;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->o; o++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    size_t yi = Y(s, n, o, oy, ox);
                    double acc = b ? b[o] : 0.0;
                    db[o] += dy[yi];
                    for (int c = 0; c < s->c; c++)
                        for (int ky = 0; ky < s->k; ky++)
                            for (int kx = 0; kx < s->k; kx++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                size_t xi = X(s, n, c, iy, ix);
                                size_t wi = W(s, o, c, ky, kx);
                                acc += (double)x[xi] * w[wi];
                                dx[xi] += (double)dy[yi] * w[wi];
                                dw[wi] += (double)dy[yi] * x[xi];
                            }
                    y[yi] = acc;
                }
}

static double relerr(const float *got, const double *ref, size_t n) {
    double maxref = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN-sticky */
    }
    return maxref > 0 ? maxdiff / maxref : maxdiff;
}

static int failures = 0;
static void report(const char *what, double e) {
    int ok = e < 1e-5;
    if (!ok) failures++;
    printf("  %-22s rel.err %.2e  %s\n", what, e, ok ? "ok" : "FAIL");
}
static void must(int rc, const char *what) {
    if (rc) {
        printf("  %s: rc=%d (%s)  FAIL\n", what, rc, ck_conv_last_error());
        failures++;
    }
}

static uint64_t next_key = 1000;

/* Same bits? (NaN-safe: compares the representation.) */
static void same_bits(const char *what, const float *a, const float *b,
                      size_t n) {
    int ok = memcmp(a, b, n * sizeof *a) == 0;
    if (!ok) failures++;
    printf("  %-22s %s\n", what, ok ? "identical bits  ok" : "DIFFER  FAIL");
}

static void check_shape(ck_conv_shape s) {
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.o * s.oh * s.ow;
    size_t nw = (size_t)s.o * s.c * s.k * s.k;
    printf("shape n=%d c=%d h=%d w=%d o=%d k=%d s=%d p=%d -> %dx%d\n", s.n, s.c,
           s.h, s.w, s.o, s.k, s.stride, s.pad, s.oh, s.ow);
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(s.o),
          *dy = rand_buf(ny);
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4),
          *db = malloc(s.o * 4);
    double *ry = malloc(ny * 8), *rdx = malloc(nx * 8), *rdw = malloc(nw * 8),
           *rdb = malloc(s.o * 8), *ry0 = malloc(ny * 8);

    ref_all(&s, x, w, b, dy, ry, rdx, rdw, rdb);
    ref_all(&s, x, w, NULL, dy, ry0, rdx, rdw, rdb);

    float *y2 = malloc(ny * 4), *dx2 = malloc(nx * 4);
    uint64_t key = next_key++;

    memset(y, 0xff, ny * 4); /* NaN garbage: outputs must be overwritten */
    must(ck_conv2d_forward(&s, x, w, 0, b, y), "forward+bias");
    report("forward (bias)", relerr(y, ry, ny));
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, 0, NULL, y), "forward");
    report("forward (no bias)", relerr(y, ry0, ny));
    /* Cached weights: first call fills, second hits. */
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, key, b, y), "forward+bias key");
    report("forward (bias, key)", relerr(y, ry, ny));
    memset(y2, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, key, b, y2), "forward+bias key 2nd");
    same_bits("forward key 2nd call", y, y2, ny);
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, key, NULL, y), "forward key");
    report("forward (no bias, key)", relerr(y, ry0, ny));
    memset(dx, 0xff, nx * 4);
    must(ck_conv2d_backward_data(&s, dy, w, 0, dx), "backward_data");
    report("backward-data", relerr(dx, rdx, nx));
    memset(dx, 0xff, nx * 4);
    must(ck_conv2d_backward_data(&s, dy, w, key, dx), "backward_data key");
    report("backward-data (key)", relerr(dx, rdx, nx));
    memset(dx2, 0xff, nx * 4);
    must(ck_conv2d_backward_data(&s, dy, w, key, dx2), "backward_data key 2");
    same_bits("bwd-data key 2nd call", dx, dx2, nx);
    memset(dw, 0xff, nw * 4);
    memset(db, 0xff, s.o * 4);
    must(ck_conv2d_backward_weights(&s, x, dy, dw, db), "backward_weights+db");
    report("backward-weights dw", relerr(dw, rdw, nw));
    report("backward-weights db", relerr(db, rdb, s.o));
    memset(dw, 0xff, nw * 4);
    must(ck_conv2d_backward_weights(&s, x, dy, dw, NULL), "backward_weights");
    report("backward-weights (no db)", relerr(dw, rdw, nw));

    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
    free(ry); free(rdx); free(rdw); free(rdb); free(ry0); free(y2); free(dx2);
}

#define D(call)                                                          \
    do {                                                                 \
        dnnl_status_t st_ = (call);                                      \
        if (st_) { printf("dnnl error %d at %s\n", st_, #call); exit(1); } \
    } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t strm;
static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Size of the blocked weights oneDNN picks for forward on shape s (no bias
 * there, as in dnnl.c the weights layout does not depend on it). */
static size_t fwd_wei_bytes(ck_conv_shape s) {
    dnnl_dims_t xd = {s.n, s.c, s.h, s.w}, wd = {s.o, s.c, s.k, s.k},
                yd = {s.n, s.o, s.oh, s.ow};
    dnnl_dims_t st = {s.stride, s.stride}, pad = {s.pad, s.pad};
    dnnl_memory_desc_t xa, wa, ya;
    D(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&wa, 4, wd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    D(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                         dnnl_convolution_direct, &xa, &wa,
                                         NULL, &ya, st, pad, pad));
    dnnl_primitive_desc_t pd;
    D(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    size_t n = dnnl_memory_desc_get_size(
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
    dnnl_primitive_desc_destroy(pd);
    return n;
}

/* The cache is really used, and ck_conv_forget_weights invalidates it;
 * then eviction with a small limit and limit 0. */
static void check_weight_cache(void) {
    printf("weight cache:\n");
    ck_conv_shape s = mk(2, 40, 12, 10, 36, 3, 1, 1);
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.o * s.oh * s.ow;
    size_t nw = (size_t)s.o * s.c * s.k * s.k;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(s.o),
          *dy = rand_buf(ny), *w2 = rand_buf(nw);
    float *y = malloc(ny * 4), *dx = malloc(nx * 4);
    float *yold = malloc(ny * 4), *dxold = malloc(nx * 4);
    double *ry = malloc(ny * 8), *rdx = malloc(nx * 8), *rdw = malloc(nw * 8),
           *rdb = malloc(s.o * 8);
    const uint64_t K = 0xC0FFEE;

    must(ck_conv2d_forward(&s, x, w, K, b, yold), "wc fwd 1");
    must(ck_conv2d_backward_data(&s, dy, w, K, dxold), "wc bwd 1");
    memcpy(w, w2, nw * 4); /* change the values in place, same key */
    ref_all(&s, x, w, b, dy, ry, rdx, rdw, rdb);
    must(ck_conv2d_forward(&s, x, w, K, b, y), "wc fwd stale");
    same_bits("fwd stale (cache used)", y, yold, ny);
    must(ck_conv2d_backward_data(&s, dy, w, K, dx), "wc bwd stale");
    same_bits("bwd stale (cache used)", dx, dxold, nx);
    ck_conv_forget_weights(K + 1); /* other key: no effect */
    must(ck_conv2d_forward(&s, x, w, K, b, y), "wc fwd other forget");
    same_bits("fwd after other forget", y, yold, ny);
    ck_conv_forget_weights(K);
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, K, b, y), "wc fwd after forget");
    report("fwd after forget", relerr(y, ry, ny));
    memset(dx, 0xff, nx * 4);
    must(ck_conv2d_backward_data(&s, dy, w, K, dx), "wc bwd after forget");
    report("bwd-data after forget", relerr(dx, rdx, nx));
    /* Same key, other weight pointer with other values: still the cached
     * copy (the key names the values). */
    float *w3 = rand_buf(nw);
    float *y3 = malloc(ny * 4);
    must(ck_conv2d_forward(&s, x, w3, K, b, y3), "wc other pointer");
    same_bits("other ptr same key", y3, y, ny);
    ck_conv_forget_weights(K);

    /* Eviction: limit fits one blocked weight, alternate two keys (A, B,
     * A, B...): every lookup misses, results must stay right. The limit
     * holds one blocked copy (a recycled pool block may be up to 25% bigger
     * than the copy) but not two. */
    size_t wb = fwd_wei_bytes(s), one = round64(wb) + round64(wb) / 4;
    printf("  (blocked forward weights %zu B, limit %zu B)\n", wb, one);
    if (2 * wb <= one) { printf("  limit for one copy impossible  FAIL\n"); failures++; }
    ck_conv_set_weight_cache_limit(one);
    double *ryb = malloc(ny * 8);
    ref_all(&s, x, w3, b, dy, ryb, rdx, rdw, rdb);
    double e = 0;
    for (int i = 0; i < 6; i++) {
        memset(y, 0xff, ny * 4);
        int a = i % 2 == 0;
        must(ck_conv2d_forward(&s, x, a ? w : w3, a ? 7001 : 7002, b, y),
             "wc evict");
        double ei = relerr(y, a ? ry : ryb, ny);
        if (!(ei <= e)) e = ei;
    }
    report("evicting (limit 1 copy)", e);
    /* 7001 (w) must have been evicted by 7002: called with w3 values it now
     * gives the w3 result, not the stale w result. */
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w3, 7001, b, y), "wc evicted");
    report("evicted key re-reads w", relerr(y, ryb, ny));
    /* With room for both, alternating keeps both: stale results prove it. */
    ck_conv_forget_weights(7001);
    ck_conv_forget_weights(7002);
    ck_conv_set_weight_cache_limit(1 << 20);
    must(ck_conv2d_forward(&s, x, w, 7001, b, y), "wc both 1");
    must(ck_conv2d_forward(&s, x, w3, 7002, b, y), "wc both 2");
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w3, 7001, b, y), "wc both 3");
    report("limit 1M keeps 7001", relerr(y, ry, ny)); /* stale w: cached */
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, 7002, b, y), "wc both 4");
    report("limit 1M keeps 7002", relerr(y, ryb, ny));
    /* Lowering the limit evicts at once: 7001 is the least recently used. */
    ck_conv_set_weight_cache_limit(one);
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w3, 7001, b, y), "wc lower 1");
    report("lowered limit: 7001 out", relerr(y, ryb, ny));
    /* That call cached 7001 (w3 values) and evicted 7002 on publishing. */
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, 7001, b, y), "wc lower 2");
    report("7001 cached again", relerr(y, ryb, ny)); /* stale w3 */
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, 7002, b, y), "wc lower 3");
    report("publish evicted 7002", relerr(y, ry, ny)); /* re-read w */
    ck_conv_set_weight_cache_limit(0); /* disabled: keys act like 0 */
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, 7002, b, y), "wc limit 0");
    report("limit 0, key 7002", relerr(y, ry, ny)); /* w, not the cached w3 */
    ck_conv_set_weight_cache_limit((size_t)2048 << 20);

    free(x); free(w); free(b); free(dy); free(w2); free(w3); free(y); free(y3);
    free(dx); free(yold); free(dxold); free(ry); free(rdx); free(rdw);
    free(rdb); free(ryb);
}

/* Two threads, different shapes, repeated, odd iterations with a weight
 * key: results must match a single-threaded run bit for bit. A third thread
 * keeps forgetting those keys meanwhile (refcounted entries must survive). */
typedef struct { ck_conv_shape s; float *x, *w, *b, *y, *yref; int bad; uint64_t key; } job_t;
static volatile int jobs_running;
static void *job_run(void *arg) {
    job_t *j = arg;
    size_t ny = (size_t)j->s.n * j->s.o * j->s.oh * j->s.ow;
    for (int it = 0; it < 200; it++) {
        if (ck_conv2d_forward(&j->s, j->x, j->w, it % 2 ? j->key : 0, j->b, j->y) ||
            memcmp(j->y, j->yref, ny * 4) != 0)
            j->bad++;
    }
    __atomic_sub_fetch(&jobs_running, 1, __ATOMIC_SEQ_CST);
    return NULL;
}
static void *forget_run(void *arg) {
    (void)arg;
    while (__atomic_load_n(&jobs_running, __ATOMIC_SEQ_CST) > 0) {
        ck_conv_forget_weights(501);
        ck_conv_forget_weights(502);
    }
    return NULL;
}
static void check_threads(void) {
    job_t j[2] = {{.s = mk(1, 32, 20, 20, 48, 3, 1, 1), .key = 501},
                  {.s = mk(2, 24, 17, 13, 16, 3, 2, 1), .key = 502}};
    for (int i = 0; i < 2; i++) {
        ck_conv_shape *s = &j[i].s;
        size_t nx = (size_t)s->n * s->c * s->h * s->w;
        size_t ny = (size_t)s->n * s->o * s->oh * s->ow;
        j[i].x = rand_buf(nx);
        j[i].w = rand_buf((size_t)s->o * s->c * s->k * s->k);
        j[i].b = rand_buf(s->o);
        j[i].y = malloc(ny * 4);
        j[i].yref = malloc(ny * 4);
        must(ck_conv2d_forward(s, j[i].x, j[i].w, 0, j[i].b, j[i].yref), "thread ref");
    }
    pthread_t t[3];
    jobs_running = 2;
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, job_run, &j[i]);
    pthread_create(&t[2], NULL, forget_run, NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    int bad = j[0].bad + j[1].bad;
    printf("two threads x 200 calls (keys, 3rd thread forgetting): %s\n",
           bad ? "FAIL" : "ok");
    failures += bad != 0;
    for (int i = 0; i < 2; i++) {
        free(j[i].x); free(j[i].w); free(j[i].b); free(j[i].y); free(j[i].yref);
    }
}

static void check_errors(void) {
    ck_conv_shape s = mk(1, 4, 8, 8, 4, 3, 1, 1);
    s.oh = 7; /* inconsistent */
    float buf[1024] = {0};
    int rc = ck_conv2d_forward(&s, buf, buf, 1, NULL, buf);
    printf("bad oh: rc=%d msg=\"%s\" %s\n", rc, ck_conv_last_error(),
           rc ? "ok" : "FAIL");
    failures += rc == 0;
    s = mk(1, 4, 8, 8, 4, 3, 1, 1);
    rc = ck_conv2d_backward_data(&s, NULL, buf, 1, buf);
    printf("NULL dy: rc=%d msg=\"%s\" %s\n", rc, ck_conv_last_error(),
           rc ? "ok" : "FAIL");
    failures += rc == 0;
}

/* ------------------------------------------------------------ benchmark */

#define NREP 7
static double best(const double *t, int n) {
    double b = t[0];
    for (int i = 1; i < n; i++) if (t[i] < b) b = t[i];
    return b;
}

static double time_exec(dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args) {
    double t0 = now();
    D(dnnl_primitive_execute(p, strm, nargs, args));
    D(dnnl_stream_wait(strm));
    return now() - t0;
}

static double time_call(const ck_conv_shape *s, const float *x, const float *w,
                        uint64_t key, const float *b, float *y) {
    double t0 = now();
    must(ck_conv2d_forward(s, x, w, key, b, y), "bench");
    return now() - t0;
}

/* Key 0, cached key, the bare convolution on blocked buffers and the
 * weights reorder alone (primitive rebuilt here with the same descs as
 * dnnl.c), interleaved round by round so that VM noise hits all four
 * alike; best of NREP rounds after 2 warm-up rounds. */
static void bench(ck_conv_shape s) {
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.o * s.oh * s.ow;
    size_t nw = (size_t)s.o * s.c * s.k * s.k;
    double flop = 2.0 * s.n * s.o * s.c * s.k * s.k * s.oh * s.ow;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(s.o);
    float *y0 = malloc(ny * 4), *y1 = malloc(ny * 4);
    uint64_t key = next_key++;

    dnnl_dims_t xd = {s.n, s.c, s.h, s.w}, wd = {s.o, s.c, s.k, s.k},
                yd = {s.n, s.o, s.oh, s.ow}, bd = {s.o};
    dnnl_dims_t st = {s.stride, s.stride}, pad = {s.pad, s.pad};
    dnnl_memory_desc_t xu, wu, xa, wa, ya, bm;
    D(dnnl_memory_desc_init_by_tag(&xu, 4, xd, dnnl_f32, dnnl_nchw));
    D(dnnl_memory_desc_init_by_tag(&wu, 4, wd, dnnl_f32, dnnl_oihw));
    D(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&wa, 4, wd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&bm, 1, bd, dnnl_f32, dnnl_a));
    dnnl_convolution_desc_t cd;
    D(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                         dnnl_convolution_direct, &xa, &wa,
                                         &bm, &ya, st, pad, pad));
    dnnl_primitive_desc_t pd, rpd;
    D(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const char *impl = "?";
    D(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    dnnl_memory_desc_t xb = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    dnnl_memory_desc_t wb = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t yb = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_primitive_t conv, rw, rx;
    D(dnnl_primitive_create(&conv, pd));
    dnnl_memory_t mxu, mwu, mxb, mwb, myb, mb;
    D(dnnl_memory_create(&mxu, &xu, eng, x));
    D(dnnl_memory_create(&mwu, &wu, eng, w));
    D(dnnl_memory_create(&mb, &bm, eng, b));
    D(dnnl_memory_create(&mxb, &xb, eng, DNNL_MEMORY_ALLOCATE));
    D(dnnl_memory_create(&mwb, &wb, eng, DNNL_MEMORY_ALLOCATE));
    D(dnnl_memory_create(&myb, &yb, eng, DNNL_MEMORY_ALLOCATE));
    D(dnnl_reorder_primitive_desc_create(&rpd, &wu, eng, &wb, eng, NULL));
    D(dnnl_primitive_create(&rw, rpd));
    dnnl_primitive_desc_destroy(rpd);
    D(dnnl_reorder_primitive_desc_create(&rpd, &xu, eng, &xb, eng, NULL));
    D(dnnl_primitive_create(&rx, rpd));
    dnnl_primitive_desc_destroy(rpd);
    dnnl_exec_arg_t aw[2] = {{DNNL_ARG_FROM, mwu}, {DNNL_ARG_TO, mwb}};
    dnnl_exec_arg_t ax[2] = {{DNNL_ARG_FROM, mxu}, {DNNL_ARG_TO, mxb}};
    dnnl_exec_arg_t ac[4] = {{DNNL_ARG_SRC, mxb}, {DNNL_ARG_WEIGHTS, mwb},
                             {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, myb}};
    (void)time_exec(rx, 2, ax); /* real data in the blocked src */

    double t0[NREP], t1[NREP], tc[NREP], tw[NREP];
    for (int r = -2; r < NREP; r++) {
        double a = time_call(&s, x, w, 0, b, y0);
        double c = time_call(&s, x, w, key, b, y1);
        double d = time_exec(rw, 2, aw);
        double e = time_exec(conv, 4, ac);
        if (r < 0) continue;
        t0[r] = a; t1[r] = c; tw[r] = d; tc[r] = e;
    }
    double b0 = best(t0, NREP), b1 = best(t1, NREP), bc = best(tc, NREP),
           bw = best(tw, NREP);
    int same = memcmp(y0, y1, ny * 4) == 0;
    if (!same) failures++;
    printf("%2d %5d %3dx%-3d %5d | %7.2f %6.1f | %7.2f %6.1f | %5.2fx | %6.1f %5.0f%% | %6.2f | %s%s\n",
           s.n, s.c, s.h, s.w, s.o, b0 * 1e3, flop / b0 * 1e-9, b1 * 1e3,
           flop / b1 * 1e-9, b0 / b1, flop / bc * 1e-9, 100.0 * bc / b1,
           bw * 1e3, impl, same ? "" : "  RESULTS DIFFER (FAIL)");

    dnnl_primitive_destroy(rw); dnnl_primitive_destroy(rx);
    dnnl_primitive_destroy(conv);
    dnnl_memory_destroy(mxu); dnnl_memory_destroy(mwu); dnnl_memory_destroy(mxb);
    dnnl_memory_destroy(mwb); dnnl_memory_destroy(myb); dnnl_memory_destroy(mb);
    dnnl_primitive_desc_destroy(pd);
    ck_conv_forget_weights(key);
    free(x); free(w); free(b); free(y0); free(y1);
}

/* LRU thrash: nk distinct weight keys cycled A,B,C,A,B,C,... with the cache
 * limit at about nk-1 copies: every lookup misses. Compares with key 0. */
static void bench_thrash(ck_conv_shape s, int nk) {
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.o * s.oh * s.ow;
    size_t nw = (size_t)s.o * s.c * s.k * s.k;
    double flop = 2.0 * s.n * s.o * s.c * s.k * s.k * s.oh * s.ow;
    float *x = rand_buf(nx), *y = malloc(ny * 4), *b = rand_buf(s.o);
    float *w[8];
    for (int i = 0; i < nk; i++) w[i] = rand_buf(nw);
    ck_conv_set_weight_cache_limit((size_t)(nk - 1) * nw * 4 + nw * 2);
    double t[2][NREP * 8];
    int n = 0;
    for (int r = -1; r < NREP; r++)
        for (int i = 0; i < nk; i++) {
            double a = time_call(&s, x, w[i], 0, b, y);
            double c = time_call(&s, x, w[i], 9000 + i, b, y);
            if (r >= 0) { t[0][n] = a; t[1][n] = c; n++; }
        }
    double tk[2] = {best(t[0], n), best(t[1], n)};
    printf("%2d %5d %3dx%-3d %5d, %d keys, limit %zu MB: key 0 %.2f ms %.1f GF, "
           "thrashing key %.2f ms %.1f GF\n", s.n, s.c, s.h, s.w, s.o, nk,
           ((size_t)(nk - 1) * nw * 4 + nw * 2) >> 20, tk[0] * 1e3,
           flop / tk[0] * 1e-9, tk[1] * 1e3, flop / tk[1] * 1e-9);
    ck_conv_set_weight_cache_limit((size_t)2048 << 20);
    for (int i = 0; i < nk; i++) { ck_conv_forget_weights(9000 + i); free(w[i]); }
    free(x); free(y); free(b);
}

int main(int argc, char **argv) {
    int bench_too = !(argc > 1 && strcmp(argv[1], "check") == 0);
    ck_omp_set_threads(2);
    D(dnnl_engine_create(&eng, dnnl_cpu, 0));
    D(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));

    ck_conv_shape shapes[] = {mk(2, 4, 7, 6, 5, 3, 1, 1), mk(2, 4, 8, 7, 3, 3, 2, 1),
                              mk(2, 6, 5, 5, 4, 1, 1, 0), mk(1, 16, 9, 9, 8, 3, 2, 1),
                              /* extra: channels past one 8/16 block, odd sizes */
                              mk(2, 20, 11, 9, 33, 3, 1, 1), mk(1, 40, 10, 10, 24, 1, 2, 0)};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_shape(shapes[i]);
    /* Thread count is part of the cache key: 1 thread must work too. */
    printf("-- 1 thread:\n");
    ck_omp_set_threads(1);
    check_shape(shapes[4]);
    ck_omp_set_threads(2);
    check_weight_cache();

    /* Cache: second call with the same shape must not create primitives. */
    {
        ck_conv_shape s = mk(1, 64, 24, 24, 64, 3, 1, 1);
        size_t nx = 64 * 24 * 24, nw = 64 * 64 * 9;
        float *x = rand_buf(nx), *w = rand_buf(nw), *y = malloc(nx * 4);
        double t0 = now();
        must(ck_conv2d_forward(&s, x, w, 0, NULL, y), "cache 1");
        double t1 = now();
        must(ck_conv2d_forward(&s, x, w, 0, NULL, y), "cache 2");
        double t2 = now();
        printf("cache: first call %.2f ms, second %.2f ms\n", (t1 - t0) * 1e3,
               (t2 - t1) * 1e3);
        free(x); free(w); free(y);
    }
    check_errors();
    check_threads();
    printf("correctness: %s (%d failure%s)\n", failures ? "FAIL" : "PASS",
           failures, failures == 1 ? "" : "s");
    if (!bench_too) {
        dnnl_stream_destroy(strm);
        dnnl_engine_destroy(eng);
        ck_conv_cache_clear();
        return failures != 0;
    }
    printf("\nforward 3x3 s1 p1, 2 threads, best of %d after warm-up (ms; GFLOP/s)\n", NREP);
    printf(" N     C  HxW      O |  key 0 ms     GF | cached ms     GF | speed | bare GF  b/cac | rw ms  | impl\n");
    ck_conv_shape b[] = {mk(2, 1280, 16, 16, 1280, 3, 1, 1), mk(2, 1280, 8, 8, 1280, 3, 1, 1),
                         mk(2, 320, 64, 64, 320, 3, 1, 1), mk(2, 640, 32, 32, 640, 3, 1, 1)};
    for (size_t i = 0; i < sizeof b / sizeof *b; i++) bench(b[i]);
    printf("\nLRU thrash (cache smaller than the weights cycled through)\n");
    bench_thrash(mk(2, 1280, 8, 8, 1280, 3, 1, 1), 3);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    ck_conv_cache_clear();
    return failures != 0;
}
