#ifndef CK_WINOGRAD_H
#define CK_WINOGRAD_H
#include <stddef.h>

/// Winograd F(2x2, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
/// Networks", 2015) for 3x3 kernels, stride 1, padding 1, NCHW: each 2x2 output tile comes from a
/// 4x4 input tile with 16 multiplies per (input, output) channel pair instead of 36, i.e. 2.25x
/// fewer. The work is 16 independent GEMMs U[xi] (O x C) * V[xi] (C x tiles), one per point xi of
/// the 4x4 transform domain; each runs on one thread, so results do not depend on the thread count.

/// F(4x4, 3x3) (`tile` 4) is the same with 4x4 output tiles from 6x6 input tiles: 36 GEMMs over a
/// quarter of the tiles, 4x fewer multiplies than direct convolution, with larger rounding errors
/// (about 6e-6 of the output's scale against 5e-7, from the transforms' constants up to 8).
/// Floats in the transformed weights of an O x C 3x3 convolution: (tile + 2)^2 * O * C.
size_t ck_winograd_weights_count(size_t out_channels, size_t in_channels, int tile);

/// U[(tile + 2)^2][O][C] = G w G^T for w [O][C][3][3] (computed in f32; parallel over filters). With
/// `backward` set, transforms the weights of the backward-data convolution instead:
/// w'[c][o] = w[o][c] rotated by 180 degrees, so U is [16][C][O] (dx = conv3x3(dy, w') for
/// stride 1, padding 1). `dtype` is w's element type: 0 f32, 1 f16, 2 bf16 (16-bit weights are
/// widened as they are read, with no f32 copy of w).
void ck_winograd_transform_weights(const void *w, int dtype, size_t out_channels, size_t in_channels, int backward, int tile,
                                   float *u);

/// Bytes of U [(tile + 2)^2][O][C] packed for ck_gemm at `compute` (0 f32, 1 bf16): each point's
/// U[xi] as ck_gemm_pack_a packs it, ck_gemm_packed_a_bytes(compute, O, C) bytes apart. The layout
/// is the register tile's of this thread's kernel (ck_gemm_f32_kernel_name for f32).
size_t ck_winograd_packed_bytes(size_t out_channels, size_t in_channels, int tile, int compute);
/// U of w (as ck_winograd_transform_weights makes it, `backward` likewise) written straight in that
/// packed form into dst (64-byte aligned, ck_winograd_packed_bytes long): a panel of the kernel's
/// rows at a time is transformed into a small buffer and packed, so no whole U is ever made.
/// Returns 0, -1 when a buffer could not be allocated, or -2 for a compute type this CPU lacks.
int ck_winograd_transform_packed(const void *w, int dtype, size_t out_channels, size_t in_channels, int backward,
                                 int tile, int compute, void *dst);

/// The weights of a Winograd convolution, in one of three forms (exactly one of u, u_packed, w set):
typedef struct {
    /// U [(tile + 2)^2][O][C] as ck_winograd_transform_weights made it: point GEMMs by ck_sgemm.
    const float *u;
    /// U as ck_winograd_transform_packed made it for `compute`: point GEMMs by the engine's ck_gemm.
    const void *u_packed;
    /// The 3x3 weights themselves (ck_winograd_transform_weights' w, dtype and backward): U is made
    /// as the convolution runs, a block of filters at a time into a small per-thread buffer packed
    /// for the engine's f32 GEMM, so no whole U is made or kept. It takes the same sums as
    /// u_packed (the same bits). For shapes where ck_winograd_fuses_weights is 0, and for bf16
    /// products, a whole packed U is made for the call instead (slower: callers keep U for those).
    const void *w;
    int dtype, backward;
    /// The point GEMMs' products with u_packed or w: 0 f32, 1 bf16 operands with f32 sums (where
    /// ck_gemm_bf16_supported()).
    int compute;
} ck_winograd_weights;

/// Whether the convolution of n images of c x h x w into o channels with `tile` runs with w's
/// weights transformed block by block (few tiles: every filter is then transformed once per call),
/// rather than over blocks of tiles, each of which would need all of U.
int ck_winograd_fuses_weights(size_t n, size_t c, size_t h, size_t w, size_t o, int tile);

/// y [N][O][H][W] = the 3x3, stride 1, padding 1 convolution of x [N][C][H][W] with `weights`
/// (tile 2 or 4, as they were transformed), plus bias [O] and residual [N][O][H][W] (added last)
/// when not NULL. The input and output transforms are f32 whatever the products. Returns 0, -1
/// when scratch memory could not be allocated, -2 for bf16 products on a CPU without them, or a
/// oneDNN sgemm status.
int ck_winograd_conv3x3(const float *x, size_t n, size_t c, size_t h, size_t w, const ck_winograd_weights *weights, size_t o,
                        const float *bias, const float *residual, int tile, float *y);

#endif
