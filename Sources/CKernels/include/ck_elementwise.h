#ifndef CK_ELEMENTWISE_H
#define CK_ELEMENTWISE_H
#include <stddef.h>
#include <stdint.h>

/// Maximum rank of tensors handled by the strided kernels.
#define CK_MAX_RANK 8

/// Unary element-wise operations. p0/p1 carry parameters (clamp: min, max).
typedef enum {
    CK_UNARY_GELU = 0,       ///< 0.5 x (1 + erf(x / sqrt 2))
    CK_UNARY_GELU_TANH = 1,  ///< 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    CK_UNARY_QUICK_GELU = 2, ///< x sigmoid(1.702 x), as OpenAI CLIP
    CK_UNARY_SILU = 3,       ///< x sigmoid(x)
    CK_UNARY_EXP = 4,
    CK_UNARY_LOG = 5,
    CK_UNARY_SQRT = 6,
    CK_UNARY_CLAMP = 7,      ///< min(max(x, p0), p1)
    CK_UNARY_NEG = 8,
    CK_UNARY_SQUARE = 9,
} ck_unary_op;

/// y[i] = op(x[i]). In place is allowed.
void ck_unary(ck_unary_op op, const float *x, float *y, size_t n, float p0, float p1);
/// dx[i] = dy[i] * op'(x[i]) (y = op(x) is passed for ops whose derivative uses it; may be NULL otherwise).
void ck_unary_backward(ck_unary_op op, const float *x, const float *y, const float *dy, float *dx, size_t n,
                       float p0, float p1);

typedef enum { CK_BINARY_ADD = 0, CK_BINARY_SUB = 1, CK_BINARY_MUL = 2, CK_BINARY_DIV = 3 } ck_binary_op;

/// out (contiguous, `shape`) = a op b, where a and b are read through element strides
/// (0 on broadcast dimensions). rank <= CK_MAX_RANK.
void ck_binary(ck_binary_op op, const float *a, const int64_t *a_strides, const float *b, const int64_t *b_strides,
               float *out, const int64_t *shape, int rank);

/// y[i] = x[i] * mul + add.
void ck_affine_scalar(const float *x, float *y, size_t n, float mul, float add);

/// dst = src, both read/written through element strides (dst_strides NULL: dst contiguous). rank <= CK_MAX_RANK.
void ck_strided_copy(const float *src, const int64_t *src_strides, float *dst, const int64_t *dst_strides,
                     const int64_t *shape, int rank);

/// y[r, c] = row[c] for a rows x cols matrix.
void ck_fill_rows(float *y, const float *row, size_t rows, size_t cols);
/// y[r, c] = addend[r, c] + values[r % count] for a rows x cols matrix (a per-channel bias over
/// NCHW planes, plus a residual); either may be NULL (0).
void ck_fill_each_row(float *y, const float *values, size_t count, const float *addend, size_t rows, size_t cols);
/// y[r, c] = addend[r, c] + row[c] (row may be NULL: a copy of addend) for a rows x cols matrix.
void ck_fill_rows_adding(float *y, const float *addend, const float *row, size_t rows, size_t cols);
/// y[r, c] += bias[c] for a rows x cols matrix.
void ck_add_bias_rows(float *y, const float *bias, size_t rows, size_t cols);

/// out[c] = sum_r x[r, c] (accumulated in double, in row order).
void ck_col_sum(const float *x, size_t rows, size_t cols, float *out);
/// out[r] = sum_c x[r, c] (double accumulation).
void ck_row_sum(const float *x, size_t rows, size_t cols, float *out);
/// Per row: mean and population variance (correction 0), double accumulation. Either output may be NULL.
void ck_row_mean_var(const float *x, size_t rows, size_t cols, float *mean, float *var);

/// GEGLU on rows of x [rows, 2*half]: y[r, j] = x[r, j] * gelu(x[r, half + j]).
void ck_geglu(const float *x, float *y, size_t rows, size_t half);
/// Backward of ck_geglu: dx [rows, 2*half].
void ck_geglu_backward(const float *x, const float *dy, float *dx, size_t rows, size_t half);

/// Nearest-neighbour 2x upsampling of planes: x [planes, h, w] -> y [planes, 2h, 2w].
void ck_upsample_nearest2x(const float *x, float *y, size_t planes, size_t h, size_t w);
/// Backward: dx [planes, h, w] = sum of the four dy cells each x cell was copied to.
void ck_upsample_nearest2x_backward(const float *dy, float *dx, size_t planes, size_t h, size_t w);

/// dw[ids[i], :] += dy[i, :] in index order (deterministic). dw must be zeroed by the caller.
void ck_embedding_backward(const int64_t *ids, size_t n, const float *dy, float *dw, size_t dim);

#endif
