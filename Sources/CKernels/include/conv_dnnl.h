/*
 * conv_dnnl.h - 2-D convolution (forward, backward-data, backward-weights)
 * through oneDNN 2.6 (libdnnl), for float32 NCHW tensors.
 *
 * Layouts seen by the caller are always plain and contiguous:
 *   x, dx : N x C x H x W        (nchw)
 *   w, dw : O x C x K x K        (oihw)
 *   b, db : O
 *   y, dy : N x O x OH x OW      (nchw)
 * Internally oneDNN runs in its blocked layout (e.g. nChw8c / nChw16c) and
 * the wrapper reorders into and out of it.
 *
 * All functions are safe to call from several threads at once.
 * Functions returning int return 0 on success, otherwise a dnnl_status_t
 * value (1 = out of memory, 2 = invalid arguments, 3 = unimplemented, ...);
 * ck_conv_last_error() then describes the failure.
 */
#ifndef CK_CONV_DNNL_H
#define CK_CONV_DNNL_H

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

/* y = conv(x, w) + b. b may be NULL (no bias). y is overwritten. */
int ck_conv2d_forward(const ck_conv_shape *s, const float *x, const float *w,
                      const float *b, float *y);

/* dx = conv_transpose(dy, w): gradient of the loss w.r.t. the input x.
 * dx is overwritten. */
int ck_conv2d_backward_data(const ck_conv_shape *s, const float *dy,
                            const float *w, float *dx);

/* dw (and db if db != NULL) = gradients w.r.t. weights and bias, given the
 * forward input x and the output gradient dy. dw/db are overwritten (not
 * accumulated). */
int ck_conv2d_backward_weights(const ck_conv_shape *s, const float *x,
                               const float *dy, float *dw, float *db);

/* Message describing the last failure on the calling thread ("" if none).
 * The string is owned by the library (thread-local storage); do not free. */
const char *ck_conv_last_error(void);

/* Set the number of OpenMP threads oneDNN uses for later convolutions on
 * every calling thread (n <= 0: back to the OpenMP default). Cheap to call;
 * primitives are cached per thread count, so changing it costs one
 * primitive creation per shape on the next call. */
void ck_conv_set_threads(int n);

/* Destroy every cached primitive and free the pooled work buffers (the
 * pool keeps up to 512 MiB of blocked-layout buffers between calls; env
 * CK_CONV_POOL_MB sets the cap, 0 disables pooling). Optional; for tests,
 * leak checkers, or to return memory. Must not run concurrently with a
 * convolution call. */
void ck_conv_cache_clear(void);

#ifdef __cplusplus
}
#endif

#endif /* CK_CONV_DNNL_H */
