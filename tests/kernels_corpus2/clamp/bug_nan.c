// Planted bug (NaN handling): x goes first into _mm256_max_ps, which then returns lo for a NaN x.
#include <immintrin.h>
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_min_ps(vhi, _mm256_max_ps(_mm256_loadu_ps(x + i), vlo)));
    for (; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
}
