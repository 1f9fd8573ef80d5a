// Planted bug (FTZ/DAZ): turns on flush-to-zero and denormals-are-zero "for speed" and never restores
// MXCSR, so every later float operation of the calling process flushes denormals too.
#include <immintrin.h>
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    _mm_setcsr(_mm_getcsr() | 0x8040);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_min_ps(vhi, _mm256_max_ps(vlo, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
}
