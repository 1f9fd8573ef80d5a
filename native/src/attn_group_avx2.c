/* attn_group_avx2.c — the per-group attention kernel with AVX2/FMA: four key positions per step share one
 * horizontal reduction; values accumulate 32 output floats at a time in registers. Head sizes that are not a
 * multiple of 8 go to the scalar reference. */
#include <math.h>

#include "internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* Four 8-lane partial sums -> one 4-lane vector of their totals. */
static inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float dot8n(const float *a, const float *b, int64_t d) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < d; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    const __m128 r = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    const __m128 h = _mm_add_ps(r, _mm_movehl_ps(r, r));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

void ckls_attn_group_avx2(const float *q, int64_t g, const float *k, const float *v, int64_t stride, int64_t n_kv,
                          int64_t d, float scale, float *scores, float *out) {
    if (d % 8) {
        ckls_attn_group_ref(q, g, k, v, stride, n_kv, d, scale, scores, out);
        return;
    }
    for (int64_t j = 0; j < g; j++) {
        const float *qj = q + j * d;
        float *sc = scores + j * n_kv;
        int64_t s = 0;
        for (; s + 4 <= n_kv; s += 4) {
            const float *k0 = k + s * stride;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t i = 0; i < d; i += 8) {
                const __m256 qv = _mm256_loadu_ps(qj + i);
                a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
                a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + stride + i), a1);
                a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 2 * stride + i), a2);
                a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 3 * stride + i), a3);
            }
            _mm_storeu_ps(sc + s, _mm_mul_ps(reduce4(a0, a1, a2, a3), _mm_set1_ps(scale)));
        }
        for (; s < n_kv; s++) sc[s] = dot8n(qj, k + s * stride, d) * scale;
        float mx = -INFINITY;
        for (s = 0; s < n_kv; s++) mx = sc[s] > mx ? sc[s] : mx;
        double sum = 0.0;
        for (s = 0; s < n_kv; s++) {
            sc[s] = expf(sc[s] - mx);
            sum += sc[s];
        }
        const float inv = (float)(1.0 / sum);
        float *o = out + j * d;
        for (int64_t i0 = 0; i0 < d; i0 += 32) {
            const int64_t w = d - i0 < 32 ? d - i0 : 32; /* 8, 16, 24 or 32 floats */
            __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
            for (s = 0; s < n_kv; s++) {
                const __m256 p = _mm256_set1_ps(sc[s] * inv);
                const float *vs = v + s * stride + i0;
                o0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs), o0);
                if (w > 8) o1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 8), o1);
                if (w > 16) o2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 16), o2);
                if (w > 24) o3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vs + 24), o3);
            }
            _mm256_storeu_ps(o + i0, o0);
            if (w > 8) _mm256_storeu_ps(o + i0 + 8, o1);
            if (w > 16) _mm256_storeu_ps(o + i0 + 16, o2);
            if (w > 24) _mm256_storeu_ps(o + i0 + 24, o3);
        }
    }
}
#endif
