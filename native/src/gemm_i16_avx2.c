/* gemm_i16_avx2.c — gemm_i16.c's kernels with AVX2, bit for bit their references: the row quantizer on 8 lanes,
 * and the product as madd (16-bit pairs into int32) and add, a block's int32 sums scaled by one FMA. */
#include <math.h>

#include "backward.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

#define INLINE static inline __attribute__((always_inline))

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

/* nt tokens x 16 columns: per block, 16 steps of (a pair of each token's values broadcast) x (8 columns' pairs of
 * each group), then each sum to float times the token's and the column's scales */
INLINE void gemm_i16x8(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                       const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, const int nt, int accumulate) {
    __m256 f[4][2];
    for (int t = 0; t < nt; t++)
        for (int g = 0; g < 2; g++) f[t][g] = accumulate ? _mm256_loadu_ps(c + t * ldc + 8 * g) : _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const block_i16x8 *w0 = w + b, *w1 = w + ws + b;
        __m256i s[4][2];
        for (int t = 0; t < nt; t++) s[t][0] = s[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 4 /* all 16 steps spill the broadcasts; 4: 1.1x the rolled loop */
        for (int p = 0; p < CKLS_I16_BLOCK / 2; p++) {
            const __m256i b0 = _mm256_load_si256((const __m256i *)w0->q[p]), b1 = _mm256_load_si256((const __m256i *)w1->q[p]);
            for (int t = 0; t < nt; t++) {
                int32_t pair;
                memcpy(&pair, a + t * lda + b * CKLS_I16_BLOCK + 2 * p, sizeof pair);
                const __m256i x = _mm256_set1_epi32(pair);
                s[t][0] = _mm256_add_epi32(s[t][0], _mm256_madd_epi16(x, b0));
                s[t][1] = _mm256_add_epi32(s[t][1], _mm256_madd_epi16(x, b1));
            }
        }
        const __m256 d0 = _mm256_loadu_ps(w0->d), d1 = _mm256_loadu_ps(w1->d);
        for (int t = 0; t < nt; t++) {
            const __m256 st = _mm256_broadcast_ss(sa + t * ldsa + b);
            f[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][0]), _mm256_mul_ps(st, d0), f[t][0]);
            f[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][1]), _mm256_mul_ps(st, d1), f[t][1]);
        }
    }
    for (int t = 0; t < nt; t++)
        for (int g = 0; g < 2; g++) _mm256_storeu_ps(c + t * ldc + 8 * g, f[t][g]);
}

/* one specialisation per token count, so the token loops unroll and the sums stay in registers */
void ckls_gemm_i16x8_avx2(int64_t nb, const int16_t *a, int64_t lda, const float *sa, int64_t ldsa,
                          const block_i16x8 *w, int64_t ws, float *c, int64_t ldc, int nt, int accumulate) {
    switch (nt) {
    case 4: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 4, accumulate); break;
    case 3: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 3, accumulate); break;
    case 2: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 2, accumulate); break;
    default: gemm_i16x8(nb, a, lda, sa, ldsa, w, ws, c, ldc, 1, accumulate); break;
    }
}

#endif
