/* attn_kt_avx2.c — attention over the block-transposed K cache (attn_kt.c) with AVX2/FMA: a block's 16 scores
 * of a row in two 8-lane registers; four rows share each K block and each V row they read. Every row goes
 * through the same steps whichever rows share its tile (the four-row and one-row paths are one inlined body),
 * so a token's output does not depend on the batch it came in. Head sizes not a multiple of 16 go to the
 * scalar reference. */
#include <math.h>

#include "internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

#define RT 4 /* rows per tile */
#define INLINE static inline __attribute__((always_inline))

/* sc[r][0 .. nb*16) = (q[r] · each cached position) * scale, nb blocks of 16 positions */
INLINE void scores_rows(const int R, const float *const *q, float *const *sc, const float *kt, int64_t nb,
                        int64_t d, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t b = 0; b < nb; b++) {
        const float *kb = kt + b * d * CKLS_KT_BLOCK;
        __m256 lo[RT], hi[RT];
        for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_ps();
        for (int64_t i = 0; i < d; i++) {
            const __m256 k0 = _mm256_loadu_ps(kb + i * CKLS_KT_BLOCK), k1 = _mm256_loadu_ps(kb + i * CKLS_KT_BLOCK + 8);
            for (int r = 0; r < R; r++) {
                const __m256 qi = _mm256_set1_ps(q[r][i]);
                lo[r] = _mm256_fmadd_ps(qi, k0, lo[r]);
                hi[r] = _mm256_fmadd_ps(qi, k1, hi[r]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(sc[r] + b * CKLS_KT_BLOCK, _mm256_mul_ps(lo[r], vs));
            _mm256_storeu_ps(sc[r] + b * CKLS_KT_BLOCK + 8, _mm256_mul_ps(hi[r], vs));
        }
    }
}

/* one row's n scores -> its softmax weights, in place (the lanes past n of the last block are ignored) */
INLINE void softmax_row(float *sc, int64_t n) {
    const int64_t nb = (n + CKLS_KT_BLOCK - 1) / CKLS_KT_BLOCK;
    for (int64_t s = n; s < nb * CKLS_KT_BLOCK; s++) sc[s] = -INFINITY;
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    for (int64_t b = 0; b < nb; b++) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(sc + b * CKLS_KT_BLOCK));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(sc + b * CKLS_KT_BLOCK + 8));
    }
    float lanes[8], mxf = -INFINITY;
    _mm256_storeu_ps(lanes, _mm256_max_ps(m0, m1));
    for (int l = 0; l < 8; l++) mxf = lanes[l] > mxf ? lanes[l] : mxf;
    const __m256 mx = _mm256_set1_ps(mxf);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (int64_t b = 0; b < nb; b++) {
        float *x = sc + b * CKLS_KT_BLOCK;
        const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x), mx)), e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + 8), mx));
        _mm256_storeu_ps(x, e0);
        _mm256_storeu_ps(x + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    float l0[8], l1[8];
    _mm256_storeu_ps(l0, s0);
    _mm256_storeu_ps(l1, s1);
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += l0[l];
    for (int l = 0; l < 8; l++) s += l1[l];
    const __m256 inv = _mm256_set1_ps((float)(1.0 / s));
    for (int64_t b = 0; b < 2 * nb; b++) _mm256_storeu_ps(sc + 8 * b, _mm256_mul_ps(_mm256_loadu_ps(sc + 8 * b), inv));
}

/* o[r][c0 .. c0 + 16) = sum over s < n[r] of p[r][s] * v[s][...], s in order; rows sorted by n, and all rows
 * share the V rows below n[0] */
INLINE void values_rows(const int R, const float *const *p, float *const *o, const int64_t *n, const float *v,
                        int64_t v_stride, int64_t c0) {
    __m256 lo[RT], hi[RT];
    for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t s = 0; s < n[0]; s++) {
        const __m256 x0 = _mm256_loadu_ps(v + s * v_stride + c0), x1 = _mm256_loadu_ps(v + s * v_stride + c0 + 8);
        for (int r = 0; r < R; r++) {
            const __m256 pr = _mm256_set1_ps(p[r][s]);
            lo[r] = _mm256_fmadd_ps(pr, x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(pr, x1, hi[r]);
        }
    }
    for (int r = 1; r < R; r++)
        for (int64_t s = n[0]; s < n[r]; s++) {
            const __m256 pr = _mm256_set1_ps(p[r][s]);
            lo[r] = _mm256_fmadd_ps(pr, _mm256_loadu_ps(v + s * v_stride + c0), lo[r]);
            hi[r] = _mm256_fmadd_ps(pr, _mm256_loadu_ps(v + s * v_stride + c0 + 8), hi[r]);
        }
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(o[r] + c0, lo[r]);
        _mm256_storeu_ps(o[r] + c0 + 8, hi[r]);
    }
}

INLINE void tile(const int R, const float *const *q, float *const *o, float *const *sc, const int64_t *n,
                 const float *kt, const float *v, int64_t v_stride, int64_t d, float scale) {
    scores_rows(R, q, sc, kt, (n[R - 1] + CKLS_KT_BLOCK - 1) / CKLS_KT_BLOCK, d, scale);
    for (int r = 0; r < R; r++) softmax_row(sc[r], n[r]);
    for (int64_t c0 = 0; c0 < d; c0 += 16) values_rows(R, (const float *const *)sc, o, n, v, v_stride, c0);
}

static void tile4(const float *const *q, float *const *o, float *const *sc, const int64_t *n, const float *kt,
                  const float *v, int64_t v_stride, int64_t d, float scale) {
    tile(RT, q, o, sc, n, kt, v, v_stride, d, scale);
}

static void tile1(const float *const *q, float *const *o, float *const *sc, const int64_t *n, const float *kt,
                  const float *v, int64_t v_stride, int64_t d, float scale) {
    tile(1, q, o, sc, n, kt, v, v_stride, d, scale);
}

void ckls_attn_kt_avx2(const float *q, int64_t q_stride, int64_t nt, int64_t g, const float *kt, const float *v,
                       int64_t v_stride, int64_t n_kv, int64_t d, float scale, float *scores, float *out) {
    if (d % 16)
        ckls_attn_kt_ref(q, q_stride, nt, g, kt, v, v_stride, n_kv, d, scale, scores, out);
    else
        ckls_attn_kt_tiles(tile4, tile1, q, q_stride, nt, g, kt, v, v_stride, n_kv, d, scale, scores, out);
}
#endif
