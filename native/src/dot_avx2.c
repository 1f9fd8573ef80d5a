/* dot_avx2.c — AVX2/FMA/F16C dots of every weight format (references: dot.c).
 *
 * Integer formats use the maddubs idiom: _mm256_maddubs_epi16 multiplies unsigned by signed bytes and adds
 * pairs into int16, _mm256_madd_epi16 widens to int32. Unsigned quants (Q4_0 and Q4_K 0..15, Q6_K 0..63) go in
 * as the unsigned operand directly; offsets (Q4_0's -8, Q6_K's -32) are folded in as a multiple of the
 * activation sums (per block for Q4_0, once per super-block through Q8_K's bsums for Q6_K). Q8_0 x Q8_0 uses
 * |a| and sign(b, a), which needs b != -128: activations come from the Q8_0 quantizer, whose codes stay within
 * -127..127 (weights may hold -128). */
#include <math.h>

#include "quant.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

/* ---- float rows ----------------------------------------------------------------------------------------- */
void ckls_vec_dot_f32_f32_avx2(int64_t n, float *s, const void *w, const void *x) {
    const float *a = w, *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += a[i] * b[i];
    *s = sum;
}

void ckls_vec_dot_f16_f32_avx2(int64_t n, float *s, const void *w, const void *x) {
    const ckls_f16 *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
#define LD16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(LD16(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(LD16(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(LD16(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(LD16(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(LD16(a + i), _mm256_loadu_ps(b + i), acc0);
#undef LD16
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += f16_to_f32(a[i]) * b[i];
    *s = sum;
}

void ckls_vec_dot_bf16_f32_avx2(int64_t n, float *s, const void *w, const void *x) {
    const ckls_bf16 *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
#define LDB(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(LDB(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(LDB(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(LDB(a + i), _mm256_loadu_ps(b + i), acc0);
#undef LDB
    float sum = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += ckls_bf16_to_f32(a[i]) * b[i];
    *s = sum;
}

/* ---- Q8_0 / Q4_0 x Q8_0 --------------------------------------------------------------------------------- */
void ckls_vec_dot_q8_0_q8_0_avx2(int64_t n, float *s, const void *w, const void *x) {
    const block_q8_0 *a = w, *b = x;
    const int64_t nb = n / QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        const __m256i p1 = dot_i8(_mm256_loadu_si256((const __m256i *)a[i + 1].qs),
                                  _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(a[i].d) * f16_to_f32(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(a[i + 1].d) * f16_to_f32(b[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i p = dot_i8(_mm256_loadu_si256((const __m256i *)a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(a[i].d) * f16_to_f32(b[i].d)), _mm256_cvtepi32_ps(p), acc0);
    }
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* 16 bytes of Q4_0 -> 32 unsigned levels 0..15 in element order (low nibbles = 0..15, high = 16..31) */
static inline __m256i unpack_q4_0(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* int32 sums (8 lanes) of (q - 8) * y for one Q4_0 block: q*y - 8*y, both through maddubs */
static inline __m256i dot_q4_0_block(const block_q4_0 *a, const block_q8_0 *b) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)b->qs);
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(unpack_q4_0(a->qs), y),
                                       _mm256_maddubs_epi16(_mm256_set1_epi8(8), y));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

void ckls_vec_dot_q4_0_q8_0_avx2(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = x;
    const int64_t nb = n / QK4_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i p0 = dot_q4_0_block(a + i, b + i), p1 = dot_q4_0_block(a + i + 1, b + i + 1);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(a[i].d) * f16_to_f32(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(a[i + 1].d) * f16_to_f32(b[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++)
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(a[i].d) * f16_to_f32(b[i].d)),
                               _mm256_cvtepi32_ps(dot_q4_0_block(a + i, b + i)), acc0);
    *s = hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- K-quants x Q8_K ------------------------------------------------------------------------------------ */
/* Q4_K's 12 scale bytes -> 8 scales (bytes 0..7) and 8 mins (bytes 8..15), all 6-bit, without leaving the
 * vector unit. With u0..u2 the three 32-bit words: scales 0-3 = u0 & 0x3f.., scales 4-7 = (u2 & 0x0f..) | top
 * bits of u0, mins 0-3 = u1 & 0x3f.., mins 4-7 = (u2 >> 4 & 0x0f..) | top bits of u1. Reads 16 bytes: the 4
 * past the scales are the block's first quants, masked off. */
static inline __m128i q4k_unpack_scales(const uint8_t *s12) {
    const __m128i v = _mm_loadu_si128((const __m128i *)s12);
    const __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
    const __m128i lo = _mm_and_si128(a, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i top = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 6),
                                      _mm_setr_epi32(0, 0x03030303, 0, 0x03030303));
    return _mm_or_si128(lo, _mm_slli_epi32(top, 4));
}

void ckls_vec_dot_q4_K_q8_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const block_q4_K *a = w;
    const block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        /* the next-but-one super-block, ahead of the hardware prefetcher (+20 % decode measured) */
        _mm_prefetch((const char *)(a + i + 2), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 2) + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 2) + 128, _MM_HINT_T0);
        const float d = b[i].d * f16_to_f32(a[i].d);
        const float dmin = -b[i].d * f16_to_f32(a[i].dmin);
        const __m256i mins_scales = _mm256_cvtepu8_epi16(q4k_unpack_scales(a[i].scales)); /* 8 sc, 8 m as i16 */
        /* mins: sum_j m_j * (bsums[2j] + bsums[2j+1]) */
        const __m256i bs = _mm256_loadu_si256((const __m256i *)b[i].bsums);
        const __m128i bsum8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_scales, 1), bsum8);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
        /* every 64 weights use scales 2c and 2c+1: broadcast that i16 pair across both lanes */
        const __m128i sc128 = _mm256_castsi256_si128(mins_scales);
        const __m256i scales = _mm256_set_m128i(sc128, sc128);
        const uint8_t *q4 = a[i].qs;
        const int8_t *q8 = b[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i sc_l = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c))));
            const __m256i sc_h = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c + 1))));
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q8 + 64 * c)));
            const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_madd_epi16(sc_l, pl), _mm256_madd_epi16(sc_h, ph)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
    *s = hsum_ps(acc) + _mm_cvtss_f32(acc_m);
}

