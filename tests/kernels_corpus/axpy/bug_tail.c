// Planted bug (tail): the AVX2 loop covers only whole blocks of 8; n % 8 elements are never written.
#include <immintrin.h>
#include <stdint.h>

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    const __m256 va = _mm256_set1_ps(a);
    for (int64_t i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
}
