#ifndef CK_CONVERT_H
#define CK_CONVERT_H
#include <stddef.h>
#include <stdint.h>
/// IEEE half <-> float (F16C, round to nearest even; overflow to infinity, subnormals kept).
void ck_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void ck_f16_to_f32(const uint16_t *src, float *dst, size_t n);
/// bfloat16 <-> float (round to nearest even, NaN kept quiet), as torch's `.bfloat16()`.
void ck_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void ck_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
/// FMA throughput probe: runs `iters` rounds of independent FMAs on each of ck_get_threads() threads and
/// returns the number of floating-point operations done (2 per FMA lane). Used to measure machine peak.
double ck_fma_peak_probe(long iters);
/// Float lanes of the widest FMA the CPU has (16 with AVX-512F, else 8 with AVX2).
int ck_fma_vector_width(void);
#endif
