/*
 * conv_dnnl.c - 2-D float32 convolution through oneDNN 2.6 (C API).
 *
 * Why oneDNN: its JIT "direct" convolution in the blocked channel layout
 * (nChw8c on AVX2, nChw16c on AVX-512) runs close to FMA peak. On the 2-vCPU
 * Zen1 target (AVX2/FMA) direct conv was measured at 76-78 GFLOP/s on 2
 * threads, ~95% of FMA peak, for Stable Diffusion 3x3 shapes. (On a 2-vCPU
 * AVX-512 Xeon dev VM the bare primitive reached ~330 GFLOP/s, and ~175 with
 * DNNL_MAX_CPU_ISA=AVX2.)
 * scripts/dev/conv_dnnl_check.c checks correctness and prints GFLOP/s.
 *
 * Design
 *  - The caller's tensors are plain nchw / oihw. Every primitive is created
 *    with dnnl_format_tag_any so oneDNN picks its fast (blocked) layout; the
 *    user buffers are reordered into / out of that layout around the
 *    convolution. A reorder is skipped when the chosen layout equals the
 *    plain one (e.g. small-C input tensors often stay nchw).
 *  - One global CPU engine and one stream, created lazily (pthread_once).
 *    CPU streams execute synchronously in the calling thread, so sharing the
 *    stream between threads is fine.
 *  - Primitives (and their reorders) are cached in a linked list keyed by
 *    (kind, shape, has_bias, OpenMP thread count), guarded by a pthread
 *    mutex. A repeated call with the same key creates no primitive. The
 *    thread count is part of the key because oneDNN's JIT kernels fix their
 *    work split (jcp.nthr) at primitive-descriptor creation time.
 *  - Buffers: each call needs one work block (64-byte aligned) holding the
 *    blocked copies of its tensors plus the scratchpad (primitives use
 *    dnnl_scratchpad_mode_user, so no oneDNN-internal scratchpad). A call
 *    takes a block EXCLUSIVELY from a small pool (smallest block that is big
 *    enough, else a fresh posix_memalign) and gives it back when done, so
 *    concurrent calls never share memory. The pool holds at most
 *    CK_POOL_SLOTS blocks and CK_POOL_CAP_MB MiB in total (env
 *    CK_CONV_POOL_MB overrides, 0 = no pool: allocate and free per call);
 *    beyond that the smallest blocks are freed. Why a pool: blocks of tens
 *    of MB come from mmap, and re-faulting them on every call cost up to
 *    ~12 ms per call (as much as the convolution itself for 1280ch @ 8x8).
 *    ck_conv_cache_clear() frees the pool and the primitives; nothing else
 *    is retained, so there is nothing to leak.
 *  - Errors never abort: the dnnl status is returned and a thread-local
 *    message naming the op and shape is kept for ck_conv_last_error().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include "conv_dnnl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#include <dnnl_debug.h>

enum { CK_FWD = 0, CK_BWD_DATA = 1, CK_BWD_WEIGHTS = 2 };

static const char *const ck_op_name[3] = {
    "ck_conv2d_forward", "ck_conv2d_backward_data",
    "ck_conv2d_backward_weights"};

/* One large tensor argument of a convolution primitive. */
typedef struct {
    int arg;                     /* DNNL_ARG_* as the primitive sees it */
    int is_output;               /* reorder direction: prim -> user */
    dnnl_memory_desc_t user_md;  /* plain nchw / oihw */
    dnnl_memory_desc_t prim_md;  /* layout chosen by the primitive */
    dnnl_primitive_t reorder;    /* NULL when prim_md == user_md */
    dnnl_memory_desc_t reorder_scratch_md;
    size_t reorder_scratch_bytes;
    size_t prim_bytes;           /* size of the blocked copy (if reorder) */
} ck_tensor;

