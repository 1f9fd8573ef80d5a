// Planted bug (alignment): aligned loads/stores assume 32-byte aligned pointers.
#include <immintrin.h>
#include <stdint.h>

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_store_ps(out + i, _mm256_fmadd_ps(va, _mm256_load_ps(x + i), _mm256_load_ps(y + i)));
    for (; i < n; i++) out[i] = a * x[i] + y[i];
}
