/*
 * conv_dnnl_check.c - standalone check + benchmark for Sources/CKernels/conv_dnnl.c
 *
 * Build (from the repo root):
 *   gcc -O2 -I Sources/CKernels/include Sources/CKernels/conv_dnnl.c \
 *       scripts/dev/conv_dnnl_check.c -ldnnl -lm -lpthread -o /tmp/convcheck
 * Run:
 *   /tmp/convcheck            correctness + benchmark
 *   /tmp/convcheck check      correctness only
 *   DNNL_MAX_CPU_ISA=AVX2 /tmp/convcheck   emulate an AVX2-only CPU
 *   DNNL_VERBOSE=1 ...        show the implementation / layouts oneDNN picks
 *
 * Correctness: forward (with and without bias), backward-data and
 * backward-weights (with and without db) against naive double-precision
 * loops; error = max|got - ref| / max|ref| per tensor, must be < 1e-5.
 * Also: cache hit timing, bad-shape error path, two threads at once.
 *
 * Benchmark: forward on SD-like 3x3 shapes, 2 threads, median of 5 after a
 * warm-up, GFLOP/s = 2*N*O*C*k*k*OH*OW / s. "api" is ck_conv2d_forward
 * (reorders included); the breakdown rebuilds the same oneDNN primitive here
 * and times the reorders and the bare convolution separately.
 */
#define _GNU_SOURCE
#include "conv_dnnl.h"

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

    memset(y, 0xff, ny * 4); /* NaN garbage: outputs must be overwritten */
    must(ck_conv2d_forward(&s, x, w, b, y), "forward+bias");
    report("forward (bias)", relerr(y, ry, ny));
    memset(y, 0xff, ny * 4);
    must(ck_conv2d_forward(&s, x, w, NULL, y), "forward");
    report("forward (no bias)", relerr(y, ry0, ny));
    memset(dx, 0xff, nx * 4);
    must(ck_conv2d_backward_data(&s, dy, w, dx), "backward_data");
    report("backward-data", relerr(dx, rdx, nx));
    memset(dw, 0xff, nw * 4);
    memset(db, 0xff, s.o * 4);
    must(ck_conv2d_backward_weights(&s, x, dy, dw, db), "backward_weights+db");
    report("backward-weights dw", relerr(dw, rdw, nw));
    report("backward-weights db", relerr(db, rdb, s.o));
    memset(dw, 0xff, nw * 4);
    must(ck_conv2d_backward_weights(&s, x, dy, dw, NULL), "backward_weights");
    report("backward-weights (no db)", relerr(dw, rdw, nw));

    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
    free(ry); free(rdx); free(rdw); free(rdb); free(ry0);
}

/* Two threads, different shapes, repeated: results must match a
 * single-threaded run bit for bit. */
