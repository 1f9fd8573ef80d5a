/* repack_avx2.c — AVX2 kernels over the interleaved 8-row layouts (block_q4_0x8, block_q4_Kx8, block_q8_0x8;
 * repack.c), and Q8_0's against the fine-tuner's 7-bit activations.
 *
 * One 32-byte load holds 4 quant bytes of each of 8 rows; masked / shifted it gives 8 rows x 4 weights as bytes,
 * and the token's matching 4 activation bytes, broadcast to every lane, go in as maddubs' signed operand. Each
 * row's products stay in its own two int16 lanes: the eight 4-element products of a 32-weight block add up in
 * int16 (|sum| <= 8 * 2 * 15 * 128 = 30720), one madd widens them to the row's int32, and a single 8-lane FMA
 * scales 8 rows at once — no horizontal adds, no per-row scale broadcasts. Unpacked weights are reused for up
 * to 4 tokens. Per lane the arithmetic is that of ckls_gemm_q4_*x8_ref (exact integer sums, the same FMAs in
 * block order), whatever nt is, so a token gets the same logits in a prompt batch as alone. */
#include "quant.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

/* the 4 activation bytes at p in every 32-bit lane */
INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

INLINE void gemm_q4_0x8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                        const int16_t *aux, const int nt) {
    const block_q4_0x8 *a = w;
    const int64_t nb = n / QK4_0;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(a + i + 4), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 4) + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 4) + 128, _MM_HINT_T0);
        __m256i lo[4], hi[4]; /* lo[m]: elements 4m..4m+3 of each row; hi[m]: 16+4m.. */
        for (int m = 0; m < 4; m++) {
            const __m256i p = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * m));
            lo[m] = _mm256_and_si256(p, m4);
            hi[m] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        for (int t = 0; t < nt; t++) {
            const block_q8_0 *b = (const block_q8_0 *)((const char *)xq + t * xs) + i;
            __m256i p = _mm256_maddubs_epi16(lo[0], bcast4(b->qs));
            for (int m = 1; m < 4; m++) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo[m], bcast4(b->qs + 4 * m)));
            for (int m = 0; m < 4; m++) p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi[m], bcast4(b->qs + 16 + 4 * m)));
            const __m256i sum = _mm256_sub_epi32(_mm256_madd_epi16(p, ones), _mm256_set1_epi32(8 * aux[t * nb + i]));
            const __m256 dy = _mm256_set1_ps(_cvtsh_ss(b->d));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, dy), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* sub-block j's 8 row scales (bytes) as int16 pairs [sc_r, sc_r] per 32-bit lane, for madd against a row's
 * two int16 partial sums */
INLINE __m256i scales_x2(const uint8_t *sc8) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc8));
    return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}

INLINE void gemm_q4_Kx8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs, const int nt) {
    const block_q4_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const block_q8_K *b[4];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_K *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        __m256i sumi[4];
        for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i pl[4], ph[4]; /* int16 partial sums of sub-blocks 2c (low nibbles) and 2c+1 (high) */
            for (int m = 0; m < 8; m++) {
                const __m256i p = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * (8 * c + m)));
                const __m256i lo = _mm256_and_si256(p, m4), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
                for (int t = 0; t < nt; t++) {
                    const int8_t *y = b[t][i].qs + 64 * c + 4 * m;
                    const __m256i l = _mm256_maddubs_epi16(lo, bcast4(y)), h = _mm256_maddubs_epi16(hi, bcast4(y + 32));
                    pl[t] = m ? _mm256_add_epi16(pl[t], l) : l;
                    ph[t] = m ? _mm256_add_epi16(ph[t], h) : h;
                }
            }
            const __m256i sl = scales_x2(a[i].scales[2 * c]), sh = scales_x2(a[i].scales[2 * c + 1]);
            for (int t = 0; t < nt; t++)
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(pl[t], sl), _mm256_madd_epi16(ph[t], sh)));
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].dmin));
        __m256i mins[4]; /* [min_r(2p), min_r(2p+1)] int16 pairs */
        for (int p = 0; p < 4; p++) mins[p] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)a[i].mins[p]));
        for (int t = 0; t < nt; t++) {
            /* the token's 32-element sums B_j, then sum_j min_rj * B_j per row lane */
            const __m256i bs = _mm256_loadu_si256((const __m256i *)b[t][i].bsums);
            const __m128i b8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            __m256i summ = _mm256_madd_epi16(mins[0], _mm256_broadcastd_epi32(b8));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mins[1], _mm256_broadcastd_epi32(_mm_shuffle_epi32(b8, 0x55))));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mins[2], _mm256_broadcastd_epi32(_mm_shuffle_epi32(b8, 0xaa))));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mins[3], _mm256_broadcastd_epi32(_mm_shuffle_epi32(b8, 0xff))));
            const __m256 dy = _mm256_set1_ps(b[t][i].d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, dy), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dm, dy), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* the 272 bytes of a Q8_0 group's block, three blocks ahead */
