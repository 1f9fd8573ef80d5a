/* repack_avx512vnni.c — AVX-512 VNNI kernels over the interleaved 8-row layouts (block_q4_0x8, block_q4_Kx8,
 * block_q8_0x8, block_q6_Kx8; repack.c): vpdpbusd (unsigned bytes x signed bytes, four products added into an int32 lane in
 * one instruction) in place of AVX2's maddubs -> int16 -> madd -> add chain.
 *
 * The layout is the AVX2 one: one 32-byte load holds 4 quant bytes of each of 8 rows; the token's matching 4
 * activation bytes, broadcast to every lane, are vpdpbusd's signed operand (the broadcast folds into the
 * instruction as a memory operand). vpdpbusd wants the weights unsigned:
 *   Q4_0: the nibbles q (0..15) are unsigned as they are; w = q - 8, so the block sum starts at -8 * sum(x).
 *   Q8_0: w + 128 (= w xor 0x80) is unsigned; the block sum starts at -128 * sum(x).
 *   Q4_K: the nibbles are unsigned; each 32-element sub-block gets its own int32 sum, times the row's 6-bit scale.
 *   Q6_K: the 6-bit levels are unsigned; w = level - 32, so each 16-element sub-block's sum starts at -32 times
 *         Q8_K's bsums of it, then is multiplied by the row's int8 scale. (Q6_K has no AVX2 8-row kernel: only
 *         this ISA repacks it.)
 * sum(x) per Q8_0 activation block is the caller's aux (ckls_q8_0_block_sums), computed once per token for all
 * rows. Every sum is the exact integer the scalar reference forms, and the float work per (row, token) is the
 * reference's (one FMA per block with the same scale product, two for Q4_K), so the outputs equal
 * ckls_gemm_*x8_ref bit for bit, for any nt.
 *
 * Two widths. gemm_x8 (8 rows x 1..4 tokens) uses 256-bit vpdpbusd (AVX512VL). gemm_x16 takes two adjacent
 * 8-row groups (16 rows) x 1..8 tokens in 512-bit registers: both groups' 32-byte rows of a block go into one
 * zmm, so each vpdpbusd and each scale FMA serves 16 rows, and the weights are loaded once for 8 tokens; per
 * (row, token) it is the same arithmetic again. native/tools/bench_gemm.c on a Zen 4 (family 25 model 17), one
 * core, rows of 1,024, 32 groups (in L2), 16 tokens, MAC/ns: Q8_0 AVX2 62, gemm_x8 128, gemm_x16 166; Q4_0 92 /
 * 128 / 169; Q4_K 85 / 139 / 166; Q6_K (no AVX2 kernel) 90 / 133. With the weights streamed and 1-2 tokens the
 * 16-row form loses (matmul.c's X16_MIN_TOKENS). */
#include "quant.h"

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#include <immintrin.h>

#define DPBUSD _mm256_dpbusd_epi32
#define VNNI_NAME(kernel) kernel##_avx512vnni
#include "repack_vnni256.h"

/* ---- 16 rows (two adjacent groups, w and w + ws), 512-bit ------------------------------------------------ */

#define NT16 8 /* tokens per call of the 16-row kernels: up to 8 (24 of the 32 zmm registers accumulate) */

/* group 0's 32 bytes at p in the low half, group 1's (ws bytes on) in the high half */
INLINE __m512i ld2(const void *p, int64_t ws) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p)),
                              _mm256_loadu_si256((const __m256i *)((const char *)p + ws)), 1);
}

/* the 8 f16 scales at p and the 8 at p + ws, as 16 floats */
INLINE __m512 ld2_f16(const void *p, int64_t ws) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                                   _mm_loadu_si128((const __m128i *)((const char *)p + ws)), 1));
}

INLINE void store16(float *s, __m512 v) { _mm512_storeu_ps(s, v); }

INLINE void gemm_q8_0x16(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq, int64_t xs,
                         const int16_t *aux, const int nt) {
    const block_q8_0x8 *a = w;
    const int64_t nb = n / QK8_0;
    const __m512i off = _mm512_set1_epi8((char)0x80);
    __m512 acc[NT16];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    const block_q8_0 *b[NT16];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        for (int l = 0; l < 5; l++) {
            _mm_prefetch((const char *)(a + i + 2) + 64 * l, _MM_HINT_T0);
            _mm_prefetch((const char *)(a + i + 2) + ws + 64 * l, _MM_HINT_T0);
        }
        __m512i sum[NT16], sum2[NT16];
        for (int t = 0; t < nt; t++) sum[t] = _mm512_set1_epi32(-128 * aux[t * nb + i]), sum2[t] = _mm512_setzero_si512();
        for (int m = 0; m < 8; m += 2) {
            const __m512i u0 = _mm512_xor_si512(ld2(a[i].qs + 32 * m, ws), off);
            const __m512i u1 = _mm512_xor_si512(ld2(a[i].qs + 32 * m + 32, ws), off);
            for (int t = 0; t < nt; t++) {
                sum[t] = _mm512_dpbusd_epi32(sum[t], u0, _mm512_set1_epi32(ld4(b[t][i].qs + 4 * m)));
                sum2[t] = _mm512_dpbusd_epi32(sum2[t], u1, _mm512_set1_epi32(ld4(b[t][i].qs + 4 * m + 4)));
            }
        }
        const __m512 dw = ld2_f16(a[i].d, ws);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum[t], sum2[t])),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(_cvtsh_ss(b[t][i].d))), acc[t]);
    }
    for (int t = 0; t < nt; t++) store16(s + t * ss, acc[t]);
}

