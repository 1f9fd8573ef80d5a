// Correct: AVX2. _mm256_max_ps(a, b) returns b when either is NaN, so x goes second to keep its NaN.
#include <immintrin.h>
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_max_ps(vlo, _mm256_loadu_ps(x + i));
        _mm256_storeu_ps(out + i, _mm256_min_ps(vhi, v));
    }
    for (; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
}