/* A cached convolution: primitive plus the reorders around it. */
typedef struct ck_entry {
    struct ck_entry *next;
    int kind, has_bias, nthr;
    ck_conv_shape s;
    /* forward_training pd used as hint for backward primitives. oneDNN 2.x
     * backward pds keep a raw pointer to the hint, so it lives as long as
     * the entry. NULL for forward. */
    dnnl_primitive_desc_t hint_pd;
    dnnl_primitive_t prim;
    ck_tensor t[3];
    dnnl_memory_desc_t bias_md;  /* plain 'a' (x) layout, O elements */
    dnnl_memory_desc_t scratch_md;
    size_t scratch_bytes;
    size_t scratch_max;          /* max over conv + reorder scratchpads */
} ck_entry;

/* ---------------------------------------------------------------- state */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ck_entry *g_cache = NULL;

static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_engine = NULL;
static dnnl_stream_t g_stream = NULL;
static dnnl_status_t g_engine_status = dnnl_success;

static __thread char g_err[384];

/* Work-block pool (see file header). Guarded by g_pool_lock. */
#define CK_POOL_SLOTS 8
#define CK_POOL_CAP_MB 512
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { void *p; size_t n; } g_pool[CK_POOL_SLOTS];
static size_t g_pool_bytes = 0;
static size_t g_pool_cap = (size_t)-1; /* resolved on first use */

/* OpenMP entry points, resolved at run time from the libgomp that libdnnl
 * already loads. This avoids needing <omp.h> / -fopenmp / -lgomp in the
 * SwiftPM target (clang from the Swift toolchain ships no omp.h). */
static pthread_once_t g_omp_once = PTHREAD_ONCE_INIT;
static void (*p_omp_set_num_threads)(int) = NULL;
static int (*p_omp_get_max_threads)(void) = NULL;
static int g_threads = 0; /* requested thread count, 0 = OpenMP default */
static int g_default_threads = 0;

static void omp_resolve(void) {
    void *f = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    void *g = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    memcpy(&p_omp_set_num_threads, &f, sizeof f);
    memcpy(&p_omp_get_max_threads, &g, sizeof g);
    if (p_omp_get_max_threads) g_default_threads = p_omp_get_max_threads();
}

/* Applies the requested thread count to the calling thread (OpenMP's
 * nthreads-var is per thread, so ck_conv_set_threads on one thread would
 * not reach others by itself) and returns the count oneDNN will use. */
static int apply_threads(void) {
    pthread_once(&g_omp_once, omp_resolve);
    if (!p_omp_get_max_threads) return 0;
    int want = __atomic_load_n(&g_threads, __ATOMIC_RELAXED);
    if (want <= 0) want = g_default_threads;
    if (want > 0 && p_omp_set_num_threads && p_omp_get_max_threads() != want)
        p_omp_set_num_threads(want);
    return p_omp_get_max_threads();
}

/** Sets oneDNN's OpenMP thread count for subsequent calls on all threads. */
void ck_conv_set_threads(int n) {
    __atomic_store_n(&g_threads, n > 0 ? n : 0, __ATOMIC_RELAXED);
    (void)apply_threads();
}

static void engine_init(void) {
    g_engine_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
    if (g_engine_status != dnnl_success) { g_engine = NULL; return; }
    g_engine_status =
        dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
    if (g_engine_status != dnnl_success) {
        dnnl_engine_destroy(g_engine);
        g_engine = NULL;
        g_stream = NULL;
    }
}

/* ---------------------------------------------------------------- errors */

/** Returns the calling thread's last error message ("" if none). */
const char *ck_conv_last_error(void) { return g_err; }

static int fail(int kind, const ck_conv_shape *s, dnnl_status_t st,
                const char *fmt, ...) {
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (s)
        snprintf(g_err, sizeof g_err,
                 "%s(n=%d c=%d h=%d w=%d o=%d k=%d stride=%d pad=%d oh=%d "
                 "ow=%d): %s: %s",
                 ck_op_name[kind], s->n, s->c, s->h, s->w, s->o, s->k,
                 s->stride, s->pad, s->oh, s->ow, what, dnnl_status2str(st));
    else
        snprintf(g_err, sizeof g_err, "%s: %s: %s", ck_op_name[kind], what,
                 dnnl_status2str(st));
    return (int)(st == dnnl_success ? dnnl_runtime_error : st);
}

