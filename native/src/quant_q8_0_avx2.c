/* quant_q8_0_avx2.c — the Q8_0 activation quantizer with AVX2: bit for bit ckls_quantize_q8_0_ref (quant_q8_0.c),
 * the same operations in the same order, so switching ISA never changes a token; and the trainer's 7-bit form
 * (ckls_quantize_q8_0_a7_ref), bit for bit too. */
#include <math.h>

#include "quant.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

/* roundf (half away from zero) exactly: trunc, then step away from zero when the dropped part is >= 0.5. */
static inline __m256 round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_sub_ps(v, t); /* exact */
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 ge = _mm256_cmp_ps(_mm256_and_ps(frac, absmask), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_andnot_ps(absmask, v)); /* copysign(1, v) */
    return _mm256_add_ps(t, _mm256_and_ps(ge, one));
}

void ckls_quantize_q8_0_avx2(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
        /* fmaxf in the reference ignores NaN; max_ps(a, NaN) returns the second operand, so keep amax second */
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) m = _mm256_max_ps(abs_ps(v[k]), m);
        const float amax = hmax_ps(m);
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = (ckls_f16)_cvtss_sh(d, 0);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 r = round_away(_mm256_mul_ps(v[k], vid));
            r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)); /* NaN -> 0 like the reference */
            r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f)); /* +-Inf (denormal d) */
            q[k] = _mm256_cvttps_epi32(r);
        }
        _mm256_storeu_si256((__m256i *)b[i].qs, pack_i32x4_i8(q[0], q[1], q[2], q[3]));
    }
}

void ckls_quantize_q8_0_a7_avx2(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    const __m256 lo = _mm256_set1_ps(-64.0f), hi = _mm256_set1_ps(63.0f);
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
        __m256 m = _mm256_setzero_ps(); /* amax second: max_ps(a, NaN) returns NaN's other operand, as fmaxf */
        for (int k = 0; k < 4; k++) m = _mm256_max_ps(abs_ps(v[k]), m);
        const float amax = hmax_ps(m);
        const float id = amax ? 63.0f / amax : 0.0f;
        b[i].d = (ckls_f16)_cvtss_sh(amax / 63.0f, 0);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 r = _mm256_mul_ps(v[k], vid);
            r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)); /* NaN -> 0 */
            q[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi)); /* to nearest, ties to even */
        }
        _mm256_storeu_si256((__m256i *)b[i].qs, pack_i32x4_i8(q[0], q[1], q[2], q[3]));
    }
}

#endif
