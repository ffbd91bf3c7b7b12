// Convolution patches as rows (see ck_im2col.h).
#include "ck_im2col.h"

void ck_im2col_rows(const float *x, size_t n, size_t c, size_t h, size_t w, size_t k, size_t stride, size_t pad,
                    size_t oh, size_t ow, float *rows) {
    const size_t width = c * k * k;
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < oh; i++)
            for (size_t j = 0; j < ow; j++) {
                float *row = rows + ((b * oh + i) * ow + j) * width;
                for (size_t ch = 0; ch < c; ch++) {
                    const float *plane = x + (b * c + ch) * h * w;
                    for (size_t u = 0; u < k; u++) {
                        long y = (long)(i * stride + u) - (long)pad;
                        for (size_t v = 0; v < k; v++) {
                            long xx = (long)(j * stride + v) - (long)pad;
                            *row++ = (y >= 0 && y < (long)h && xx >= 0 && xx < (long)w) ? plane[(size_t)y * w + (size_t)xx] : 0.0f;
                        }
                    }
                }
            }
}

void ck_col2im_rows(const float *rows, size_t n, size_t c, size_t h, size_t w, size_t k, size_t stride, size_t pad,
                    size_t oh, size_t ow, float *x) {
    const size_t width = c * k * k;
    for (size_t i = 0; i < n * c * h * w; i++) x[i] = 0.0f;
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < oh; i++)
            for (size_t j = 0; j < ow; j++) {
                const float *row = rows + ((b * oh + i) * ow + j) * width;
                for (size_t ch = 0; ch < c; ch++) {
                    float *plane = x + (b * c + ch) * h * w;
                    for (size_t u = 0; u < k; u++) {
                        long y = (long)(i * stride + u) - (long)pad;
                        for (size_t v = 0; v < k; v++, row++) {
                            long xx = (long)(j * stride + v) - (long)pad;
                            if (y >= 0 && y < (long)h && xx >= 0 && xx < (long)w) plane[(size_t)y * w + (size_t)xx] += *row;
                        }
                    }
                }
            }
}
