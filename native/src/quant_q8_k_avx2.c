/* quant_q8_k_avx2.c — the Q8_K activation quantizer with AVX2: bit for bit ckls_quantize_q8_K_ref (quant_q8_k.c),
 * bsums included. */
#include <math.h>

#include "quant.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

void ckls_quantize_q8_K_avx2(const float *x, void *y, int64_t n) {
    block_q8_K *b = y;
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        /* first element of largest magnitude, as the reference's strict '>' scan finds it */
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + k)), m);
        const float amax = hmax_ps(m);
        if (!(amax > 0.0f)) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float max = 0.0f;
        for (int k = 0; k < QK_K; k += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + k)), _mm256_set1_ps(amax),
                                                             _CMP_EQ_OQ));
            if (hit) { max = x[k + __builtin_ctz((unsigned)hit)]; break; }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) {
                const __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * j), vs), magic);
                const __m256i v = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), mant), bias);
                q[j] = _mm256_max_epi32(_mm256_min_epi32(v, lim), _mm256_set1_epi32(-128));
            }
            const __m256i q8 = pack_i32x4_i8(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(b[i].qs + k), q8);
            /* bsums of the two groups of 16 */
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q8);       /* 16 pair sums */
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));        /* 8 quad sums */
            __m128i lo = _mm256_castsi256_si128(s32), hi = _mm256_extracti128_si256(s32, 1);
            lo = _mm_hadd_epi32(lo, hi);                                           /* 4 sums of 8 */
            lo = _mm_hadd_epi32(lo, lo);                                           /* 2 sums of 16 */
            b[i].bsums[k / 16] = (int16_t)_mm_extract_epi32(lo, 0);
            b[i].bsums[k / 16 + 1] = (int16_t)_mm_extract_epi32(lo, 1);
        }
        b[i].d = 1.0f / iscale;
    }
}

#endif
