/* dot_avx512.c — AVX-512 (F, BW, DQ, VL) kernels where the wider registers pay off plainly: float dots and the
 * 32-element block formats two blocks per register. Everything else comes from the AVX2 table underneath
 * (dispatch.c layers this one on top of it). */
#include "quant.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

static inline float f16_to_f32(ckls_f16 h) { return _cvtsh_ss(h); }

void ckls_vec_dot_f32_f32_avx512(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    if (i < n) { /* masked tail: up to two partial vectors */
        for (; i < n; i += 16) {
            const int64_t left = n - i;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
        }
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void ckls_vec_dot_f16_f32_avx512(int64_t n, float *s, const void *w, const void *x) {
    const ckls_f16 *a = w;
    const float *b = x;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + i))), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + i + 16))),
                               _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        const int64_t left = n - i;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        const __m512 wa = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i));
        acc0 = _mm512_fmadd_ps(wa, _mm512_maskz_loadu_ps(m, b + i), acc0);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* int32 sums of a*b over 64 signed bytes (16 lanes, 4 bytes each); b must avoid -128 where a < 0 */
static inline __m512i dot_i8(__m512i a, __m512i b) {
    const __mmask64 neg = _mm512_movepi8_mask(a);
    const __m512i sb = _mm512_mask_sub_epi8(b, neg, _mm512_setzero_si512(), b);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(a), sb), _mm512_set1_epi16(1));
}

static inline __m512 scale2(float d0, float d1) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d0)), _mm256_set1_ps(d1), 1);
}

static inline __m512i load2_q8(const int8_t *p0, const int8_t *p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p0)),
                              _mm256_loadu_si256((const __m256i *)p1), 1);
}

void ckls_vec_dot_q8_0_q8_0_avx512(int64_t n, float *s, const void *w, const void *x) {
    const block_q8_0 *a = w, *b = x;
    const int64_t nb = n / QK8_0;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i p = dot_i8(load2_q8(a[i].qs, a[i + 1].qs), load2_q8(b[i].qs, b[i + 1].qs));
        const __m512 d = scale2(f16_to_f32(a[i].d) * f16_to_f32(b[i].d), f16_to_f32(a[i + 1].d) * f16_to_f32(b[i + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    for (; i < nb; i++) {
        int32_t t = 0;
        for (int j = 0; j < QK8_0; j++) t += a[i].qs[j] * b[i].qs[j];
        sum += (float)t * (f16_to_f32(a[i].d) * f16_to_f32(b[i].d));
    }
    *s = sum;
}

static inline __m256i unpack_q4_0(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

void ckls_vec_dot_q4_0_q8_0_avx512(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = x;
    const int64_t nb = n / QK4_0;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i q4 = _mm512_inserti64x4(_mm512_castsi256_si512(unpack_q4_0(a[i].qs)), unpack_q4_0(a[i + 1].qs), 1);
        const __m512i p = dot_i8(q4, load2_q8(b[i].qs, b[i + 1].qs));
        const __m512 d = scale2(f16_to_f32(a[i].d) * f16_to_f32(b[i].d), f16_to_f32(a[i + 1].d) * f16_to_f32(b[i + 1].d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    for (; i < nb; i++) {
        int32_t t = 0;
        for (int j = 0; j < QK4_0 / 2; j++)
            t += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
        sum += (float)t * (f16_to_f32(a[i].d) * f16_to_f32(b[i].d));
    }
    *s = sum;
}

#endif
