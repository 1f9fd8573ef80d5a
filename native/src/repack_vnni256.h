/* repack_vnni256.h — the 8-row VNNI kernels (256-bit vpdpbusd) over the interleaved layouts, written once for the two
 * ISAs that have that instruction on 256-bit registers: AVX-512 VNNI (EVEX, AVX512VL: repack_avx512vnni.c) and
 * AVX-VNNI (VEX: Alder Lake and later Intel cores without AVX-512, Zen 5 too: repack_avxvnni.c). The including file
 * defines DPBUSD(acc, u8, s8) as its ISA's intrinsic and VNNI_NAME(kernel) as its exported name. How the kernels
 * work, and why they equal the scalar references bit for bit: repack_avx512vnni.c. Include only inside the
 * including file's ISA guard. */
#ifndef CKLS_REPACK_VNNI256_H
#define CKLS_REPACK_VNNI256_H

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

INLINE int32_t ld4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- 8 rows (one group), 256-bit --------------------------------------------------------------------------- */

INLINE void gemm_q8_0x8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                        const int16_t *aux, const int nt) {
    const block_q8_0x8 *a = w;
    const int64_t nb = n / QK8_0;
    const __m256i off = _mm256_set1_epi8((char)0x80);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const block_q8_0 *b[4];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(a + i + 3), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 3) + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 3) + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 3) + 192, _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 3) + 256, _MM_HINT_T0);
        __m256i sum[4], sum2[4]; /* two chains per token (even / odd m): vpdpbusd's latency, not its rate, bounds one */
        for (int t = 0; t < nt; t++) sum[t] = _mm256_set1_epi32(-128 * aux[t * nb + i]), sum2[t] = _mm256_setzero_si256();
        for (int m = 0; m < 8; m += 2) {
            const __m256i u0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * m)), off);
            const __m256i u1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * m + 32)), off);
            for (int t = 0; t < nt; t++) {
                sum[t] = DPBUSD(sum[t], u0, _mm256_set1_epi32(ld4(b[t][i].qs + 4 * m)));
                sum2[t] = DPBUSD(sum2[t], u1, _mm256_set1_epi32(ld4(b[t][i].qs + 4 * m + 4)));
            }
        }
        for (int t = 0; t < nt; t++) sum[t] = _mm256_add_epi32(sum[t], sum2[t]);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(b[t][i].d))), acc[t]);
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

INLINE void gemm_q4_0x8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                        const int16_t *aux, const int nt) {
    const block_q4_0x8 *a = w;
    const int64_t nb = n / QK4_0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const block_q8_0 *b[4];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        _mm_prefetch((const char *)(a + i + 4), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 4) + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)(a + i + 4) + 128, _MM_HINT_T0);
        __m256i sum[4], sum2[4]; /* two chains per token (low / high nibbles) */
        for (int t = 0; t < nt; t++) sum[t] = _mm256_set1_epi32(-8 * aux[t * nb + i]), sum2[t] = _mm256_setzero_si256();
        for (int m = 0; m < 4; m++) {
            const __m256i p = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * m));
            const __m256i lo = _mm256_and_si256(p, m4), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
            for (int t = 0; t < nt; t++) {
                sum[t] = DPBUSD(sum[t], lo, _mm256_set1_epi32(ld4(b[t][i].qs + 4 * m)));
                sum2[t] = DPBUSD(sum2[t], hi, _mm256_set1_epi32(ld4(b[t][i].qs + 16 + 4 * m)));
            }
        }
        for (int t = 0; t < nt; t++) sum[t] = _mm256_add_epi32(sum[t], sum2[t]);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(b[t][i].d))), acc[t]);
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* the token's 8 sub-block sums B_j (int16 pairs of bsums added) times each row's mins, as int32 per row lane */
INLINE __m256i q4k_summ(const __m256i mins[4], const block_q8_K *y) {
    const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
    const __m128i b8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    __m256i summ = _mm256_madd_epi16(mins[0], _mm256_broadcastd_epi32(b8));
    summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mins[1], _mm256_broadcastd_epi32(_mm_shuffle_epi32(b8, 0x55))));
    summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mins[2], _mm256_broadcastd_epi32(_mm_shuffle_epi32(b8, 0xaa))));
    return _mm256_add_epi32(summ, _mm256_madd_epi16(mins[3], _mm256_broadcastd_epi32(_mm_shuffle_epi32(b8, 0xff))));
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
            __m256i pl[4], ph[4]; /* int32 sums of sub-blocks 2c (low nibbles) and 2c+1 (high) per row */
            for (int t = 0; t < nt; t++) pl[t] = ph[t] = _mm256_setzero_si256();
            for (int m = 0; m < 8; m++) {
                const __m256i p = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * (8 * c + m)));
                const __m256i lo = _mm256_and_si256(p, m4), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
                for (int t = 0; t < nt; t++) {
                    const int8_t *y = b[t][i].qs + 64 * c + 4 * m;
                    pl[t] = DPBUSD(pl[t], lo, _mm256_set1_epi32(ld4(y)));
                    ph[t] = DPBUSD(ph[t], hi, _mm256_set1_epi32(ld4(y + 32)));
                }
            }
            const __m256i sl = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)a[i].scales[2 * c]));
            const __m256i sh = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)a[i].scales[2 * c + 1]));
            for (int t = 0; t < nt; t++)
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_mullo_epi32(pl[t], sl), _mm256_mullo_epi32(ph[t], sh)));
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].dmin));
        __m256i mins[4]; /* [min_r(2p), min_r(2p+1)] int16 pairs */
        for (int p = 0; p < 4; p++) mins[p] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)a[i].mins[p]));
        for (int t = 0; t < nt; t++) {
            const __m256i summ = q4k_summ(mins, &b[t][i]);
            const __m256 dy = _mm256_set1_ps(b[t][i].d);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, dy), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dm, dy), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* Q6_K: levels 0..63 (the nibble or-ed with its 2 high bits) are unsigned; w = level - 32, so each 16-element
 * sub-block's sum starts at -32 * bsums[j] (Q8_K's own 16-element sums), then gets times the row's int8 scale.
 * Run c of 32 bytes (half h = c / 2, q = c % 2) holds elements 128h + 32q + 4m + b in its low nibbles (sub-block
 * 8h + 2q + m / 4) and 64 further in its high ones (sub-block + 4); their high bits are bits 2q and 2q + 4 of
 * the half's qh bytes. */
