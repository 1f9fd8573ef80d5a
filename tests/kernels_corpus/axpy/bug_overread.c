// Planted bug (out-of-bounds read): the tail loads a full vector of 8 past the end of x and y and keeps
// only the valid lanes. The answer is right; the read is not (it can fault at a page end). Only the
// sanitizer build sees it.
#include <immintrin.h>
#include <stdint.h>

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    const __m256 va = _mm256_set1_ps(a);
    for (int64_t i = 0; i < n; i += 8) {
        float r[8];
        _mm256_storeu_ps(r, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        for (int64_t j = 0; j < 8 && i + j < n; j++) out[i + j] = r[j];
    }
}
