/* softmax_row_avx2.c — the exp and softmax row kernels with AVX2/FMA: softmax_row.c's polynomial on 8 lanes,
 * the same steps with the same FMAs. */
#include <math.h>

#include "internal.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "simd_avx2.h"

double ckls_exp_shift_avx2(float *y, const float *x, int64_t n, float shift) {
    const __m256 vs = _mm256_set1_ps(shift);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        const __m256 b = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vs));
        _mm256_storeu_ps(y + i, a);
        _mm256_storeu_ps(y + i + 8, b);
        s0 = _mm256_add_ps(s0, a);
        s1 = _mm256_add_ps(s1, b);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(s0, s1));
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += lanes[l];
    if (i < n) { /* the tail (attention rows end anywhere): padded to 16 lanes, not the reference's libm calls */
        float t[16];
        const int64_t r = n - i;
        for (int l = 0; l < 16; l++) t[l] = l < r ? x[i + l] - shift : 0.0f;
        _mm256_storeu_ps(t, exp8(_mm256_loadu_ps(t)));
        _mm256_storeu_ps(t + 8, exp8(_mm256_loadu_ps(t + 8)));
        for (int64_t l = 0; l < r; l++) s += y[i + l] = t[l];
    }
    return s;
}

static float row_max_avx2(const float *x, int64_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY), m1 = m, m2 = m, m3 = m; /* four chains: one waits on each max */
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
        m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
        m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
    }
    m = _mm256_max_ps(_mm256_max_ps(m, m1), _mm256_max_ps(m2, m3));
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float lanes[8], mx = -INFINITY;
    _mm256_storeu_ps(lanes, m);
    for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

float ckls_softmax_avx2(float *p, int64_t n) {
    const float mx = row_max_avx2(p, n);
    const double sum = ckls_exp_shift_avx2(p, p, n, mx);
    const float inv = (float)(1.0 / sum);
    const __m256 vi = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), vi));
    for (; i < n; i++) p[i] *= inv;
    return (float)(mx + log(sum));
}

#endif