/* One Q4_K row against four activation rows (xs bytes apart): the nibbles and scales are unpacked once for all
 * four tokens. Each token's arithmetic is that of ckls_vec_dot_q4_K_q8_K_avx2 in the same order, so results are bit-identical. */
void ckls_vec_dot_q4_K_q8_K_4c_avx2(int64_t n, float *s, const void *w, const void *x, int64_t xs) {
    const block_q4_K *a = w;
    const block_q8_K *b[4] = {x, (const block_q8_K *)((const char *)x + xs), (const block_q8_K *)((const char *)x + 2 * xs),
                              (const block_q8_K *)((const char *)x + 3 * xs)};
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4];
    __m128 acc_m[4];
    for (int t = 0; t < 4; t++) { acc[t] = _mm256_setzero_ps(); acc_m[t] = _mm_setzero_ps(); }
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float ad = f16_to_f32(a[i].d), amin = f16_to_f32(a[i].dmin);
        const __m256i mins_scales = _mm256_cvtepu8_epi16(q4k_unpack_scales(a[i].scales));
        const __m128i mins = _mm256_extracti128_si256(mins_scales, 1);
        const __m128i sc128 = _mm256_castsi256_si128(mins_scales);
        const __m256i scales = _mm256_set_m128i(sc128, sc128);
        __m256i sumi[4];
        for (int t = 0; t < 4; t++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)b[t][i].bsums);
            const __m128i bsum8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(-b[t][i].d * amin), _mm_cvtepi32_ps(_mm_madd_epi16(mins, bsum8)), acc_m[t]);
            sumi[t] = _mm256_setzero_si256();
        }
        const uint8_t *q4 = a[i].qs;
        for (int c = 0; c < 4; c++) {
            const __m256i sc_l = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c))));
            const __m256i sc_h = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * c + 1))));
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * c));
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            for (int t = 0; t < 4; t++) {
                const int8_t *q8 = b[t][i].qs + 64 * c;
                const __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
                const __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(sc_l, pl), _mm256_madd_epi16(sc_h, ph)));
            }
        }
        for (int t = 0; t < 4; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(b[t][i].d * ad), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
    for (int t = 0; t < 4; t++) {
        __m128 m = _mm_add_ps(acc_m[t], _mm_movehl_ps(acc_m[t], acc_m[t]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        s[t] = hsum_ps(acc[t]) + _mm_cvtss_f32(m);
    }
}

/* The 6-bit quants (without the -32 offset) of one half super-block, as four 32-byte vectors of 0..63 */
static inline void unpack_q6_K_half(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m2));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2));
}