INLINE void gemm_q6_Kx8(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs, const int nt) {
    const block_q6_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const block_q8_K *b[4];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_K *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        __m256i sumi[4];
        for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const int h = c >> 1, q = c & 1;
            for (int half = 0; half < 2; half++) {
                const int jl = 8 * h + 2 * q + half, jh = jl + 4;
                __m256i pl[4], ph[4];
                for (int t = 0; t < nt; t++) {
                    pl[t] = _mm256_set1_epi32(-32 * b[t][i].bsums[jl]);
                    ph[t] = _mm256_set1_epi32(-32 * b[t][i].bsums[jh]);
                }
                for (int m = 4 * half; m < 4 * half + 4; m++) {
                    const __m256i p = _mm256_loadu_si256((const __m256i *)(a[i].ql + 32 * (8 * c + m)));
                    const __m256i hb = _mm256_loadu_si256((const __m256i *)(a[i].qh + 32 * (8 * h + m)));
                    const __m256i bl = q ? _mm256_slli_epi16(hb, 2) : _mm256_slli_epi16(hb, 4);
                    const __m256i bh = q ? _mm256_srli_epi16(hb, 2) : hb;
                    const __m256i lo = _mm256_or_si256(_mm256_and_si256(p, m4), _mm256_and_si256(bl, m30));
                    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p, 4), m4), _mm256_and_si256(bh, m30));
                    for (int t = 0; t < nt; t++) {
                        const int8_t *y = b[t][i].qs + 128 * h + 32 * q + 4 * m;
                        pl[t] = DPBUSD(pl[t], lo, _mm256_set1_epi32(ld4(y)));
                        ph[t] = DPBUSD(ph[t], hi, _mm256_set1_epi32(ld4(y + 64)));
                    }
                }
                const __m256i sl = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)a[i].scales[jl]));
                const __m256i sh = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)a[i].scales[jh]));
                for (int t = 0; t < nt; t++)
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_mullo_epi32(pl[t], sl), _mm256_mullo_epi32(ph[t], sh)));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a[i].d));
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, _mm256_set1_ps(b[t][i].d)), acc[t]);
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(s + t * ss, acc[t]);
}

/* one specialisation per token count, so the token loops unroll and the accumulators stay in registers */
#define BY_NT(call)                                                                                              \
    switch (nt) {                                                                                                \
    case 4: call(4); break;                                                                                      \
    case 3: call(3); break;                                                                                      \
    case 2: call(2); break;                                                                                      \
    default: call(1); break;                                                                                     \
    }


void VNNI_NAME(ckls_gemm_q8_0x8)(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt) {
#define CALL(k) gemm_q8_0x8(n, s, ss, w, xq, xs, aux, k)
    BY_NT(CALL)
#undef CALL
}
void VNNI_NAME(ckls_gemm_q4_0x8)(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt) {
#define CALL(k) gemm_q4_0x8(n, s, ss, w, xq, xs, aux, k)
    BY_NT(CALL)
#undef CALL
}
void VNNI_NAME(ckls_gemm_q4_Kx8)(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt) {
    (void)aux;
#define CALL(k) gemm_q4_Kx8(n, s, ss, w, xq, xs, k)
    BY_NT(CALL)
#undef CALL
}
void VNNI_NAME(ckls_gemm_q6_Kx8)(int64_t n, float *s, int64_t ss, const void *w, const void *xq, int64_t xs,
                                 const int16_t *aux, int nt) {
    (void)aux;
#define CALL(k) gemm_q6_Kx8(n, s, ss, w, xq, xs, k)
    BY_NT(CALL)
#undef CALL
}

#endif