#define CK_TRY(call, what)                                           \
    do {                                                             \
        dnnl_status_t st_ = (call);                                  \
        if (st_ != dnnl_success) {                                   \
            rc = fail(kind, s, st_, "%s", (what));                   \
            goto out;                                                \
        }                                                            \
    } while (0)

static int check_shape(int kind, const ck_conv_shape *s) {
    if (!s) return fail(kind, NULL, dnnl_invalid_arguments, "shape is NULL");
    if (s->n <= 0 || s->c <= 0 || s->h <= 0 || s->w <= 0 || s->o <= 0 ||
        s->k <= 0 || s->stride <= 0 || s->pad < 0)
        return fail(kind, s, dnnl_invalid_arguments,
                    "non-positive dimension, stride or negative pad");
    if (s->h + 2 * s->pad < s->k || s->w + 2 * s->pad < s->k)
        return fail(kind, s, dnnl_invalid_arguments,
                    "kernel larger than padded input");
    int eh = (s->h + 2 * s->pad - s->k) / s->stride + 1;
    int ew = (s->w + 2 * s->pad - s->k) / s->stride + 1;
    if (s->oh != eh || s->ow != ew)
        return fail(kind, s, dnnl_invalid_arguments,
                    "oh/ow inconsistent, expected oh=%d ow=%d", eh, ew);
    return 0;
}

/* ---------------------------------------------------------------- cache */

static void entry_free(ck_entry *e) {
    if (!e) return;
    for (int i = 0; i < 3; i++)
        if (e->t[i].reorder) dnnl_primitive_destroy(e->t[i].reorder);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->hint_pd) dnnl_primitive_desc_destroy(e->hint_pd);
    free(e);
}

/** Destroys all cached primitives. Not concurrent-safe with conv calls. */
void ck_conv_cache_clear(void) {
    pthread_mutex_lock(&g_pool_lock);
    for (int i = 0; i < CK_POOL_SLOTS; i++) {
        free(g_pool[i].p);
        g_pool[i].p = NULL;
        g_pool[i].n = 0;
    }
    g_pool_bytes = 0;
    pthread_mutex_unlock(&g_pool_lock);
    pthread_mutex_lock(&g_lock);
    ck_entry *e = g_cache;
    g_cache = NULL;
    pthread_mutex_unlock(&g_lock);
    while (e) {
        ck_entry *nx = e->next;
        entry_free(e);
        e = nx;
    }
}

/* dims is a full dnnl_dims_t (12 entries): the 2.6 prototype takes the
 * array type, and GCC's -Wstringop-overread flags shorter arrays. */
static dnnl_status_t md_plain(dnnl_memory_desc_t *md, int nd,
                              const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, tag);
}

static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Fills one tensor slot from the primitive descriptor and, when the chosen
 * layout differs from the plain one, creates the reorder primitive. */
static dnnl_status_t tensor_init(ck_tensor *t, const_dnnl_primitive_desc_t pd,
                                 int arg, int is_output,
                                 const dnnl_memory_desc_t *user_md,
                                 const_dnnl_primitive_attr_t attr) {
    t->arg = arg;
    t->is_output = is_output;
    t->user_md = *user_md;
    const dnnl_memory_desc_t *pmd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!pmd) return dnnl_runtime_error;
    t->prim_md = *pmd;
    if (dnnl_memory_desc_equal(&t->user_md, &t->prim_md)) return dnnl_success;

    t->prim_bytes = dnnl_memory_desc_get_size(&t->prim_md);
    dnnl_primitive_desc_t rpd = NULL;
    const dnnl_memory_desc_t *from = is_output ? &t->prim_md : &t->user_md;
    const dnnl_memory_desc_t *to = is_output ? &t->user_md : &t->prim_md;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(
        &rpd, from, g_engine, to, g_engine, attr);
    if (st != dnnl_success) return st;
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0);
    if (smd) {
        t->reorder_scratch_md = *smd;
        t->reorder_scratch_bytes = dnnl_memory_desc_get_size(smd);
    }
    st = dnnl_primitive_create(&t->reorder, rpd);
    if (st != dnnl_success) t->reorder = NULL;
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