INLINE void prefetch_q8_0x8(const block_q8_0x8 *p) {
    for (int k = 0; k < 5; k++) _mm_prefetch((const char *)p + 64 * k, _MM_HINT_T0);
}

/* Q8_0: both operands signed, so maddubs takes |w| against y signed by w (as the row kernels' dot_i8 does; a
 * pair of products is at most 2 * 127 * 127, no saturation). The pairs are widened to int32 for every 4-byte
 * group (two groups would overflow int16) and summed per row lane: the block's exact integer sum, then one
 * 8-lane FMA with the row kernels' scale product dw * dy. |w| and the sign sources are formed once per block
 * for up to 4 tokens. */
INLINE void gemm_q8_0x8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs, const int nt) {
    const block_q8_0x8 *a = w;
    const int64_t nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const block_q8_0 *b[4];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        prefetch_q8_0x8(a + i + 3);
        __m256i sum[4];
        for (int m = 0; m < 8; m++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * m)), u = _mm256_sign_epi8(q, q);
            for (int t = 0; t < nt; t++) {
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(bcast4(b[t][i].qs + 4 * m), q)), ones);
                sum[t] = m ? _mm256_add_epi32(sum[t], p) : p;
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(b[t][i].d))), acc[t]);
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* Q8_0 weights x 7-bit activations (|y| <= 64: ckls_quantize_q8_0_a7_ref), the fine-tuner's products: w + 128
 * (w xor 0x80, every byte, -128 included) is unsigned, so maddubs takes it against y as it is — a pair of products
 * is at most 2 * 255 * 64 = 32640, no saturation — and the block sum starts at off = -128 * sum(y). Two port-0/1
 * operations per 32 multiply-adds instead of gemm_q8_0x8's three (no sign per token), and the token's block terms
 * (off, d as f32: ckls_q8_0_a7_terms) are broadcast straight from memory. Per lane the arithmetic of
 * ckls_gemm_q8_0x8_ref: the exact integer block sum, then the same FMA. */
INLINE void gemm_q8_0x8_a7(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int32_t *off, const float *xd, const int nt) {
    const block_q8_0x8 *a = w;
    const int64_t nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const block_q8_0 *b[4];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        prefetch_q8_0x8(a + i + 3);
        __m256i u[8]; /* the block's 8 x 32 weights + 128, in registers for every token (token-major: m-major
                         * sums get reassociated by the compiler into a tree that spills) */
        for (int m = 0; m < 8; m++)
            u[m] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * m)), flip);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        for (int t = 0; t < nt; t++) {
            __m256i sum = _mm256_set1_epi32(off[t * nb + i]);
            for (int m = 0; m < 8; m++) {
                const __m256i p = _mm256_maddubs_epi16(u[m], bcast4(b[t][i].qs + 4 * m));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, ones));
            }
            const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(xd[t * nb + i]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* one specialisation per token count, so the token loops unroll and the accumulators stay in registers */
void ckls_gemm_q4_0x8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt) {
    switch (nt) {
    case 4: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 4); break;
    case 3: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 3); break;
    case 2: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 2); break;
    default: gemm_q4_0x8(n, s, ss, w, xq, xs, aux, 1); break;
    }
}

void ckls_gemm_q4_Kx8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt) {
    (void)aux;
    switch (nt) {
    case 4: gemm_q4_Kx8(n, s, ss, w, xq, xs, 4); break;
    case 3: gemm_q4_Kx8(n, s, ss, w, xq, xs, 3); break;
    case 2: gemm_q4_Kx8(n, s, ss, w, xq, xs, 2); break;
    default: gemm_q4_Kx8(n, s, ss, w, xq, xs, 1); break;
    }
}

void ckls_gemm_q8_0x8_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                           const int16_t *aux, int nt) {
    (void)aux;
    switch (nt) {
    case 4: gemm_q8_0x8(n, s, ss, w, xq, xs, 4); break;
    case 3: gemm_q8_0x8(n, s, ss, w, xq, xs, 3); break;
    case 2: gemm_q8_0x8(n, s, ss, w, xq, xs, 2); break;
    default: gemm_q8_0x8(n, s, ss, w, xq, xs, 1); break;
    }
}

void ckls_gemm_q8_0x8_a7_avx2(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                              const int32_t *off, const float *xd, int nt) {
    switch (nt) {
    case 4: gemm_q8_0x8_a7(n, s, ss, w, xq, xs, off, xd, 4); break;
    case 3: gemm_q8_0x8_a7(n, s, ss, w, xq, xs, off, xd, 3); break;
    case 2: gemm_q8_0x8_a7(n, s, ss, w, xq, xs, off, xd, 2); break;
    default: gemm_q8_0x8_a7(n, s, ss, w, xq, xs, off, xd, 1); break;
    }
}

#endif