void ckls_vec_dot_q6_K_q8_K_avx2(int64_t n, float *s, const void *w, const void *x) {
    const block_q6_K *a = w;
    const block_q8_K *b = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(a + i + 2) + 64 * l, _MM_HINT_T0);
        const float d = b[i].d * f16_to_f32(a[i].d);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)a[i].scales);
        /* the -32 offset: 32 * sum_g sc_g * bsums_g, subtracted once per super-block */
        const __m256i off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)b[i].bsums));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const int8_t *q8 = b[i].qs + 128 * h;
            __m256i q[4];
            unpack_q6_K_half(ql, qh, q);
            for (int k = 0; k < 4; k++) {
                const int g = 8 * h + 2 * k; /* scale index of the first 16 of these 32 */
                const __m128i idx = _mm_set_epi64x(0x0101010101010101LL * (g + 1), 0x0101010101010101LL * g);
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, idx));
                const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* One Q6_K row against four activation rows (xs bytes apart): the 6-bit quants and scales are unpacked once for
 * four tokens. Each token's lanes hold exactly ckls_vec_dot_q6_K_q8_K_avx2's integer sums and go through the same FMA and final
 * reduction, so results are bit-identical to it (the decode path). */
void ckls_vec_dot_q6_K_q8_K_4c_avx2(int64_t n, float *s, const void *w, const void *x, int64_t xs) {
    const block_q6_K *a = w;
    const block_q8_K *b[4] = {x, (const block_q8_K *)((const char *)x + xs), (const block_q8_K *)((const char *)x + 2 * xs),
                              (const block_q8_K *)((const char *)x + 3 * xs)};
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float ad = f16_to_f32(a[i].d);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)a[i].scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        __m256i sumi[4];
        for (int t = 0; t < 4; t++) {
            const __m256i off = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)b[t][i].bsums));
            sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            __m256i q[4];
            unpack_q6_K_half(ql, qh, q);
            for (int k = 0; k < 4; k++) {
                const int g = 8 * h + 2 * k;
                const __m128i idx = _mm_set_epi64x(0x0101010101010101LL * (g + 1), 0x0101010101010101LL * g);
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, idx));
                for (int t = 0; t < 4; t++) {
                    const int8_t *q8 = b[t][i].qs + 128 * h + 32 * k;
                    const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)q8));
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, sc));
                }
            }
        }
        for (int t = 0; t < 4; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(b[t][i].d * ad), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
    }
    for (int t = 0; t < 4; t++) s[t] = hsum_ps(acc[t]);
}

/* ---- 4 weight rows x 1 activation row ------------------------------------------------------------------- */
/* Same arithmetic per row as the 1-row kernel; the activation is loaded once and four independent accumulation
 * chains keep more multipliers busy (about +15% over four 1-row calls on Zen 3). Q4_K / Q6_K versions (4 rows,
 * and 2 rows twice) measured no faster than their 1-row kernels, which are bound by the per-row unpacking, so
 * those types use the 1-row fallback; Q4_0 gains about as much as Q8_0. */
#define ROW(p, r, stride, T) ((const T *)((const char *)(p) + (r) * (stride)))