/* Builds a cache entry. Called with g_lock held. Returns 0 or an error. */
static int entry_build(int kind, const ck_conv_shape *s, int has_bias,
                       int nthr, ck_entry **out_e) {
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    ck_entry *e = calloc(1, sizeof *e);
    if (!e) return fail(kind, s, dnnl_out_of_memory, "allocating cache entry");
    e->kind = kind;
    e->has_bias = has_bias;
    e->nthr = nthr;
    e->s = *s;

    const dnnl_dims_t src_dims = {s->n, s->c, s->h, s->w};
    const dnnl_dims_t wei_dims = {s->o, s->c, s->k, s->k};
    const dnnl_dims_t dst_dims = {s->n, s->o, s->oh, s->ow};
    const dnnl_dims_t bias_dims = {s->o};
    const dnnl_dims_t strides = {s->stride, s->stride};
    const dnnl_dims_t padding = {s->pad, s->pad};

    dnnl_memory_desc_t src_user, wei_user, dst_user;
    dnnl_memory_desc_t src_any, wei_any, dst_any;
    CK_TRY(md_plain(&src_user, 4, src_dims, dnnl_nchw), "src memory desc");
    CK_TRY(md_plain(&wei_user, 4, wei_dims, dnnl_oihw), "weights memory desc");
    CK_TRY(md_plain(&dst_user, 4, dst_dims, dnnl_nchw), "dst memory desc");
    CK_TRY(md_plain(&src_any, 4, src_dims, dnnl_format_tag_any), "src any");
    CK_TRY(md_plain(&wei_any, 4, wei_dims, dnnl_format_tag_any), "wei any");
    CK_TRY(md_plain(&dst_any, 4, dst_dims, dnnl_format_tag_any), "dst any");
    CK_TRY(md_plain(&e->bias_md, 1, bias_dims, dnnl_a), "bias memory desc");
    const dnnl_memory_desc_t *bias = has_bias ? &e->bias_md : NULL;

    CK_TRY(dnnl_primitive_attr_create(&attr), "attr create");
    CK_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr,
                                                   dnnl_scratchpad_mode_user),
           "attr scratchpad mode");

    dnnl_convolution_desc_t cd;
    if (kind == CK_FWD) {
        CK_TRY(dnnl_convolution_forward_desc_init(
                   &cd, dnnl_forward_inference, dnnl_convolution_direct,
                   &src_any, &wei_any, bias, &dst_any, strides, padding,
                   padding),
               "forward desc init");
        CK_TRY(dnnl_primitive_desc_create(&pd, &cd, attr, g_engine, NULL),
               "forward primitive desc create");
        CK_TRY(tensor_init(&e->t[0], pd, DNNL_ARG_SRC, 0, &src_user, attr),
               "src reorder");
        CK_TRY(tensor_init(&e->t[1], pd, DNNL_ARG_WEIGHTS, 0, &wei_user, attr),
               "weights reorder");
        CK_TRY(tensor_init(&e->t[2], pd, DNNL_ARG_DST, 1, &dst_user, attr),
               "dst reorder");
    } else {
        /* Backward primitives need a forward_training pd as hint. */
        dnnl_convolution_desc_t fd;
        CK_TRY(dnnl_convolution_forward_desc_init(
                   &fd, dnnl_forward_training, dnnl_convolution_direct,
                   &src_any, &wei_any, bias, &dst_any, strides, padding,
                   padding),
               "forward hint desc init");
        CK_TRY(dnnl_primitive_desc_create(&e->hint_pd, &fd, NULL, g_engine,
                                          NULL),
               "forward hint primitive desc create");
        if (kind == CK_BWD_DATA) {
            CK_TRY(dnnl_convolution_backward_data_desc_init(
                       &cd, dnnl_convolution_direct, &src_any, &wei_any,
                       &dst_any, strides, padding, padding),
                   "backward-data desc init");
            CK_TRY(dnnl_primitive_desc_create(&pd, &cd, attr, g_engine,
                                              e->hint_pd),
                   "backward-data primitive desc create");
            CK_TRY(tensor_init(&e->t[0], pd, DNNL_ARG_DIFF_DST, 0, &dst_user,
                               attr),
                   "diff_dst reorder");
            CK_TRY(tensor_init(&e->t[1], pd, DNNL_ARG_WEIGHTS, 0, &wei_user,
                               attr),
                   "weights reorder");
            CK_TRY(tensor_init(&e->t[2], pd, DNNL_ARG_DIFF_SRC, 1, &src_user,
                               attr),
                   "diff_src reorder");
        } else {
            CK_TRY(dnnl_convolution_backward_weights_desc_init(
                       &cd, dnnl_convolution_direct, &src_any, &wei_any, bias,
                       &dst_any, strides, padding, padding),
                   "backward-weights desc init");
            CK_TRY(dnnl_primitive_desc_create(&pd, &cd, attr, g_engine,
                                              e->hint_pd),
                   "backward-weights primitive desc create");
            CK_TRY(tensor_init(&e->t[0], pd, DNNL_ARG_SRC, 0, &src_user,
                               attr),
                   "src reorder");
            CK_TRY(tensor_init(&e->t[1], pd, DNNL_ARG_DIFF_DST, 0, &dst_user,
                               attr),
                   "diff_dst reorder");
            CK_TRY(tensor_init(&e->t[2], pd, DNNL_ARG_DIFF_WEIGHTS, 1,
                               &wei_user, attr),
                   "diff_weights reorder");
        }
    }

    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smd) {
        e->scratch_md = *smd;
        e->scratch_bytes = dnnl_memory_desc_get_size(smd);
    }
    e->scratch_max = e->scratch_bytes;
    for (int i = 0; i < 3; i++)
        if (e->t[i].reorder_scratch_bytes > e->scratch_max)
            e->scratch_max = e->t[i].reorder_scratch_bytes;

    CK_TRY(dnnl_primitive_create(&e->prim, pd), "primitive create");

out:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc != 0) {
        entry_free(e);
        e = NULL;
    }
    *out_e = e;
    return rc;
}

/* Finds or builds the entry for (kind, shape, has_bias, nthr). */
static int entry_get(int kind, const ck_conv_shape *s, int has_bias,
                     int nthr, ck_entry **out_e) {
    pthread_once(&g_engine_once, engine_init);
    if (!g_engine)
        return fail(kind, s, g_engine_status, "creating CPU engine/stream");

    pthread_mutex_lock(&g_lock);
    ck_entry *e = g_cache;
    for (; e; e = e->next)
        if (e->kind == kind && e->has_bias == has_bias && e->nthr == nthr &&
            memcmp(&e->s, s, sizeof *s) == 0)
            break;
    int rc = 0;
    if (!e) {
        rc = entry_build(kind, s, has_bias, nthr, &e);
        if (rc == 0) {
            e->next = g_cache;
            g_cache = e;
        }
    }
    pthread_mutex_unlock(&g_lock);
    *out_e = e;
    return rc;
}

/* ---------------------------------------------------------------- pool */

static size_t pool_cap(void) { /* g_pool_lock held */
    if (g_pool_cap == (size_t)-1) {
        const char *env = getenv("CK_CONV_POOL_MB");
        long mb = env && *env ? strtol(env, NULL, 10) : CK_POOL_CAP_MB;
        g_pool_cap = mb > 0 ? (size_t)mb << 20 : 0;
    }
    return g_pool_cap;
}

