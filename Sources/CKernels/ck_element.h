#ifndef CK_ELEMENT_H
#define CK_ELEMENT_H
// Reading stored elements as f32, for kernels that take weights in any storage type.
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/// Element i of `p` as f32; `dtype`: 0 f32, 1 f16, 2 bf16 (the Engine's storage types).
static inline float ck_element_f32(const void *p, int dtype, size_t i) {
    switch (dtype) {
    case 1: return _cvtsh_ss(((const uint16_t *)p)[i]);
    case 2: { uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16; float f; memcpy(&f, &u, 4); return f; }
    default: return ((const float *)p)[i];
    }
}

/// Elements [i, i + 8) of `p` as f32 lanes (F16C for f16, a shift for bf16).
static inline __m256 ck_elements8_f32(const void *p, int dtype, size_t i) {
    switch (dtype) {
    case 1: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    case 2: return _mm256_castsi256_ps(
                _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i))), 16));
    default: return _mm256_loadu_ps((const float *)p + i);
    }
}
#endif
