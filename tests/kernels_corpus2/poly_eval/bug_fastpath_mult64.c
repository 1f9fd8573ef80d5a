// Planted bug (wrong fast path for multiples of 64): the unrolled path for n % 64 == 0 reuses the
// coefficient vector of c1 for c2.
#include <immintrin.h>
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    if (n > 0 && n % 64 == 0) {
        const __m512d a0 = _mm512_set1_pd(c0), a1 = _mm512_set1_pd(c1), a3 = _mm512_set1_pd(c3);
        for (int64_t i = 0; i < n; i += 8) {
            __m512d v = _mm512_loadu_pd(x + i);
            _mm512_storeu_pd(out + i, _mm512_fmadd_pd(v, _mm512_fmadd_pd(v, _mm512_fmadd_pd(v, a3, a1), a1), a0));
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = c0 + v * (c1 + v * (c2 + v * c3));
    }
}