/* Takes a block of at least `need` bytes; *got receives its real size. */
static void *pool_get(size_t need, size_t *got) {
    void *p = NULL;
    pthread_mutex_lock(&g_pool_lock);
    int best = -1;
    for (int i = 0; i < CK_POOL_SLOTS; i++)
        if (g_pool[i].p && g_pool[i].n >= need &&
            (best < 0 || g_pool[i].n < g_pool[best].n))
            best = i;
    if (best >= 0) {
        p = g_pool[best].p;
        *got = g_pool[best].n;
        g_pool_bytes -= g_pool[best].n;
        g_pool[best].p = NULL;
        g_pool[best].n = 0;
    }
    pthread_mutex_unlock(&g_pool_lock);
    if (p) return p;
    if (posix_memalign(&p, 64, need) != 0) return NULL;
    *got = need;
    return p;
}

/* Gives a block back; frees it (or smaller pooled blocks) past the cap. */
static void pool_put(void *p, size_t n) {
    if (!p) return;
    pthread_mutex_lock(&g_pool_lock);
    size_t cap = pool_cap();
    if (n > cap) {
        pthread_mutex_unlock(&g_pool_lock);
        free(p);
        return;
    }
    for (;;) {
        int empty = -1, smallest = -1;
        for (int i = 0; i < CK_POOL_SLOTS; i++) {
            if (!g_pool[i].p) { if (empty < 0) empty = i; continue; }
            if (smallest < 0 || g_pool[i].n < g_pool[smallest].n) smallest = i;
        }
        if (empty >= 0 && g_pool_bytes + n <= cap) {
            g_pool[empty].p = p;
            g_pool[empty].n = n;
            g_pool_bytes += n;
            break;
        }
        if (smallest < 0 || g_pool[smallest].n > n) { /* keep bigger ones */
            free(p);
            break;
        }
        free(g_pool[smallest].p);
        g_pool_bytes -= g_pool[smallest].n;
        g_pool[smallest].p = NULL;
        g_pool[smallest].n = 0;
    }
    pthread_mutex_unlock(&g_pool_lock);
}

/* ---------------------------------------------------------------- execute */

static dnnl_status_t mem_make(dnnl_memory_t *m, const dnnl_memory_desc_t *md,
                              void *ptr) {
    return dnnl_memory_create(m, md, g_engine, ptr);
}

/* Runs entry e on the user buffers user[0..2] (in the order of e->t), with
 * optional plain bias (forward: BIAS, backward-weights: DIFF_BIAS). */
