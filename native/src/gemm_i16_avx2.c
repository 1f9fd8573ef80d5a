/* gemm_i16_avx2.c — gemm_i16.c's kernels with AVX2, bit for bit their references: the row quantizer on 8 lanes,
 * and the product (gemm_i16_body.h) as madd (16-bit pairs into int32) and add, a block's int32 sums scaled by one
 * FMA. */
#include <math.h>

#include "backward.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

void ckls_quantize_i16_avx2(const float *x, int16_t *q, int64_t n, float *d) {
    const __m256 mx = _mm256_set1_ps((float)CKLS_I16_MAX), mn = _mm256_set1_ps(-(float)CKLS_I16_MAX);
    for (int64_t b = 0; b < (n + CKLS_I16_BLOCK - 1) / CKLS_I16_BLOCK; b++) {
        const int64_t i0 = b * CKLS_I16_BLOCK, m = n - i0 < CKLS_I16_BLOCK ? n - i0 : CKLS_I16_BLOCK;
        float tail[CKLS_I16_BLOCK];
        const float *xb = x + i0;
        if (m < CKLS_I16_BLOCK) { /* the row's end: zeros past it, as the reference */
            for (int i = 0; i < CKLS_I16_BLOCK; i++) tail[i] = i < m ? xb[i] : 0.0f;
            xb = tail;
        }
        __m256 v[4], am = _mm256_setzero_ps(); /* amax second: max_ps(a, NaN) returns NaN's other operand */
        for (int k = 0; k < 4; k++) am = _mm256_max_ps(abs_ps(v[k] = _mm256_loadu_ps(xb + 8 * k)), am);
        const float amax = hmax_ps(am);
        const float id = amax ? (float)CKLS_I16_MAX / amax : 0.0f;
        d[b] = amax / (float)CKLS_I16_MAX;
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            __m256 s = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
            s = _mm256_and_ps(s, _mm256_cmp_ps(s, s, _CMP_ORD_Q)); /* NaN -> 0 */
            r[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(s, mn), mx)); /* to nearest, ties to even */
        }
        /* packs works per 128-bit lane: put the quarters back in order */
        _mm256_storeu_si256((__m256i *)(q + i0), _mm256_permute4x64_epi64(_mm256_packs_epi32(r[0], r[1]), 0xD8));
        _mm256_storeu_si256((__m256i *)(q + i0 + 16), _mm256_permute4x64_epi64(_mm256_packs_epi32(r[2], r[3]), 0xD8));
    }
}

#define I16_NAME ckls_gemm_i16x8_avx2
#define I16_DOT(s, x, w) _mm256_add_epi32(s, _mm256_madd_epi16(x, w))
#define I16_UNROLL 4
#include "gemm_i16_body.h"

#endif
