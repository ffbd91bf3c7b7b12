#ifndef CK_NORM_H
#define CK_NORM_H
#include <stddef.h>

/// Shape of a normalisation: `rows` independent rows of `len` elements, each normalised to zero mean
/// and unit variance. The affine parameters are per channel; element j of row r belongs to channel
/// (r % groups) * ch_per_group + j / spatial.
///  - GroupNorm on [N, C, H, W] with G groups: rows = N*G, groups = G, ch_per_group = C/G, spatial = H*W.
///  - LayerNorm over the last D of [R, D]: rows = R, groups = 1, ch_per_group = D, spatial = 1.
/// silu != 0: the forward result goes through SiLU as well (group norm + SiLU in one pass).
typedef struct { size_t rows, len, groups, ch_per_group, spatial; float eps; int silu; } ck_norm_shape;

/// y = (x - mean) * rstd * gamma + beta; gamma/beta may be NULL. Writes mean and rstd per row (may be NULL).
void ck_norm_forward(const ck_norm_shape *s, const float *x, const float *gamma, const float *beta, float *y,
                     float *mean, float *rstd);
/// Gradients of ck_norm_forward given the saved mean/rstd. dx, dgamma, dbeta may each be NULL.
void ck_norm_backward(const ck_norm_shape *s, const float *x, const float *gamma, const float *mean,
                      const float *rstd, const float *dy, float *dx, float *dgamma, float *dbeta);

/// Softmax over rows of [rows, cols] (max-subtracted, in place allowed).
void ck_softmax_rows(const float *x, float *y, size_t rows, size_t cols);
/// dx = y * (dy - sum(dy * y)) per row.
void ck_softmax_backward_rows(const float *y, const float *dy, float *dx, size_t rows, size_t cols);

#endif