/* Four rows' 8-lane block sums -> one int32 per row, [r0, r1, r2, r3]. */
static inline __m128i sum_rows4(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* Each block's four integer dots are finished to one int32 per row and scaled together: one conversion of the
 * four row scales (F16C) and one FMA per block instead of four broadcasts and four 8-lane FMAs. */
void ckls_vec_dot_q8_0_q8_0_4r_avx2(int64_t n, float *s, const void *w, int64_t ws, const void *x) {
    const block_q8_0 *b = x;
    const block_q8_0 *a0 = ROW(w, 0, ws, block_q8_0), *a1 = ROW(w, 1, ws, block_q8_0),
                     *a2 = ROW(w, 2, ws, block_q8_0), *a3 = ROW(w, 3, ws, block_q8_0);
    __m128 acc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++) {
        if ((i & 1) == 0) { /* four streams at once outrun the hardware prefetcher: ask ~8 blocks ahead */
            _mm_prefetch((const char *)(a0 + i + 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(a1 + i + 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(a2 + i + 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(a3 + i + 8), _MM_HINT_T0);
        }
        const __m256i y = _mm256_loadu_si256((const __m256i *)b[i].qs);
        const __m128i sum = sum_rows4(dot_i8(_mm256_loadu_si256((const __m256i *)a0[i].qs), y),
                                      dot_i8(_mm256_loadu_si256((const __m256i *)a1[i].qs), y),
                                      dot_i8(_mm256_loadu_si256((const __m256i *)a2[i].qs), y),
                                      dot_i8(_mm256_loadu_si256((const __m256i *)a3[i].qs), y));
        const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16((short)a0[i].d, (short)a1[i].d, (short)a2[i].d, (short)a3[i].d,
                                                      0, 0, 0, 0));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sum), _mm_mul_ps(dw, _mm_set1_ps(f16_to_f32(b[i].d))), acc);
    }
    _mm_storeu_ps(s, acc);
}

/* One Q8_0 row against four activation rows (xs bytes apart): |w| is formed once per block for the four tokens.
 * Lane t accumulates exactly what ckls_vec_dot_q8_0_q8_0_4r_avx2's lane for this row does (same integer block sums, same scale
 * product, same FMA order), so prompt and decode paths give bit-identical outputs. */
void ckls_vec_dot_q8_0_q8_0_4c_avx2(int64_t n, float *s, const void *w, const void *x, int64_t xs) {
    const block_q8_0 *a = w;
    const block_q8_0 *b0 = x, *b1 = ROW(x, 1, xs, block_q8_0), *b2 = ROW(x, 2, xs, block_q8_0),
                     *b3 = ROW(x, 3, xs, block_q8_0);
    __m128 acc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const __m256i wq = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256i aw = _mm256_sign_epi8(wq, wq), ones = _mm256_set1_epi16(1);
#define DOT_T(b) _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(b)[i].qs), wq)), ones)
        const __m128i sum = sum_rows4(DOT_T(b0), DOT_T(b1), DOT_T(b2), DOT_T(b3));
#undef DOT_T
        const __m128 dy = _mm_cvtph_ps(_mm_setr_epi16((short)b0[i].d, (short)b1[i].d, (short)b2[i].d, (short)b3[i].d,
                                                      0, 0, 0, 0));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sum), _mm_mul_ps(dy, _mm_set1_ps(f16_to_f32(a[i].d))), acc);
    }
    _mm_storeu_ps(s, acc);
}

/* The end of a 4x4 tile block: h[t] holds token t's four row sums as [r0 r1 r2 r3 | r0 r1 r2 r3] halves; fold
 * the halves, pair tokens (0,1) and (2,3), and scale by the rows' and tokens' f16 block scales: per lane the
 * same float(sum) * (dw * dy) FMA as the 4-row decode kernels. */
static inline void tile4x4_accumulate(__m256i h0, __m256i h1, __m256i h2, __m256i h3, __m128i dw_h, __m128i dy_h,
                                      __m256 *acc01, __m256 *acc23) {
    const __m256i s01 = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
    const __m256i s23 = _mm256_add_epi32(_mm256_permute2x128_si256(h2, h3, 0x20), _mm256_permute2x128_si256(h2, h3, 0x31));
    const __m128 dw = _mm_cvtph_ps(dw_h), dy = _mm_cvtph_ps(dy_h);
    const __m256 dw2 = _mm256_set_m128(dw, dw);
    const __m256 dy01 = _mm256_set_m128(_mm_shuffle_ps(dy, dy, 0x55), _mm_shuffle_ps(dy, dy, 0x00));
    const __m256 dy23 = _mm256_set_m128(_mm_shuffle_ps(dy, dy, 0xff), _mm_shuffle_ps(dy, dy, 0xaa));
    *acc01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s01), _mm256_mul_ps(dw2, dy01), *acc01);
    *acc23 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s23), _mm256_mul_ps(dw2, dy23), *acc23);
}