typedef struct { ck_conv_shape s; float *x, *w, *b, *y, *yref; int bad; } job_t;
static void *job_run(void *arg) {
    job_t *j = arg;
    size_t ny = (size_t)j->s.n * j->s.o * j->s.oh * j->s.ow;
    for (int it = 0; it < 20; it++) {
        if (ck_conv2d_forward(&j->s, j->x, j->w, j->b, j->y) ||
            memcmp(j->y, j->yref, ny * 4) != 0)
            j->bad++;
    }
    return NULL;
}
static void check_threads(void) {
    job_t j[2] = {{.s = mk(1, 32, 20, 20, 48, 3, 1, 1)},
                  {.s = mk(2, 24, 17, 13, 16, 3, 2, 1)}};
    for (int i = 0; i < 2; i++) {
        ck_conv_shape *s = &j[i].s;
        size_t nx = (size_t)s->n * s->c * s->h * s->w;
        size_t ny = (size_t)s->n * s->o * s->oh * s->ow;
        j[i].x = rand_buf(nx);
        j[i].w = rand_buf((size_t)s->o * s->c * s->k * s->k);
        j[i].b = rand_buf(s->o);
        j[i].y = malloc(ny * 4);
        j[i].yref = malloc(ny * 4);
        must(ck_conv2d_forward(s, j[i].x, j[i].w, j[i].b, j[i].yref), "thread ref");
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, job_run, &j[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    int bad = j[0].bad + j[1].bad;
    printf("two threads x 20 calls, different shapes: %s\n", bad ? "FAIL" : "ok");
    failures += bad != 0;
    for (int i = 0; i < 2; i++) {
        free(j[i].x); free(j[i].w); free(j[i].b); free(j[i].y); free(j[i].yref);
    }
}

static void check_errors(void) {
    ck_conv_shape s = mk(1, 4, 8, 8, 4, 3, 1, 1);
    s.oh = 7; /* inconsistent */
    float buf[1024] = {0};
    int rc = ck_conv2d_forward(&s, buf, buf, NULL, buf);
    printf("bad oh: rc=%d msg=\"%s\" %s\n", rc, ck_conv_last_error(),
           rc ? "ok" : "FAIL");
    failures += rc == 0;
    s = mk(1, 4, 8, 8, 4, 3, 1, 1);
    rc = ck_conv2d_backward_data(&s, NULL, buf, buf);
    printf("NULL dy: rc=%d msg=\"%s\" %s\n", rc, ck_conv_last_error(),
           rc ? "ok" : "FAIL");
    failures += rc == 0;
}

/* ------------------------------------------------------------ benchmark */

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median5(double *t) { qsort(t, 5, sizeof *t, cmpd); return t[2]; }

#define D(call)                                                          \
    do {                                                                 \
        dnnl_status_t st_ = (call);                                      \
        if (st_) { printf("dnnl error %d at %s\n", st_, #call); exit(1); } \
    } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t strm;

/* Times one reorder (median of 5 after warm-up); returns seconds. */
static double time_prim(dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args) {
    double t[5];
    D(dnnl_primitive_execute(p, strm, nargs, args));
    D(dnnl_stream_wait(strm));
    for (int i = 0; i < 5; i++) {
        double t0 = now();
        D(dnnl_primitive_execute(p, strm, nargs, args));
        D(dnnl_stream_wait(strm));
        t[i] = now() - t0;
    }
    return median5(t);
}

static dnnl_primitive_t mk_reorder(const dnnl_memory_desc_t *a,
                                   const dnnl_memory_desc_t *b) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    D(dnnl_reorder_primitive_desc_create(&pd, a, eng, b, eng, NULL));
    D(dnnl_primitive_create(&p, pd));
    dnnl_primitive_desc_destroy(pd);
    return p;
}

static void bench(ck_conv_shape s) {
    size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.o * s.oh * s.ow;
    size_t nw = (size_t)s.o * s.c * s.k * s.k;
    double flop = 2.0 * s.n * s.o * s.c * s.k * s.k * s.oh * s.ow;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(s.o);
    float *y = malloc(ny * 4);

    double t0 = now();
    must(ck_conv2d_forward(&s, x, w, b, y), "bench first call");
    double tfirst = now() - t0;
    double t[5];
    for (int i = 0; i < 5; i++) {
        t0 = now();
        must(ck_conv2d_forward(&s, x, w, b, y), "bench");
        t[i] = now() - t0;
    }
    double tapi = median5(t);

    /* Same primitive, built here, to time its parts. */
    dnnl_dims_t xd = {s.n, s.c, s.h, s.w}, wd = {s.o, s.c, s.k, s.k},
                yd = {s.n, s.o, s.oh, s.ow}, bd = {s.o};
    dnnl_dims_t st = {s.stride, s.stride}, pad = {s.pad, s.pad};
    dnnl_memory_desc_t xu, wu, yu, xa, wa, ya, bm;
    D(dnnl_memory_desc_init_by_tag(&xu, 4, xd, dnnl_f32, dnnl_nchw));
    D(dnnl_memory_desc_init_by_tag(&wu, 4, wd, dnnl_f32, dnnl_oihw));
    D(dnnl_memory_desc_init_by_tag(&yu, 4, yd, dnnl_f32, dnnl_nchw));
    D(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&wa, 4, wd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any));
    D(dnnl_memory_desc_init_by_tag(&bm, 1, bd, dnnl_f32, dnnl_a));
    dnnl_convolution_desc_t cd;
    D(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                         dnnl_convolution_direct, &xa, &wa,
                                         &bm, &ya, st, pad, pad));
    dnnl_primitive_desc_t pd;
    D(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const char *impl = "?";
    D(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    dnnl_memory_desc_t xb = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    dnnl_memory_desc_t wb = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t yb = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_primitive_t conv;
    D(dnnl_primitive_create(&conv, pd));
    dnnl_memory_t mxu, mwu, myu, mxb, mwb, myb, mb;
    D(dnnl_memory_create(&mxu, &xu, eng, x));
    D(dnnl_memory_create(&mwu, &wu, eng, w));
    D(dnnl_memory_create(&myu, &yu, eng, y));
    D(dnnl_memory_create(&mb, &bm, eng, b));
    D(dnnl_memory_create(&mxb, &xb, eng, DNNL_MEMORY_ALLOCATE));
    D(dnnl_memory_create(&mwb, &wb, eng, DNNL_MEMORY_ALLOCATE));
    D(dnnl_memory_create(&myb, &yb, eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_t rx = mk_reorder(&xu, &xb), rw = mk_reorder(&wu, &wb),
                     ry = mk_reorder(&yb, &yu);
    dnnl_exec_arg_t ax[2] = {{DNNL_ARG_FROM, mxu}, {DNNL_ARG_TO, mxb}};
    dnnl_exec_arg_t aw[2] = {{DNNL_ARG_FROM, mwu}, {DNNL_ARG_TO, mwb}};
    dnnl_exec_arg_t ay[2] = {{DNNL_ARG_FROM, myb}, {DNNL_ARG_TO, myu}};
    double trx = time_prim(rx, 2, ax), trw = time_prim(rw, 2, aw);
    dnnl_exec_arg_t ac[4] = {{DNNL_ARG_SRC, mxb}, {DNNL_ARG_WEIGHTS, mwb},
                             {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, myb}};
    double tconv = time_prim(conv, 4, ac);
    double try_ = time_prim(ry, 2, ay);

    printf("%4d %5d %4dx%-4d %5d | %7.2f %7.1f | %7.1f %7.2f | %6.2f %6.2f %6.2f | %5.1f%% | %6.0f | %s\n",
           s.n, s.c, s.h, s.w, s.o, tapi * 1e3, flop / tapi * 1e-9,
           flop / tconv * 1e-9, tconv * 1e3, trx * 1e3, trw * 1e3, try_ * 1e3,
           100.0 * (trx + trw + try_) / tapi, tfirst * 1e3, impl);

    dnnl_primitive_destroy(rx); dnnl_primitive_destroy(rw);
    dnnl_primitive_destroy(ry); dnnl_primitive_destroy(conv);
    dnnl_memory_destroy(mxu); dnnl_memory_destroy(mwu); dnnl_memory_destroy(myu);
    dnnl_memory_destroy(mxb); dnnl_memory_destroy(mwb); dnnl_memory_destroy(myb);
    dnnl_memory_destroy(mb);
    dnnl_primitive_desc_destroy(pd);
    free(x); free(w); free(b); free(y);
}

int main(int argc, char **argv) {
    int bench_too = !(argc > 1 && strcmp(argv[1], "check") == 0);
    ck_conv_set_threads(2);

    ck_conv_shape shapes[] = {mk(2, 4, 7, 6, 5, 3, 1, 1), mk(2, 4, 8, 7, 3, 3, 2, 1),
                              mk(2, 6, 5, 5, 4, 1, 1, 0), mk(1, 16, 9, 9, 8, 3, 2, 1),
                              /* extra: channels past one 8/16 block, odd sizes */
                              mk(2, 20, 11, 9, 33, 3, 1, 1), mk(1, 40, 10, 10, 24, 1, 2, 0)};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_shape(shapes[i]);
    /* Thread count is part of the cache key: 1 thread must work too. */
    printf("-- 1 thread:\n");
    ck_conv_set_threads(1);
    check_shape(shapes[4]);
    ck_conv_set_threads(2);

    /* Cache: second call with the same shape must not create primitives. */
    {
        ck_conv_shape s = mk(1, 64, 24, 24, 64, 3, 1, 1);
        size_t nx = 64 * 24 * 24, nw = 64 * 64 * 9;
        float *x = rand_buf(nx), *w = rand_buf(nw), *y = malloc(nx * 4);
        double t0 = now();
        must(ck_conv2d_forward(&s, x, w, NULL, y), "cache 1");
        double t1 = now();
        must(ck_conv2d_forward(&s, x, w, NULL, y), "cache 2");
        double t2 = now();
        printf("cache: first call %.2f ms, second %.2f ms\n", (t1 - t0) * 1e3,
               (t2 - t1) * 1e3);
        free(x); free(w); free(y);
    }
    check_errors();
    check_threads();
    printf("correctness: %s (%d failure%s)\n", failures ? "FAIL" : "PASS",
           failures, failures == 1 ? "" : "s");
    if (!bench_too) { ck_conv_cache_clear(); return failures != 0; }

    D(dnnl_engine_create(&eng, dnnl_cpu, 0));
    D(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    printf("\nforward 3x3 s1 p1, 2 threads, median of 5 (ms; GFLOP/s)\n");
    printf("   N     C    HxW       O |  api ms  api GF | conv GF conv ms | rx ms  rw ms  ry ms | reord | 1st ms | impl\n");
    ck_conv_shape b[] = {mk(1, 320, 64, 64, 320, 3, 1, 1), mk(1, 640, 32, 32, 640, 3, 1, 1),
                         mk(1, 1280, 16, 16, 1280, 3, 1, 1), mk(1, 1280, 8, 8, 1280, 3, 1, 1),
                         mk(1, 512, 128, 128, 512, 3, 1, 1), mk(2, 320, 32, 32, 320, 3, 1, 1)};
    for (size_t i = 0; i < sizeof b / sizeof *b; i++) bench(b[i]);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    ck_conv_cache_clear();
    return failures != 0;
}
