/*
 * dnnl.c - 2-D float32 convolution and matmul through oneDNN 2.6 (C API).
 *
 * Why oneDNN: its JIT "direct" convolution in the blocked channel layout
 * (nChw8c on AVX2, nChw16c on AVX-512) runs close to FMA peak. On the 2-vCPU
 * Zen1 target (AVX2/FMA) direct conv was measured at 76-78 GFLOP/s on 2
 * threads, ~95% of FMA peak, for Stable Diffusion 3x3 shapes. (On a 2-vCPU
 * AVX-512 Xeon dev VM the bare primitive reached ~330 GFLOP/s, and ~175 with
 * DNNL_MAX_CPU_ISA=AVX2.)
 * scripts/dev/dnnl_check.c checks correctness and prints GFLOP/s.
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
 *    ck_conv_cache_clear() frees the pool, the weight cache and the
 *    primitives; nothing else is retained, so there is nothing to leak.
 *  - Weight cache (forward and backward-data, weight_key != 0). The caller
 *    promises the values under a key never change, so the blocked copy of
 *    the weights is kept and the weight reorder (59 MB for 1280->1280 3x3,
 *    16-39% of the call at 8x8 / 16x16 spatial) is done once. Entries are
 *    keyed by (weight_key, blocked weight memory desc): the desc already
 *    encodes kind-specific layout and O x C x K x K, and two primitives that
 *    pick the same layout (e.g. batch 1 and 2) can share the copy. A linked
 *    list under g_wlock (its own mutex; never held together with another
 *    lock, nor during a reorder or convolution). Lookup takes a reference
 *    (refs) so eviction / forget / clear never free memory a running call
 *    reads: they unlink the entry and the last reference frees it. On a miss
 *    the reorder runs outside the lock into a fresh entry that is published
 *    only once complete; a concurrent miss on the same key just builds a
 *    private copy used for that call. ck_conv_forget_weights bumps an epoch
 *    (recorded per key hash slot), and a copy of that key whose build
 *    started before the bump is not published (it may hold the old
 *    values). Total size is capped (default 2 GiB, env
 *    CK_CONV_WEIGHT_CACHE_MB, ck_conv_set_weight_cache_limit); least
 *    recently used entries are evicted beyond it. Entry memory comes from
 *    and returns to the work-block pool (only blocks that fit within 25%),
 *    so when the cap is smaller than the weights cycled through (every
 *    lookup misses under LRU) a miss costs about what key 0 costs rather
 *    than a fresh mmap + page faults per call. A failed allocation for the
 *    cache falls back to the uncached path.
 *  - Errors never abort: the dnnl status is returned and a thread-local
 *    message naming the op and shape is kept for ck_conv_last_error().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include "ck_dnnl.h"
#include "ck_omp.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#include <dnnl_debug.h>

enum { CK_FWD = 0, CK_BWD_DATA = 1, CK_BWD_WEIGHTS = 2, CK_MATMUL = 3 };

static const char *const ck_op_name[4] = {
    "ck_conv2d_forward", "ck_conv2d_backward_data",
    "ck_conv2d_backward_weights", "ck_matmul_forward"};

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
    ck_conv_shape s;             /* zero for CK_MATMUL */
    ck_matmul_shape ms;          /* zero for the convolutions */
    dnnl_memory_desc_t residual_md; /* CK_MATMUL with has_residual */
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

/* Weight cache (see file header). Guarded by g_wlock. */
typedef struct ck_wentry {
    struct ck_wentry *next;
    uint64_t key;
    dnnl_memory_desc_t md; /* blocked layout of the copy */
    void *data;
    size_t bytes;          /* size of the allocation (counted) */
    uint64_t last_use;     /* g_wtick at the last lookup */
    int refs;              /* calls using data now (+1 while building) */
    int linked;            /* in g_wcache */
} ck_wentry;

#define CK_WCACHE_DEFAULT_MB 2048
static pthread_mutex_t g_wlock = PTHREAD_MUTEX_INITIALIZER;
static ck_wentry *g_wcache = NULL;
static size_t g_wbytes = 0;               /* sum of bytes of linked entries */
static size_t g_wlimit = (size_t)-1;      /* resolved on first use */
static uint64_t g_wtick = 0, g_wepoch = 0;
/* g_wepoch at the latest forget per key hash slot, and at the latest drop of
 * everything (ck_conv_cache_clear); see wc_publish. */
