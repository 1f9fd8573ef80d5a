/* attn_kt_avx512.c — attention over the block-transposed K cache (attn_kt.c) with AVX-512: one 16-lane register
 * holds a block's 16 scores of a row; four rows share each K block and each V row they read. Every row goes
 * through the same steps whichever rows share its tile (the four-row and one-row paths are one inlined body),
 * so a token's output does not depend on the batch it came in. Head sizes not a multiple of 16 go to the
 * scalar reference. */
#include <math.h>

#include "internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#define RT 4 /* rows per tile */
#define INLINE static inline __attribute__((always_inline))

/* softmax_row.c's polynomial exp on 16 lanes, as exp8 (simd_avx2.h) on 8 (0 below CKLS_EXP_LO, -inf included) */
INLINE __m512 exp16(__m512 x) {
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(CKLS_EXP_LO), _CMP_GE_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(CKLS_EXP_HI));
    const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(CKLS_EXP_LOG2E), _mm512_set1_ps(CKLS_EXP_SHIFTER));
    const __m512 k = _mm512_sub_ps(t, _mm512_set1_ps(CKLS_EXP_SHIFTER));
    const __m512 r = _mm512_fmadd_ps(k, _mm512_set1_ps(CKLS_EXP_LN2_LO), _mm512_fmadd_ps(k, _mm512_set1_ps(CKLS_EXP_LN2_HI), x));
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(CKLS_EXP_C6), r, _mm512_set1_ps(CKLS_EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CKLS_EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CKLS_EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CKLS_EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32(_mm512_castps_si512(t), 23));
    return _mm512_maskz_mov_ps(keep, _mm512_castsi512_ps(e));
}

/* sc[r][0 .. nb*16) = (q[r] · each cached position) * scale, nb blocks of 16 positions */
INLINE void scores_rows(const int R, const float *const *q, float *const *sc, const float *kt, int64_t nb,
                        int64_t d, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t b = 0; b < nb; b++) {
        const float *kb = kt + b * d * CKLS_KT_BLOCK;
        __m512 acc[RT];
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        for (int64_t i = 0; i < d; i++) {
            const __m512 kv = _mm512_loadu_ps(kb + i * CKLS_KT_BLOCK);
            for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][i]), kv, acc[r]);
        }
        for (int r = 0; r < R; r++) _mm512_storeu_ps(sc[r] + b * CKLS_KT_BLOCK, _mm512_mul_ps(acc[r], vs));
    }
}

/* one row's n scores -> its softmax weights, in place (the lanes past n of the last block are ignored) */
INLINE void softmax_row(float *sc, int64_t n) {
    const int64_t nb = (n + CKLS_KT_BLOCK - 1) / CKLS_KT_BLOCK, tail = n - (nb - 1) * CKLS_KT_BLOCK;
    float *last = sc + (nb - 1) * CKLS_KT_BLOCK;
    _mm512_storeu_ps(last, _mm512_mask_blend_ps((__mmask16)((1u << tail) - 1), _mm512_set1_ps(-INFINITY),
                                                _mm512_loadu_ps(last)));
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int64_t b = 0; b < nb; b++) m = _mm512_max_ps(m, _mm512_loadu_ps(sc + b * CKLS_KT_BLOCK));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(sc + b * CKLS_KT_BLOCK), mx));
        _mm512_storeu_ps(sc + b * CKLS_KT_BLOCK, e);
        sum = _mm512_add_ps(sum, e);
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, sum);
    double s = 0.0;
    for (int l = 0; l < 16; l++) s += lanes[l];
    const __m512 inv = _mm512_set1_ps((float)(1.0 / s));
    for (int64_t b = 0; b < nb; b++)
        _mm512_storeu_ps(sc + b * CKLS_KT_BLOCK, _mm512_mul_ps(_mm512_loadu_ps(sc + b * CKLS_KT_BLOCK), inv));
}

/* o[r][c0 .. c0 + 16W) = sum over s < n[r] of p[r][s] * v[s][...], s in order; rows sorted by n, and all rows
 * share the V rows below n[0] */
INLINE void values_rows(const int R, const int W, const float *const *p, float *const *o, const int64_t *n,
                        const float *v, int64_t v_stride, int64_t c0) {
    __m512 acc[RT][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < W; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t s = 0; s < n[0]; s++) {
        const float *vr = v + s * v_stride + c0;
        __m512 x[4];
        for (int c = 0; c < W; c++) x[c] = _mm512_loadu_ps(vr + 16 * c);
        for (int r = 0; r < R; r++) {
            const __m512 pr = _mm512_set1_ps(p[r][s]);
            for (int c = 0; c < W; c++) acc[r][c] = _mm512_fmadd_ps(pr, x[c], acc[r][c]);
        }
    }
    for (int r = 1; r < R; r++)
        for (int64_t s = n[0]; s < n[r]; s++) {
            const __m512 pr = _mm512_set1_ps(p[r][s]);
            for (int c = 0; c < W; c++)
                acc[r][c] = _mm512_fmadd_ps(pr, _mm512_loadu_ps(v + s * v_stride + c0 + 16 * c), acc[r][c]);
        }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < W; c++) _mm512_storeu_ps(o[r] + c0 + 16 * c, acc[r][c]);
}

INLINE void tile(const int R, const float *const *q, float *const *o, float *const *sc, const int64_t *n,
                 const float *kt, const float *v, int64_t v_stride, int64_t d, float scale) {
    scores_rows(R, q, sc, kt, (n[R - 1] + CKLS_KT_BLOCK - 1) / CKLS_KT_BLOCK, d, scale);
    for (int r = 0; r < R; r++) softmax_row(sc[r], n[r]);
    int64_t c0 = 0;
    for (; c0 + 64 <= d; c0 += 64) values_rows(R, 4, (const float *const *)sc, o, n, v, v_stride, c0);
    for (; c0 < d; c0 += 16) values_rows(R, 1, (const float *const *)sc, o, n, v, v_stride, c0);
}

static void tile4(const float *const *q, float *const *o, float *const *sc, const int64_t *n, const float *kt,
                  const float *v, int64_t v_stride, int64_t d, float scale) {
    tile(RT, q, o, sc, n, kt, v, v_stride, d, scale);
}

static void tile1(const float *const *q, float *const *o, float *const *sc, const int64_t *n, const float *kt,
                  const float *v, int64_t v_stride, int64_t d, float scale) {
    tile(1, q, o, sc, n, kt, v, v_stride, d, scale);
}

void ckls_attn_kt_avx512(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                         int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out) {
    if (d % 16)
        ckls_attn_kt_ref(q, q_stride, nt, g, kt, v, v_stride, n_kv, d, scale, scores, out);
    else
        ckls_attn_kt_tiles(tile4, tile1, q, q_stride, nt, g, kt, v, v_stride, n_kv, d, scale, scores, out);
}
#endif
