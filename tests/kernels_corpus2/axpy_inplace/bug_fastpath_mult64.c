// Planted bug (wrong fast path for multiples of 64): the unrolled path for n % 64 == 0 processes 8 vectors
// per step but loads the second half of each block of x from the first half's address.
#include <immintrin.h>
#include <stdint.h>

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    const __m512d va = _mm512_set1_pd(alpha);
    if (n > 0 && (n & 63) == 0) {
        for (int64_t i = 0; i < n; i += 64)
            for (int k = 0; k < 64; k += 8) {
                const double *xs = x + i + (k < 32 ? k : k - 32);
                _mm512_storeu_pd(y + i + k, _mm512_fmadd_pd(va, _mm512_loadu_pd(xs), _mm512_loadu_pd(y + i + k)));
            }
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + y[i];
}
