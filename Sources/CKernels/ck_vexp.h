// Eight-wide single-precision exp (and erf, GELU, SiLU built on it) for AVX2/FMA (internal to CKernels).
// exp(x) = 2^k exp(r), k = round(x log2 e), r = x - k ln 2 (ln 2 split in two for exactness),
// exp(r) by Cephes' degree-6 polynomial for |r| <= ln(2)/2: within 2 ulp of the correctly rounded
// result on the clamped range [-87.3, 88.7]; below it the result is 0, as expf's underflow.
#ifndef CK_VEXP_H
#define CK_VEXP_H
#include <immintrin.h>
#include <math.h>

// The constants of the exp reduction and polynomial, shared by the 8- and 16-wide versions.
#define CK_EXP_HI 88.7228394f
#define CK_EXP_LO -87.3365479f
#define CK_EXP_LOG2E 1.44269504088896341f
#define CK_EXP_LN2_HI 0.693359375f
#define CK_EXP_LN2_LO -2.12194440e-4f
#define CK_EXP_P0 1.9875691500e-4f
#define CK_EXP_P1 1.3981999507e-3f
#define CK_EXP_P2 8.3334519073e-3f
#define CK_EXP_P3 4.1665795894e-2f
#define CK_EXP_P4 1.6666665459e-1f
#define CK_EXP_P5 5.0000001201e-1f

static inline __m256 ck_exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(CK_EXP_HI), lo = _mm256_set1_ps(CK_EXP_LO);
    __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(CK_EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(CK_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(CK_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(CK_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CK_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(underflow, y);
}

/// erf by Abramowitz and Stegun 7.1.26 (absolute error at most 1.5e-7), the formula PyTorch's
/// vectorised CPU erf uses: erf(|x|) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-x^2), t = 1 / (1 + p|x|).
static inline __m256 ck_erf8(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = ck_exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
    __m256 r = _mm256_fnmadd_ps(p, e, one);
    return _mm256_or_ps(r, sign);
}

/// gelu(x) = x/2 (1 + erf(x / sqrt 2)).
static inline __m256 ck_gelu8(__m256 x) {
    __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
    return _mm256_fmadd_ps(half_x, ck_erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f))), half_x);
}

/// silu(x) = x / (1 + exp(-x)).
static inline __m256 ck_silu8(__m256 x) {
    __m256 e = ck_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/// y[i] = f(x[i]) for i < n, eight at a time; the tail through a zero-padded block so every
/// element uses the same formula.
#define CK_MAP8(f, x, y, n) do {                                                     \
    size_t i_ = 0;                                                                   \
    for (; i_ + 8 <= (n); i_ += 8) _mm256_storeu_ps((y) + i_, f(_mm256_loadu_ps((x) + i_))); \
    if (i_ < (n)) {                                                                  \
        float in_[8] = {0}, out_[8];                                                 \
        for (size_t t_ = i_; t_ < (n); t_++) in_[t_ - i_] = (x)[t_];                 \
        _mm256_storeu_ps(out_, f(_mm256_loadu_ps(in_)));                             \
        for (size_t t_ = i_; t_ < (n); t_++) (y)[t_] = out_[t_ - i_];                \
    }                                                                                \
} while (0)

/// row[j] = exp(row[j] - shift) for j < n; returns the sum of the results (in double, in a fixed
/// order: eight lane sums, then the tail).
static inline double ck_exp_shift_sum(float *row, size_t n, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = ck_exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), s));
        _mm256_storeu_ps(row + j, e);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, acc0);
    _mm256_storeu_pd(lanes + 4, acc1);
    double sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    if (j < n) {
        float tail[8] = {0};
        for (size_t t = j; t < n; t++) tail[t - j] = row[t] - shift;
        float out[8];
        _mm256_storeu_ps(out, ck_exp8(_mm256_loadu_ps(tail)));
        for (size_t t = j; t < n; t++) { row[t] = out[t - j]; sum += out[t - j]; }
    }
    return sum;
}
/// The sixteen-wide AVX-512 exp: the same reduction and polynomial as ck_exp8, 2^k applied with
/// scalef (so results underflow to 0 as expf's do). Only for CPUs with AVX-512F (see ck_has_avx512).
__attribute__((target("avx512f"))) static inline __m512 ck_exp16(__m512 x) {
    const __m512 hi = _mm512_set1_ps(CK_EXP_HI), lo = _mm512_set1_ps(CK_EXP_LO);
    __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(CK_EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(CK_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(CK_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(CK_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CK_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps((__mmask16)~underflow, _mm512_scalef_ps(p, k));
}

/// Whether this CPU runs AVX-512F (checked once).
static inline int ck_has_avx512(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return known;
}

/// The largest of row[0..n) (AVX-512).
__attribute__((target("avx512f"))) static inline float ck_row_max16(const float *row, size_t n) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(row + j));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(row + j + 16));
    }
    float mx = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    for (; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    return mx;
}

/// row[j] = exp(row[j] - shift) for j < n; returns the sum of the results (float lanes, summed in a
/// fixed order) (AVX-512).
__attribute__((target("avx512f"))) static inline float ck_exp_shift_sum16(float *row, size_t n, float shift) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 e0 = ck_exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), s));
        __m512 e1 = ck_exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j + 16), s));
        _mm512_storeu_ps(row + j, e0); _mm512_storeu_ps(row + j + 16, e1);
        a0 = _mm512_add_ps(a0, e0); a1 = _mm512_add_ps(a1, e1);
    }
    for (; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 e = _mm512_maskz_mov_ps(m, ck_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), s)));
        _mm512_mask_storeu_ps(row + j, m, e);
        a0 = _mm512_add_ps(a0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
#endif
