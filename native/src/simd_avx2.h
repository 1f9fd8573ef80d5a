/* simd_avx2.h — small AVX2/FMA/F16C helpers the *_avx2.c kernel files share (include only from files built with
 * those flags, inside their #if guard). */
#ifndef CKLS_SIMD_AVX2_H
#define CKLS_SIMD_AVX2_H

#include <immintrin.h>

#include "internal.h"

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float f16_to_f32(ckls_f16 h) { return _cvtsh_ss(h); }

/* int32 sums of a*b over 32 signed bytes, 8 lanes */
static inline __m256i dot_i8(__m256i a, __m256i b) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __m256 abs_ps(__m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }

/* 4 vectors of 8 int32 (each within int8 range) -> 32 int8 in order */
static inline __m256i pack_i32x4_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* exp_poly of softmax_row.c on 8 lanes: the same steps with the same FMAs (internal.h: CKLS_EXP_*); 2^k added
 * into the exponent bits: the shifter's bits shifted up by 23 are k's */
static inline __m256 exp8(__m256 x) {
    const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(CKLS_EXP_LO), _CMP_GE_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(CKLS_EXP_HI));
    const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(CKLS_EXP_LOG2E), _mm256_set1_ps(CKLS_EXP_SHIFTER));
    const __m256 k = _mm256_sub_ps(t, _mm256_set1_ps(CKLS_EXP_SHIFTER));
    const __m256 r = _mm256_fmadd_ps(k, _mm256_set1_ps(CKLS_EXP_LN2_LO), _mm256_fmadd_ps(k, _mm256_set1_ps(CKLS_EXP_LN2_HI), x));
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(CKLS_EXP_C6), r, _mm256_set1_ps(CKLS_EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CKLS_EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CKLS_EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(CKLS_EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_and_ps(_mm256_castsi256_ps(e), keep);
}

#endif
