/*
 * ck_dnnl.h - oneDNN: 2-D convolution (forward, backward-data, backward-weights)
 * through oneDNN 2.6 (libdnnl), for float32 NCHW tensors.
 *
 * Layouts seen by the caller are always plain and contiguous:
 *   x, dx : N x C x H x W        (nchw)
 *   w, dw : O x C x K x K        (oihw)
 *   b, db : O
 *   y, dy : N x O x OH x OW      (nchw)
 * Internally oneDNN runs in its blocked layout (e.g. nChw8c / nChw16c) and
 * the wrapper reorders into and out of it. The blocked copy of immutable
 * weights can be cached (see weight_key below), which removes the weight
 * reorder from every call after the first; for 1280->1280 3x3 convs at
 * 8x8 / 16x16 that reorder (59 MB) was 16-39% of the call.
 *
 * All functions are safe to call from several threads at once.
 * Functions returning int return 0 on success, otherwise a dnnl_status_t
 * value (1 = out of memory, 2 = invalid arguments, 3 = unimplemented, ...);
 * ck_conv_last_error() then describes the failure.
 */
#ifndef CK_CONV_DNNL_H
#define CK_CONV_DNNL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Convolution geometry. Kernel is k x k, padding `pad` on all four sides,
 * the same stride in both directions, no dilation, no groups.
 * oh/ow must equal (h + 2*pad - k) / stride + 1 and likewise for w
 * (they are checked, not computed). */
typedef struct {
    int n, c, h, w, o, k, stride, pad, oh, ow;
} ck_conv_shape;

/* weight_key (forward and backward-data):
 *   0        no caching: w is reordered into the blocked layout every call.
 *   non-zero the caller promises that the weight values under this key never
 *            change (until ck_conv_forget_weights(weight_key)). The blocked
 *            copy is cached under (weight_key, blocked weight layout) and
 *            reused; w is then not read at all. The blocked layout is fixed
 *            by the kind (forward / backward-data) and the O x C x K x K
 *            weight shape, so forward and backward-data keep separate
 *            copies, while e.g. two batch sizes normally share one.
 *            The key names the values, not the pointer: the same key with a
 *            different w pointer still uses the cached copy.
 * Using one key for two different weight tensors gives wrong results (the
 * caller's contract); keys are best unique ids of weight tensors. */

/* y = conv(x, w) + b. b may be NULL (no bias). y is overwritten. */
int ck_conv2d_forward(const ck_conv_shape *s, const float *x, const float *w,
                      uint64_t weight_key, const float *b, float *y);

/* dx = conv_transpose(dy, w): gradient of the loss w.r.t. the input x.
 * dx is overwritten. */
int ck_conv2d_backward_data(const ck_conv_shape *s, const float *dy,
                            const float *w, uint64_t weight_key, float *dx);

/* dw (and db if db != NULL) = gradients w.r.t. weights and bias, given the
 * forward input x and the output gradient dy. dw/db are overwritten (not
 * accumulated). */
int ck_conv2d_backward_weights(const ck_conv_shape *s, const float *x,
                               const float *dy, float *dw, float *db);

/* Message describing the last failure on the calling thread ("" if none).
 * The string is owned by the library (thread-local storage); do not free. */
/* Matrix product through oneDNN's matmul primitive (its brgemm kernels):
 *   y[m][n] = sum_k a[m][k] w[k][n] + bias[n] + residual[m][n]
 * a is row-major M x K with row stride lda (>= k); w is K x N, given either
 * as the rows of a plain N x K matrix (weights_nk = 1: a linear layer's
 * [out, in] weight, read in place) or as a plain K x N matrix; bias (N) and
 * residual (M x N, contiguous; has_residual says whether one is given) are
 * optional and added inside the kernel as the tile is stored, so y is
 * written once. y is contiguous M x N. */
typedef struct {
    long m, k, n, lda;
    int weights_nk, has_residual;
} ck_matmul_shape;

int ck_matmul_forward(const ck_matmul_shape *s, const float *a, const float *w,
                      const float *bias, const float *residual, float *y);

const char *ck_conv_last_error(void);

/* Thread count: ck_set_threads (ck_parallel.h) sets it for oneDNN too.
 * Primitives are cached per thread count, so changing it costs one
 * primitive creation per shape on the next call. */

/* Bytes the weight cache may hold (default 2 GiB; env
 * CK_CONV_WEIGHT_CACHE_MB, read on first use, overrides the default; a call
 * here overrides both). Least recently used entries are evicted beyond it,
 * immediately when the limit is lowered. A single blocked weight larger
 * than the limit is not cached. 0 disables caching (cached copies are
 * dropped; non-zero keys then behave like 0). Safe at any time. */
void ck_conv_set_weight_cache_limit(size_t bytes);

/* Drops every cached blocked weight whose key is weight_key (forward and
 * backward-data copies alike). Call it when the weight tensor is freed or
 * its values change. Safe at any time, also concurrently with convolutions
 * (a call already using the old copy finishes with it). */
void ck_conv_forget_weights(uint64_t weight_key);

/* Destroy every cached primitive, drop the weight cache and free the pooled
 * work buffers (the pool keeps up to 512 MiB of blocked-layout buffers
 * between calls; env CK_CONV_POOL_MB sets the cap, 0 disables pooling).
 * Optional; for tests, leak checkers, or to return memory. Must not run
 * concurrently with a convolution call. */
void ck_conv_cache_clear(void);

#ifdef __cplusplus
}
#endif

#endif /* CK_CONV_DNNL_H */