static int entry_run(ck_entry *e, void *const user[3], void *bias) {
    const int kind = e->kind;
    const ck_conv_shape *s = &e->s;
    int rc = 0;
    dnnl_memory_t umem[3] = {0}, pmem[3] = {0}, bmem = NULL, smem = NULL;
    dnnl_memory_t rsmem[3] = {0};
    void *buf = NULL;
    size_t buf_bytes = 0;

    size_t off[3] = {0}, total = 0;
    for (int i = 0; i < 3; i++)
        if (e->t[i].reorder) {
            off[i] = total;
            total += round64(e->t[i].prim_bytes);
        }
    const size_t scratch_off = total;
    total += round64(e->scratch_max);
    if (total && !(buf = pool_get(total, &buf_bytes)))
        return fail(kind, s, dnnl_out_of_memory,
                    "allocating %zu bytes of blocked buffers", total);
    char *base = buf;

    dnnl_exec_arg_t args[6];
    int nargs = 0;
    for (int i = 0; i < 3; i++) {
        ck_tensor *t = &e->t[i];
        CK_TRY(mem_make(&umem[i], &t->user_md, user[i]), "user memory");
        if (t->reorder) {
            CK_TRY(mem_make(&pmem[i], &t->prim_md, base + off[i]),
                   "blocked memory");
            if (t->reorder_scratch_bytes)
                CK_TRY(mem_make(&rsmem[i], &t->reorder_scratch_md,
                                base + scratch_off),
                       "reorder scratchpad memory");
        }
        args[nargs].arg = t->arg;
        args[nargs].memory = t->reorder ? pmem[i] : umem[i];
        nargs++;
    }
    if (bias) {
        CK_TRY(mem_make(&bmem, &e->bias_md, bias), "bias memory");
        args[nargs].arg =
            kind == CK_BWD_WEIGHTS ? DNNL_ARG_DIFF_BIAS : DNNL_ARG_BIAS;
        args[nargs].memory = bmem;
        nargs++;
    }
    if (e->scratch_bytes) {
        CK_TRY(mem_make(&smem, &e->scratch_md, base + scratch_off),
               "scratchpad memory");
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = smem;
        nargs++;
    }

    /* Inputs: plain -> blocked. */
    for (int i = 0; i < 3; i++) {
        ck_tensor *t = &e->t[i];
        if (!t->reorder || t->is_output) continue;
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, umem[i]},
                                 {DNNL_ARG_TO, pmem[i]},
                                 {DNNL_ARG_SCRATCHPAD, rsmem[i]}};
        CK_TRY(dnnl_primitive_execute(t->reorder, g_stream,
                                      rsmem[i] ? 3 : 2, ra),
               "input reorder");
    }
    CK_TRY(dnnl_primitive_execute(e->prim, g_stream, nargs, args),
           "convolution execute");
    /* Outputs: blocked -> plain. */
    for (int i = 0; i < 3; i++) {
        ck_tensor *t = &e->t[i];
        if (!t->reorder || !t->is_output) continue;
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, pmem[i]},
                                 {DNNL_ARG_TO, umem[i]},
                                 {DNNL_ARG_SCRATCHPAD, rsmem[i]}};
        CK_TRY(dnnl_primitive_execute(t->reorder, g_stream,
                                      rsmem[i] ? 3 : 2, ra),
               "output reorder");
    }
    CK_TRY(dnnl_stream_wait(g_stream), "stream wait");

out:
    for (int i = 0; i < 3; i++) {
        if (umem[i]) dnnl_memory_destroy(umem[i]);
        if (pmem[i]) dnnl_memory_destroy(pmem[i]);
        if (rsmem[i]) dnnl_memory_destroy(rsmem[i]);
    }
    if (bmem) dnnl_memory_destroy(bmem);
    if (smem) dnnl_memory_destroy(smem);
    pool_put(buf, buf_bytes);
    return rc;
}

static int conv_call(int kind, const ck_conv_shape *s, const void *a,
                     const void *b, void *out, void *bias, const char *names) {
    int rc = check_shape(kind, s);
    if (rc) return rc;
    if (!a || !b || !out)
        return fail(kind, s, dnnl_invalid_arguments, "NULL %s", names);
    ck_entry *e = NULL;
    rc = entry_get(kind, s, bias != NULL, apply_threads(), &e);
    if (rc) return rc;
    void *const user[3] = {(void *)a, (void *)b, out};
    rc = entry_run(e, user, bias);
    if (rc == 0) g_err[0] = '\0';
    return rc;
}

/* ---------------------------------------------------------------- API */

/** y = conv(x, w) + b (b may be NULL); plain nchw/oihw float32. */
int ck_conv2d_forward(const ck_conv_shape *s, const float *x, const float *w,
                      const float *b, float *y) {
    return conv_call(CK_FWD, s, x, w, y, (void *)b, "x, w or y");
}

/** dx = conv_transpose(dy, w): gradient w.r.t. the input. */
int ck_conv2d_backward_data(const ck_conv_shape *s, const float *dy,
                            const float *w, float *dx) {
    return conv_call(CK_BWD_DATA, s, dy, w, dx, NULL, "dy, w or dx");
}

/** dw (and db if non-NULL) = gradients w.r.t. weights/bias; overwrites. */
int ck_conv2d_backward_weights(const ck_conv_shape *s, const float *x,
                               const float *dy, float *dw, float *db) {
    return conv_call(CK_BWD_WEIGHTS, s, x, dy, dw, db, "x, dy or dw");
}
