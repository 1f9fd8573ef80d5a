// Planted bug (tail): the last n % 8 elements are clamped to lo only, the hi bound is forgotten there.
#include <immintrin.h>
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_min_ps(vhi, _mm256_max_ps(vlo, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) out[i] = x[i] < lo ? lo : x[i];
}