INLINE void gemm_q4_0x16(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq, int64_t xs,
                         const int16_t *aux, const int nt) {
    const block_q4_0x8 *a = w;
    const int64_t nb = n / QK4_0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[NT16];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    const block_q8_0 *b[NT16];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_0 *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        for (int l = 0; l < 3; l++) {
            _mm_prefetch((const char *)(a + i + 4) + 64 * l, _MM_HINT_T0);
            _mm_prefetch((const char *)(a + i + 4) + ws + 64 * l, _MM_HINT_T0);
        }
        __m512i sum[NT16], sum2[NT16];
        for (int t = 0; t < nt; t++) sum[t] = _mm512_set1_epi32(-8 * aux[t * nb + i]), sum2[t] = _mm512_setzero_si512();
        for (int m = 0; m < 4; m++) {
            const __m512i p = ld2(a[i].qs + 32 * m, ws);
            const __m512i lo = _mm512_and_si512(p, m4), hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
            for (int t = 0; t < nt; t++) {
                sum[t] = _mm512_dpbusd_epi32(sum[t], lo, _mm512_set1_epi32(ld4(b[t][i].qs + 4 * m)));
                sum2[t] = _mm512_dpbusd_epi32(sum2[t], hi, _mm512_set1_epi32(ld4(b[t][i].qs + 16 + 4 * m)));
            }
        }
        const __m512 dw = ld2_f16(a[i].d, ws);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum[t], sum2[t])),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(_cvtsh_ss(b[t][i].d))), acc[t]);
    }
    for (int t = 0; t < nt; t++) store16(s + t * ss, acc[t]);
}

INLINE void gemm_q4_Kx16(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq, int64_t xs,
                         const int nt) {
    const block_q4_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[NT16];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    const block_q8_K *b[NT16];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_K *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        const block_q4_Kx8 *a1 = (const block_q4_Kx8 *)((const char *)(a + i) + ws);
        __m512i sumi[NT16];
        for (int t = 0; t < nt; t++) sumi[t] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i pl[NT16], ph[NT16]; /* int32 sums of sub-blocks 2c (low nibbles) and 2c+1 (high) per row */
            for (int t = 0; t < nt; t++) pl[t] = ph[t] = _mm512_setzero_si512();
            for (int m = 0; m < 8; m++) {
                const __m512i p = ld2(a[i].qs + 32 * (8 * c + m), ws);
                const __m512i lo = _mm512_and_si512(p, m4), hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
                for (int t = 0; t < nt; t++) {
                    const int8_t *y = b[t][i].qs + 64 * c + 4 * m;
                    pl[t] = _mm512_dpbusd_epi32(pl[t], lo, _mm512_set1_epi32(ld4(y)));
                    ph[t] = _mm512_dpbusd_epi32(ph[t], hi, _mm512_set1_epi32(ld4(y + 32)));
                }
            }
            const __m512i sl = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a[i].scales[2 * c]),
                                                                       _mm_loadl_epi64((const __m128i *)a1->scales[2 * c])));
            const __m512i sh = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a[i].scales[2 * c + 1]),
                                                                       _mm_loadl_epi64((const __m128i *)a1->scales[2 * c + 1])));
            for (int t = 0; t < nt; t++)
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_add_epi32(_mm512_mullo_epi32(pl[t], sl), _mm512_mullo_epi32(ph[t], sh)));
        }
        const __m512 dw = ld2_f16(a[i].d, ws), dm = ld2_f16(a[i].dmin, ws);
        __m512i mins[4]; /* [min_r(2p), min_r(2p+1)] int16 pairs, rows 0..7 of group 0 then of group 1 */
        for (int p = 0; p < 4; p++)
            mins[p] = _mm512_cvtepu8_epi16(_mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a[i].mins[p])), _mm_loadu_si128((const __m128i *)a1->mins[p]), 1));
        for (int t = 0; t < nt; t++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)b[t][i].bsums);
            const __m128i b8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            __m512i summ = _mm512_madd_epi16(mins[0], _mm512_broadcastd_epi32(b8));
            summ = _mm512_add_epi32(summ, _mm512_madd_epi16(mins[1], _mm512_broadcastd_epi32(_mm_shuffle_epi32(b8, 0x55))));
            summ = _mm512_add_epi32(summ, _mm512_madd_epi16(mins[2], _mm512_broadcastd_epi32(_mm_shuffle_epi32(b8, 0xaa))));
            summ = _mm512_add_epi32(summ, _mm512_madd_epi16(mins[3], _mm512_broadcastd_epi32(_mm_shuffle_epi32(b8, 0xff))));
            const __m512 dy = _mm512_set1_ps(b[t][i].d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(dw, dy), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dm, dy), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) store16(s + t * ss, acc[t]);
}

