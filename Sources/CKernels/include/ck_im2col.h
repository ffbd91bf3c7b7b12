#ifndef CK_IM2COL_H
#define CK_IM2COL_H
#include <stddef.h>
/// Patch rows of a k x k convolution (stride, zero padding `pad`) of x [n][c][h][w]:
/// rows[(b * oh + i) * ow + j][(ch * k + u) * k + v] = x[b][ch][i * stride + u - pad][j * stride + v - pad]
/// (0 outside the image), so that the convolution is rows (n*oh*ow x c*k*k) times the weight
/// [o][c*k*k] transposed.
void ck_im2col_rows(const float *x, size_t n, size_t c, size_t h, size_t w, size_t k, size_t stride, size_t pad,
                    size_t oh, size_t ow, float *rows);
/// The adjoint of ck_im2col_rows: x [n][c][h][w] = the sum, over every patch row element that
/// ck_im2col_rows would read from a pixel, of that element of `rows` (patches in order, so the sums
/// do not depend on anything but the shapes). Used for a convolution's backward data: x is
/// overwritten.
void ck_col2im_rows(const float *rows, size_t n, size_t c, size_t h, size_t w, size_t k, size_t stride, size_t pad,
                    size_t oh, size_t ow, float *x);
#endif
