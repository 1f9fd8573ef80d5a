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

/* lane b of the result = the max of m[b]'s lanes (no NaN in m: abs_ps's NaNs were dropped by the max) */
static inline __m256 hmax8_ps(const __m256 m[8]) {
    __m256 t[4], u[2];
    for (int i = 0; i < 4; i++)
        t[i] = _mm256_max_ps(_mm256_unpacklo_ps(m[2 * i], m[2 * i + 1]), _mm256_unpackhi_ps(m[2 * i], m[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        u[i] = _mm256_max_ps(_mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44), _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0xEE));
    return _mm256_max_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31));
}

/* lane b of the result = the sum of s[b]'s lanes */
static inline __m256i hsum8_epi32(const __m256i s[8]) {
    const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
    const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* Eight blocks at a time (cnt <= 8 at the row's end): their maxima in one vector, so the two divisions and the
 * f16 rounding of the scales run once for eight blocks, and the block terms (ckls_q8_0_a7_terms) come from the
 * quants while they are in registers. Lane for lane the reference's arithmetic: the same max (NaN dropped), the
 * same IEEE divisions and conversions. */
void ckls_quantize_q8_0_a7_avx2(const float *x, void *y, int64_t n, int32_t *off, float *d) {
    block_q8_0 *b = y;
    const __m256 lo = _mm256_set1_ps(-64.0f), hi = _mm256_set1_ps(63.0f), zero = _mm256_setzero_ps();
    const int64_t nb = n / QK8_0;
    for (int64_t i0 = 0; i0 < nb; i0 += 8, x += 8 * QK8_0) {
        const int cnt = nb - i0 < 8 ? (int)(nb - i0) : 8;
        __m256 m[8];
        for (int j = 0; j < 8; j++) {
            m[j] = zero; /* amax second: max_ps(a, NaN) returns NaN's other operand, as fmaxf */
            if (j < cnt)
                for (int k = 0; k < 4; k++) m[j] = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + QK8_0 * j + 8 * k)), m[j]);
        }
        const __m256 amax = hmax8_ps(m);
        const __m256 nz = _mm256_cmp_ps(amax, zero, _CMP_NEQ_OQ);
        const __m128i dh = _mm256_cvtps_ph(_mm256_div_ps(amax, hi), _MM_FROUND_TO_NEAREST_INT);
        float id[8] __attribute__((aligned(32))), dv[8] __attribute__((aligned(32)));
        uint16_t dq[8];
        _mm256_store_ps(id, _mm256_and_ps(_mm256_div_ps(hi, amax), nz));
        _mm256_store_ps(dv, _mm256_cvtph_ps(dh));
        _mm_storeu_si128((__m128i *)dq, dh);
        __m256i sum[8];
        for (int j = 0; j < 8; j++) {
            sum[j] = _mm256_setzero_si256();
            if (j >= cnt) continue;
            const __m256 vid = _mm256_broadcast_ss(id + j);
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 r = _mm256_mul_ps(_mm256_loadu_ps(x + QK8_0 * j + 8 * k), vid);
                r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)); /* NaN -> 0 */
                q[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi)); /* to nearest, ties to even */
            }
            sum[j] = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            b[i0 + j].d = dq[j];
            _mm256_storeu_si256((__m256i *)b[i0 + j].qs, pack_i32x4_i8(q[0], q[1], q[2], q[3]));
        }
        if (!off) continue;
        int32_t o[8];
        _mm256_storeu_si256((__m256i *)o, _mm256_mullo_epi32(hsum8_epi32(sum), _mm256_set1_epi32(-128)));
        for (int j = 0; j < cnt; j++) off[i0 + j] = o[j], d[i0 + j] = dv[j];
    }
}

#endif