INLINE void gemm_q6_Kx16(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq, int64_t xs,
                         const int nt) {
    const block_q6_Kx8 *a = w;
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[NT16];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    const block_q8_K *b[NT16];
    for (int t = 0; t < nt; t++) b[t] = (const block_q8_K *)((const char *)xq + t * xs);
    for (int64_t i = 0; i < nb; i++) {
        const block_q6_Kx8 *a1 = (const block_q6_Kx8 *)((const char *)(a + i) + ws);
        __m512i sumi[NT16];
        for (int t = 0; t < nt; t++) sumi[t] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const int h = c >> 1, q = c & 1;
            for (int half = 0; half < 2; half++) {
                const int jl = 8 * h + 2 * q + half, jh = jl + 4;
                __m512i pl[NT16], ph[NT16];
                for (int t = 0; t < nt; t++) {
                    pl[t] = _mm512_set1_epi32(-32 * b[t][i].bsums[jl]);
                    ph[t] = _mm512_set1_epi32(-32 * b[t][i].bsums[jh]);
                }
                for (int m = 4 * half; m < 4 * half + 4; m++) {
                    const __m512i p = ld2(a[i].ql + 32 * (8 * c + m), ws);
                    const __m512i hb = ld2(a[i].qh + 32 * (8 * h + m), ws);
                    const __m512i bl = q ? _mm512_slli_epi16(hb, 2) : _mm512_slli_epi16(hb, 4);
                    const __m512i bh = q ? _mm512_srli_epi16(hb, 2) : hb;
                    const __m512i lo = _mm512_or_si512(_mm512_and_si512(p, m4), _mm512_and_si512(bl, m30));
                    const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(p, 4), m4), _mm512_and_si512(bh, m30));
                    for (int t = 0; t < nt; t++) {
                        const int8_t *y = b[t][i].qs + 128 * h + 32 * q + 4 * m;
                        pl[t] = _mm512_dpbusd_epi32(pl[t], lo, _mm512_set1_epi32(ld4(y)));
                        ph[t] = _mm512_dpbusd_epi32(ph[t], hi, _mm512_set1_epi32(ld4(y + 64)));
                    }
                }
                const __m512i sl = _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a[i].scales[jl]),
                                                                           _mm_loadl_epi64((const __m128i *)a1->scales[jl])));
                const __m512i sh = _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a[i].scales[jh]),
                                                                           _mm_loadl_epi64((const __m128i *)a1->scales[jh])));
                for (int t = 0; t < nt; t++)
                    sumi[t] = _mm512_add_epi32(sumi[t], _mm512_add_epi32(_mm512_mullo_epi32(pl[t], sl), _mm512_mullo_epi32(ph[t], sh)));
            }
        }
        const __m512 dw = ld2_f16(a[i].d, ws);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), _mm512_mul_ps(dw, _mm512_set1_ps(b[t][i].d)), acc[t]);
    }
    for (int t = 0; t < nt; t++) store16(s + t * ss, acc[t]);
}

/* BY_NT for the 16-row kernels (repack_vnni256.h has BY_NT) */
#define BY_NT16(call)                                                                                            \
    switch (nt) {                                                                                                \
    case 8: call(8); break;                                                                                      \
    case 7: call(7); break;                                                                                      \
    case 6: call(6); break;                                                                                      \
    case 5: call(5); break;                                                                                      \
    case 4: call(4); break;                                                                                      \
    case 3: call(3); break;                                                                                      \
    case 2: call(2); break;                                                                                      \
    default: call(1); break;                                                                                     \
    }

void ckls_gemm_q8_0x16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt) {
#define CALL(k) gemm_q8_0x16(n, s, ss, w, ws, xq, xs, aux, k)
    BY_NT16(CALL)
#undef CALL
}

void ckls_gemm_q4_0x16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt) {
#define CALL(k) gemm_q4_0x16(n, s, ss, w, ws, xq, xs, aux, k)
    BY_NT16(CALL)
#undef CALL
}

void ckls_gemm_q4_Kx16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt) {
    (void)aux;
    if (nt > 4) { /* 8 tokens' sums would not fit the registers: two calls (measured slower as one) */
        ckls_gemm_q4_Kx16_avx512vnni(n, s, ss, w, ws, xq, xs, aux, 4);
        s += 4 * ss;
        xq = (const char *)xq + 4 * xs;
        nt -= 4;
    }
#define CALL(k) gemm_q4_Kx16(n, s, ss, w, ws, xq, xs, k)
    BY_NT(CALL)
#undef CALL
}

void ckls_gemm_q6_Kx16_avx512vnni(int64_t n, float *s, int64_t ss, const void *w, int64_t ws, const void *xq,
                                  int64_t xs, const int16_t *aux, int nt) {
    (void)aux;
#define CALL(k) gemm_q6_Kx16(n, s, ss, w, ws, xq, xs, k)
    BY_NT16(CALL)
#undef CALL
}

#endif