#define CK_WFORGET_SLOTS 64
static uint64_t g_wforget[CK_WFORGET_SLOTS], g_wdrop_all = 0;
static unsigned wc_slot(uint64_t key) {
    return (unsigned)((key * 0x9E3779B97F4A7C15ull) >> 58); /* 6 bits */
}

/* Work-block pool (see file header). Guarded by g_pool_lock. */
#define CK_POOL_SLOTS 8
#define CK_POOL_CAP_MB 512
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { void *p; size_t n; } g_pool[CK_POOL_SLOTS];
static size_t g_pool_bytes = 0;
static size_t g_pool_cap = (size_t)-1; /* resolved on first use */

/* Thread count for oneDNN: see omp_threads.c. */
static int apply_threads(void) { return ck_omp_apply(); }

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

static void wc_drop(int all, uint64_t key);

/** Destroys all cached primitives and weights and frees the pool. Not
 * concurrent-safe with conv calls. */
void ck_conv_cache_clear(void) {
    wc_drop(1, 0); /* before the pool: dropped weights go back to it */
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

/* The scratchpad an entry's primitive and reorders need, and the primitive
 * itself, from its descriptor (the tensors' reorders already made). */
static dnnl_status_t entry_finish(ck_entry *e, const_dnnl_primitive_desc_t pd) {
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
    return dnnl_primitive_create(&e->prim, pd);
}

/* Builds the cache entry of a matmul (see ck_matmul_forward): plain source,
 * weights and destination (oneDNN reads them in place, so no reorders), bias
 * and the residual as a binary-add post-op. Called with g_lock held. */
static int matmul_entry_build(const ck_matmul_shape *ms, int has_bias,
                              int nthr, ck_entry **out_e) {
    const int kind = CK_MATMUL;
    const ck_conv_shape *s = NULL;
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post_ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    ck_entry *e = calloc(1, sizeof *e);
    if (!e) return fail(kind, s, dnnl_out_of_memory, "allocating cache entry");
    e->kind = kind;
    e->has_bias = has_bias;
    e->nthr = nthr;
    e->ms = *ms;

    const dnnl_dims_t src_dims = {ms->m, ms->k}, src_strides = {ms->lda, 1};
    const dnnl_dims_t wei_dims = {ms->k, ms->n}, dst_dims = {ms->m, ms->n};
    const dnnl_dims_t bias_dims = {1, ms->n};
    dnnl_memory_desc_t src_user, wei_user, dst_user;
    CK_TRY(dnnl_memory_desc_init_by_strides(&src_user, 2, src_dims, dnnl_f32,
                                            src_strides),
           "src memory desc");
    CK_TRY(md_plain(&wei_user, 2, wei_dims, ms->weights_nk ? dnnl_ba : dnnl_ab),
           "weights memory desc");
    CK_TRY(md_plain(&dst_user, 2, dst_dims, dnnl_ab), "dst memory desc");
    CK_TRY(md_plain(&e->bias_md, 2, bias_dims, dnnl_ab), "bias memory desc");
    CK_TRY(dnnl_primitive_attr_create(&attr), "attr create");
    CK_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr,
                                                   dnnl_scratchpad_mode_user),
           "attr scratchpad mode");
    if (ms->has_residual) {
        e->residual_md = dst_user;
        CK_TRY(dnnl_post_ops_create(&post_ops), "post-ops create");
        CK_TRY(dnnl_post_ops_append_binary(post_ops, dnnl_binary_add,
                                           &e->residual_md),
               "residual post-op");
        CK_TRY(dnnl_primitive_attr_set_post_ops(attr, post_ops),
               "attr post-ops");
    }
    dnnl_matmul_desc_t md;
    CK_TRY(dnnl_matmul_desc_init(&md, &src_user, &wei_user,
                                 has_bias ? &e->bias_md : NULL, &dst_user),
           "matmul desc init");
    CK_TRY(dnnl_primitive_desc_create(&pd, &md, attr, g_engine, NULL),
           "matmul primitive desc create");
    CK_TRY(tensor_init(&e->t[0], pd, DNNL_ARG_SRC, 0, &src_user, attr),
           "src layout");
    CK_TRY(tensor_init(&e->t[1], pd, DNNL_ARG_WEIGHTS, 0, &wei_user, attr),
           "weights layout");
    CK_TRY(tensor_init(&e->t[2], pd, DNNL_ARG_DST, 1, &dst_user, attr),
           "dst layout");
    CK_TRY(entry_finish(e, pd), "primitive create");

out:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (post_ops) dnnl_post_ops_destroy(post_ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc != 0) {
        entry_free(e);
        e = NULL;
    }
    *out_e = e;
    return rc;
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

    CK_TRY(entry_finish(e, pd), "primitive create");

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

/* Finds or builds the entry for (kind, shape, has_bias, nthr); a matmul
 * passes its shape as ms (and s NULL), a convolution as s (and ms NULL). */
static int entry_get(int kind, const ck_conv_shape *s,
                     const ck_matmul_shape *ms, int has_bias, int nthr,
                     ck_entry **out_e) {
    pthread_once(&g_engine_once, engine_init);
    if (!g_engine)
        return fail(kind, s, g_engine_status, "creating CPU engine/stream");
    ck_conv_shape s0;
    ck_matmul_shape ms0;
    memset(&s0, 0, sizeof s0);
    memset(&ms0, 0, sizeof ms0);
    if (s) s0 = *s;
    if (ms) ms0 = *ms;

    pthread_mutex_lock(&g_lock);
    ck_entry *e = g_cache;
    for (; e; e = e->next)
        if (e->kind == kind && e->has_bias == has_bias && e->nthr == nthr &&
            memcmp(&e->s, &s0, sizeof s0) == 0 &&
            memcmp(&e->ms, &ms0, sizeof ms0) == 0)
            break;
    int rc = 0;
    if (!e) {
        rc = kind == CK_MATMUL ? matmul_entry_build(&ms0, has_bias, nthr, &e)
                               : entry_build(kind, s, has_bias, nthr, &e);
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

/* Takes a pooled block of need..maxn bytes, else allocates `need` bytes;
 * *got receives the block's real size. */
static void *pool_get_fit(size_t need, size_t maxn, size_t *got) {
    void *p = NULL;
    pthread_mutex_lock(&g_pool_lock);
    int best = -1;
    for (int i = 0; i < CK_POOL_SLOTS; i++)
        if (g_pool[i].p && g_pool[i].n >= need && g_pool[i].n <= maxn &&
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

static void *pool_get(size_t need, size_t *got) {
    return pool_get_fit(need, (size_t)-1, got);
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

/* ---------------------------------------------------------- weight cache */

static size_t wc_limit(void) { /* g_wlock held */
    if (g_wlimit == (size_t)-1) {
        const char *env = getenv("CK_CONV_WEIGHT_CACHE_MB");
        long mb = env && *env ? strtol(env, NULL, 10) : CK_WCACHE_DEFAULT_MB;
        g_wlimit = mb > 0 ? (size_t)mb << 20 : 0;
    }
    return g_wlimit;
}

/* Frees entries collected by the functions below; call without g_wlock. */
static void wc_free_list(ck_wentry *w) {
    while (w) {
        ck_wentry *nx = w->next;
        pool_put(w->data, w->bytes);
        free(w);
        w = nx;
    }
}

/* Unlinks *pp (g_wlock held). Unreferenced entries go onto *freel (freed
 * after unlocking); referenced ones are freed by the last wc_release. */
static void wc_unlink(ck_wentry **pp, ck_wentry **freel) {
    ck_wentry *w = *pp;
    *pp = w->next;
    w->next = NULL;
    w->linked = 0;
    g_wbytes -= w->bytes;
    if (w->refs == 0) {
        w->next = *freel;
        *freel = w;
    }
}

/* Evicts least recently used entries until g_wbytes <= limit (g_wlock). */
static void wc_trim(size_t limit, ck_wentry **freel) {
    while (g_wbytes > limit && g_wcache) {
        ck_wentry **lru = &g_wcache;
        for (ck_wentry **pp = &g_wcache; *pp; pp = &(*pp)->next)
            if ((*pp)->last_use < (*lru)->last_use) lru = pp;
        wc_unlink(lru, freel);
    }
}

/* Drops every entry (all) or those with `key`. */
static void wc_drop(int all, uint64_t key) {
    ck_wentry *freel = NULL;
    pthread_mutex_lock(&g_wlock);
    /* copies of these keys being built now may hold the old values */
    g_wepoch++;
    if (all)
        g_wdrop_all = g_wepoch;
    else
        g_wforget[wc_slot(key)] = g_wepoch;
    for (ck_wentry **pp = &g_wcache; *pp;) {
        if (all || (*pp)->key == key)
            wc_unlink(pp, &freel);
        else
            pp = &(*pp)->next;
    }
    pthread_mutex_unlock(&g_wlock);
    wc_free_list(freel);
}

static void wc_release(ck_wentry *w) {
    if (!w) return;
    pthread_mutex_lock(&g_wlock);
    int dead = --w->refs == 0 && !w->linked;
    pthread_mutex_unlock(&g_wlock);
    if (dead) wc_free_list(w);
}

/* Looks (key, md) up. Returns 1 with a referenced entry in *out, 0 on a
 * miss (*epoch = current epoch), -1 when caching is disabled. */
static int wc_lookup(uint64_t key, const dnnl_memory_desc_t *md,
                     ck_wentry **out, uint64_t *epoch) {
    int r = 0;
    *out = NULL;
    pthread_mutex_lock(&g_wlock);
    if (wc_limit() == 0) {
        r = -1;
    } else {
        for (ck_wentry *w = g_wcache; w; w = w->next)
            if (w->key == key && dnnl_memory_desc_equal(&w->md, md)) {
                w->refs++;
                w->last_use = ++g_wtick;
                *out = w;
                r = 1;
                break;
            }
        *epoch = g_wepoch;
    }
    pthread_mutex_unlock(&g_wlock);
    return r;
}

/* Publishes a complete, referenced (refs == 1) entry unless caching was
 * disabled, it exceeds the limit, its key (or a key in the same hash slot,
 * or everything) was forgotten since the lookup at `epoch`, or another
 * thread published the same (key, md) meanwhile; in those cases it stays
 * private and the caller's wc_release frees it. */
static void wc_publish(ck_wentry *w, uint64_t epoch) {
    ck_wentry *freel = NULL;
    pthread_mutex_lock(&g_wlock);
    size_t limit = wc_limit();
    int ok = limit > 0 && w->bytes <= limit && g_wdrop_all <= epoch &&
             g_wforget[wc_slot(w->key)] <= epoch;
    for (ck_wentry *o = g_wcache; ok && o; o = o->next)
        if (o->key == w->key && dnnl_memory_desc_equal(&o->md, &w->md))
            ok = 0;
    if (ok) {
        w->last_use = ++g_wtick;
        w->linked = 1;
        w->next = g_wcache;
        g_wcache = w;
        g_wbytes += w->bytes;
        /* w is the most recently used and fits alone, so it survives. */
        wc_trim(limit, &freel);
    }
    pthread_mutex_unlock(&g_wlock);
    wc_free_list(freel);
}

/** Sets the weight cache limit in bytes (0 disables) and evicts beyond it. */
void ck_conv_set_weight_cache_limit(size_t bytes) {
    ck_wentry *freel = NULL;
    pthread_mutex_lock(&g_wlock);
    g_wlimit = bytes == (size_t)-1 ? bytes - 1 : bytes; /* -1 = unresolved */
    wc_trim(g_wlimit, &freel);
    pthread_mutex_unlock(&g_wlock);
    wc_free_list(freel);
}

/** Drops every cached blocked weight with this key. */
void ck_conv_forget_weights(uint64_t weight_key) { wc_drop(0, weight_key); }

/* ---------------------------------------------------------------- execute */

static dnnl_status_t mem_make(dnnl_memory_t *m, const dnnl_memory_desc_t *md,
                              void *ptr) {
    return dnnl_memory_create(m, md, g_engine, ptr);
}

/* Runs one reorder of tensor t between the plain buffer `user` and the
 * blocked buffer `blocked` (direction from t->is_output); `scratch` holds
 * t->reorder_scratch_bytes. */
static dnnl_status_t reorder_run(const ck_tensor *t, void *user,
                                 void *blocked, void *scratch) {
    dnnl_memory_t um = NULL, bm = NULL, sm = NULL;
    dnnl_status_t st = mem_make(&um, &t->user_md, user);
    if (st == dnnl_success) st = mem_make(&bm, &t->prim_md, blocked);
    if (st == dnnl_success && t->reorder_scratch_bytes)
        st = mem_make(&sm, &t->reorder_scratch_md, scratch);
    if (st == dnnl_success) {
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, t->is_output ? bm : um},
                                 {DNNL_ARG_TO, t->is_output ? um : bm},
                                 {DNNL_ARG_SCRATCHPAD, sm}};
        st = dnnl_primitive_execute(t->reorder, g_stream, sm ? 3 : 2, ra);
    }
    if (st == dnnl_success) st = dnnl_stream_wait(g_stream);
    if (um) dnnl_memory_destroy(um);
    if (bm) dnnl_memory_destroy(bm);
    if (sm) dnnl_memory_destroy(sm);
    return st;
}

/* Returns (in *out, referenced) the cached blocked copy of the weights
 * e->t[1] for `key`, building and publishing it on a miss. *out stays NULL
 * when caching is disabled or memory for the copy is short (the caller
 * then reorders per call as with key 0). Returns 0 or an error. */
static int wc_get(ck_entry *e, uint64_t key, void *w, ck_wentry **out) {
    const int kind = e->kind;
    const ck_conv_shape *s = &e->s;
    const ck_tensor *t = &e->t[1];
    uint64_t epoch = 0;
    *out = NULL;
    if (wc_lookup(key, &t->prim_md, out, &epoch) != 0) return 0;

    ck_wentry *we = calloc(1, sizeof *we);
    if (!we) return 0;
    size_t need = round64(t->prim_bytes), got = 0, sgot = 0;
    we->data = pool_get_fit(need, need + need / 4, &got);
    if (!we->data) { free(we); return 0; }
    we->bytes = got;
    we->key = key;
    we->md = t->prim_md;
    we->refs = 1;
    void *scratch = NULL;
    if (t->reorder_scratch_bytes &&
        !(scratch = pool_get(t->reorder_scratch_bytes, &sgot))) {
        wc_free_list(we);
        return 0;
    }
    dnnl_status_t st = reorder_run(t, w, we->data, scratch);
    pool_put(scratch, sgot);
    if (st != dnnl_success) {
        wc_free_list(we);
        return fail(kind, s, st, "weights reorder (cached)");
    }
    wc_publish(we, epoch);
    *out = we;
    return 0;
}

/* Runs entry e on the user buffers user[0..2] (in the order of e->t), with
 * optional plain bias (forward: BIAS, backward-weights: DIFF_BIAS). When
 * wblk is not NULL it is the blocked copy of tensor 1 (the weights), which
 * is then neither reordered nor given space in the work block. */
static int entry_run(ck_entry *e, void *const user[3], void *bias,
                     void *residual, void *wblk) {
    const int kind = e->kind;
    const ck_conv_shape *s = kind == CK_MATMUL ? NULL : &e->s;
    int rc = 0;
    dnnl_memory_t umem[3] = {0}, pmem[3] = {0}, bmem = NULL, smem = NULL;
    dnnl_memory_t rmem = NULL;
    dnnl_memory_t rsmem[3] = {0};
    void *buf = NULL;
    size_t buf_bytes = 0;

    int pre[3] = {0, wblk != NULL, 0};
    size_t off[3] = {0}, total = 0;
    for (int i = 0; i < 3; i++)
        if (e->t[i].reorder && !pre[i]) {
            off[i] = total;
            total += round64(e->t[i].prim_bytes);
        }
    const size_t scratch_off = total;
    total += round64(e->scratch_max);
    if (total && !(buf = pool_get(total, &buf_bytes)))
        return fail(kind, s, dnnl_out_of_memory,
                    "allocating %zu bytes of blocked buffers", total);
    char *base = buf;

    dnnl_exec_arg_t args[7];
    int nargs = 0;
    for (int i = 0; i < 3; i++) {
        ck_tensor *t = &e->t[i];
        if (pre[i]) {
            CK_TRY(mem_make(&pmem[i], &t->prim_md, wblk),
                   "cached blocked weights memory");
            args[nargs].arg = t->arg;
            args[nargs].memory = pmem[i];
            nargs++;
            continue;
        }
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
    if (residual) {
        CK_TRY(mem_make(&rmem, &e->residual_md, residual), "residual memory");
        args[nargs].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;
        args[nargs].memory = rmem;
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
        if (!t->reorder || t->is_output || pre[i]) continue;
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
    if (rmem) dnnl_memory_destroy(rmem);
    if (smem) dnnl_memory_destroy(smem);
    pool_put(buf, buf_bytes);
    return rc;
}

/* b is the weights for forward / backward-data (cached under weight_key when
 * non-zero). */
static int conv_call(int kind, const ck_conv_shape *s, const void *a,
                     const void *b, void *out, void *bias, const char *names,
                     uint64_t weight_key) {
    int rc = check_shape(kind, s);
    if (rc) return rc;
    if (!a || !b || !out)
        return fail(kind, s, dnnl_invalid_arguments, "NULL %s", names);
    ck_entry *e = NULL;
    rc = entry_get(kind, s, NULL, bias != NULL, apply_threads(), &e);
    if (rc) return rc;
    void *const user[3] = {(void *)a, (void *)b, out};
    ck_wentry *we = NULL;
    if (weight_key && kind != CK_BWD_WEIGHTS && e->t[1].reorder) {
        rc = wc_get(e, weight_key, (void *)b, &we);
        if (rc) return rc;
    }
    rc = entry_run(e, user, bias, NULL, we ? we->data : NULL);
    wc_release(we);
    if (rc == 0) g_err[0] = '\0';
    return rc;
}

/* ---------------------------------------------------------------- API */

/** y = conv(x, w) + b (b may be NULL); plain nchw/oihw float32. */
int ck_conv2d_forward(const ck_conv_shape *s, const float *x, const float *w,
                      uint64_t weight_key, const float *b, float *y) {
    return conv_call(CK_FWD, s, x, w, y, (void *)b, "x, w or y", weight_key);
}

/** dx = conv_transpose(dy, w): gradient w.r.t. the input. */
int ck_conv2d_backward_data(const ck_conv_shape *s, const float *dy,
                            const float *w, uint64_t weight_key, float *dx) {
    return conv_call(CK_BWD_DATA, s, dy, w, dx, NULL, "dy, w or dx",
                     weight_key);
}

/** dw (and db if non-NULL) = gradients w.r.t. weights/bias; overwrites. */
int ck_conv2d_backward_weights(const ck_conv_shape *s, const float *x,
                               const float *dy, float *dw, float *db) {
    return conv_call(CK_BWD_WEIGHTS, s, x, dy, dw, db, "x, dy or dw", 0);
}

/** y = a w + bias + residual (see ck_matmul_shape). */
int ck_matmul_forward(const ck_matmul_shape *s, const float *a, const float *w,
                      const float *bias, const float *residual, float *y) {
    const int kind = CK_MATMUL;
    if (!s) return fail(kind, NULL, dnnl_invalid_arguments, "shape is NULL");
    if (s->m <= 0 || s->k <= 0 || s->n <= 0 || s->lda < s->k ||
        (s->has_residual != 0) != (residual != NULL) || !a || !w || !y)
        return fail(kind, NULL, dnnl_invalid_arguments,
                    "m=%ld k=%ld n=%ld lda=%ld: non-positive dimension, "
                    "lda < k, NULL operand or residual flag mismatch",
                    s->m, s->k, s->n, s->lda);
    ck_matmul_shape key = *s;
    key.has_residual = residual != NULL;
    ck_entry *e = NULL;
    int rc = entry_get(kind, NULL, &key, bias != NULL, apply_threads(), &e);
    if (rc) return rc;
    void *const user[3] = {(void *)a, (void *)w, y};
    rc = entry_run(e, user, (void *)bias, (void *)residual, NULL);
    if (rc == 0) g_err[0] = '\0';
    return rc;
}