/* Four Q8_0 rows against four activation rows: a 4x4 register tile for prompt processing. Each |w| and sign
 * source is formed once per block for four tokens and each activation load serves four rows; the sixteen
 * integer block sums are finished two tokens per vector. Every (row, token) lane does exactly what
 * ckls_vec_dot_q8_0_q8_0_4r_avx2's lane does — same exact integer sum, same scale product, same FMA chain in block order — so the
 * outputs are bit-identical to the decode path. s[t * 4 + r]. */
void ckls_vec_dot_q8_0_q8_0_4x4_avx2(int64_t n, float *s, const void *w, int64_t ws, const void *x, int64_t xs) {
    const block_q8_0 *a0 = ROW(w, 0, ws, block_q8_0), *a1 = ROW(w, 1, ws, block_q8_0),
                     *a2 = ROW(w, 2, ws, block_q8_0), *a3 = ROW(w, 3, ws, block_q8_0);
    const block_q8_0 *b0 = x, *b1 = ROW(x, 1, xs, block_q8_0), *b2 = ROW(x, 2, xs, block_q8_0),
                     *b3 = ROW(x, 3, xs, block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc01 = _mm256_setzero_ps(), acc23 = _mm256_setzero_ps(); /* [t0: r0..r3 | t1: r0..r3], [t2 | t3] */
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)a0[i].qs), w1 = _mm256_loadu_si256((const __m256i *)a1[i].qs),
                      w2 = _mm256_loadu_si256((const __m256i *)a2[i].qs), w3 = _mm256_loadu_si256((const __m256i *)a3[i].qs);
        const __m256i u0 = _mm256_sign_epi8(w0, w0), u1 = _mm256_sign_epi8(w1, w1), u2 = _mm256_sign_epi8(w2, w2),
                      u3 = _mm256_sign_epi8(w3, w3);
        /* one token's four block sums, each still 8 lanes, folded to [r0 r1 r2 r3 | r0 r1 r2 r3] halves */
#define TOK(b) ({                                                                                                 \
        const __m256i y = _mm256_loadu_si256((const __m256i *)(b)[i].qs);                                         \
        _mm256_hadd_epi32(                                                                                        \
            _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u0, _mm256_sign_epi8(y, w0)), ones),         \
                              _mm256_madd_epi16(_mm256_maddubs_epi16(u1, _mm256_sign_epi8(y, w1)), ones)),        \
            _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u2, _mm256_sign_epi8(y, w2)), ones),         \
                              _mm256_madd_epi16(_mm256_maddubs_epi16(u3, _mm256_sign_epi8(y, w3)), ones)));       \
    })
        const __m256i h0 = TOK(b0), h1 = TOK(b1), h2 = TOK(b2), h3 = TOK(b3);
#undef TOK
        tile4x4_accumulate(h0, h1, h2, h3, _mm_setr_epi16((short)a0[i].d, (short)a1[i].d, (short)a2[i].d, (short)a3[i].d, 0, 0, 0, 0),
                           _mm_setr_epi16((short)b0[i].d, (short)b1[i].d, (short)b2[i].d, (short)b3[i].d, 0, 0, 0, 0),
                           &acc01, &acc23);
    }
    _mm256_storeu_ps(s, acc01);
    _mm256_storeu_ps(s + 8, acc23);
}

/* Like ckls_vec_dot_q8_0_q8_0_4r_avx2: each block's four integer dots (nibbles - 8 against the activation, exact) are finished to
 * one int32 per row and scaled by one 4-lane FMA, the arithmetic ckls_vec_dot_q4_0_q8_0_4x4_avx2 repeats per token. */
