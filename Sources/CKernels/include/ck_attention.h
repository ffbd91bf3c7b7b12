#ifndef CK_ATTENTION_H
#define CK_ATTENTION_H
#include <stddef.h>

/// Scaled dot-product attention over `heads` independent (batch x head) slices, memory-bounded:
/// queries are processed in blocks of at most `block` rows against all keys, so scratch is
/// block x Lk floats per thread (never the full Lq x Lk score matrix).
/// q [heads, lq, d], k [heads, lk, d], v [heads, lk, dv] -> o [heads, lq, dv];
/// lse [heads, lq] receives the log-sum-exp of each score row (for the backward pass; may be NULL).
/// causal: query i sees keys j <= i (top-left aligned, as torch's is_causal).
/// The forward pass also takes strided slices: when `q_off` is not NULL, slice h of q starts at
/// element q_off[h] and its rows are `ldq` apart (likewise k, v and the output o); NULL means the
/// dense layout above. So heads can be read from, and written to, [batch, tokens, heads, d] tensors.
/// `compute`: how the forward pass's two products multiply, 0 in f32, 1 with their operands
/// (q and k; the probabilities and v) rounded to bf16 and f32 sums (ck_gemm_args.compute; only
/// where ck_gemm_bf16_supported()). The softmax is f32 either way; the backward pass is f32.
typedef struct {
    size_t heads, lq, lk, d, dv; float scale; int causal; size_t block;
    const long *q_off, *k_off, *v_off, *o_off; size_t ldq, ldk, ldv, ldo;
    int compute;
} ck_attention_shape;

/// Returns 0, -1 when scratch memory could not be allocated, or -2 for bf16 products on a CPU
/// without them.
int ck_attention_forward(const ck_attention_shape *s, const float *q, const float *k, const float *v, float *o,
                         float *lse);
/// Gradients from saved o and lse, recomputing scores block by block. dq/dk/dv are overwritten.
int ck_attention_backward(const ck_attention_shape *s, const float *q, const float *k, const float *v,
                          const float *o, const float *lse, const float *dout, float *dq, float *dk, float *dv);

/// Scratch high-water mark (bytes) of the attention kernels since the last reset.
size_t ck_attention_scratch_peak(void);
void ck_attention_scratch_reset(void);
#endif