void ckls_vec_dot_q4_0_q8_0_4r_avx2(int64_t n, float *s, const void *w, int64_t ws, const void *x) {
    const block_q8_0 *b = x;
    const block_q4_0 *a0 = ROW(w, 0, ws, block_q4_0), *a1 = ROW(w, 1, ws, block_q4_0),
                     *a2 = ROW(w, 2, ws, block_q4_0), *a3 = ROW(w, 3, ws, block_q4_0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m128 acc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK4_0; i++) {
        if ((i & 3) == 0) { /* four streams outrun the hardware prefetcher: ask ~12 blocks ahead */
            _mm_prefetch((const char *)(a0 + i + 12), _MM_HINT_T0);
            _mm_prefetch((const char *)(a1 + i + 12), _MM_HINT_T0);
            _mm_prefetch((const char *)(a2 + i + 12), _MM_HINT_T0);
            _mm_prefetch((const char *)(a3 + i + 12), _MM_HINT_T0);
        }
        const __m256i y = _mm256_loadu_si256((const __m256i *)b[i].qs);
        const __m256i y8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), y); /* the -8 offset, shared by the rows */
#define ROWDOT(a) _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(unpack_q4_0((a)[i].qs), y), y8), ones)
        const __m128i sum = sum_rows4(ROWDOT(a0), ROWDOT(a1), ROWDOT(a2), ROWDOT(a3));
#undef ROWDOT
        const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16((short)a0[i].d, (short)a1[i].d, (short)a2[i].d, (short)a3[i].d,
                                                      0, 0, 0, 0));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sum), _mm_mul_ps(dw, _mm_set1_ps(f16_to_f32(b[i].d))), acc);
    }
    _mm_storeu_ps(s, acc);
}

/* Four Q4_0 rows against four activation rows (see ckls_vec_dot_q8_0_q8_0_4x4_avx2): the nibbles of a block are unpacked once for
 * four tokens, which is where a one-token-at-a-time prompt spends its time. Per (row, token) the same exact
 * integer sum, scale product and FMA chain as ckls_vec_dot_q4_0_q8_0_4r_avx2, so prompt and decode outputs are bit-identical. */
void ckls_vec_dot_q4_0_q8_0_4x4_avx2(int64_t n, float *s, const void *w, int64_t ws, const void *x, int64_t xs) {
    const block_q4_0 *a0 = ROW(w, 0, ws, block_q4_0), *a1 = ROW(w, 1, ws, block_q4_0),
                     *a2 = ROW(w, 2, ws, block_q4_0), *a3 = ROW(w, 3, ws, block_q4_0);
    const block_q8_0 *b0 = x, *b1 = ROW(x, 1, xs, block_q8_0), *b2 = ROW(x, 2, xs, block_q8_0),
                     *b3 = ROW(x, 3, xs, block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
    __m256 acc01 = _mm256_setzero_ps(), acc23 = _mm256_setzero_ps(); /* [t0: r0..r3 | t1: r0..r3], [t2 | t3] */
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const __m256i w0 = unpack_q4_0(a0[i].qs), w1 = unpack_q4_0(a1[i].qs), w2 = unpack_q4_0(a2[i].qs),
                      w3 = unpack_q4_0(a3[i].qs);
#define TOK(b) ({                                                                                                 \
        const __m256i y = _mm256_loadu_si256((const __m256i *)(b)[i].qs);                                         \
        const __m256i y8 = _mm256_maddubs_epi16(eights, y);                                                       \
        _mm256_hadd_epi32(                                                                                        \
            _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w0, y), y8), ones),         \
                              _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w1, y), y8), ones)),        \
            _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w2, y), y8), ones),         \
                              _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(w3, y), y8), ones)));       \
    })
        const __m256i h0 = TOK(b0), h1 = TOK(b1), h2 = TOK(b2), h3 = TOK(b3);
#undef TOK
        tile4x4_accumulate(h0, h1, h2, h3, _mm_setr_epi16((short)a0[i].d, (short)a1[i].d, (short)a2[i].d, (short)a3[i].d, 0, 0, 0, 0),
                           _mm_setr_epi16((short)b0[i].d, (short)b1[i].d, (short)b2[i].d, (short)b3[i].d, 0, 0, 0, 0),
                           &acc01, &acc23);
    }
    _mm256_storeu_ps(s, acc01);
    _mm256_storeu_ps(s + 8, acc23);
}

#undef ROW

#endif
