// Planted bug (tail): the last partial vector is stored with a full mask, writing up to 7 doubles past out.
#include <immintrin.h>
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    const __m512d a0 = _mm512_set1_pd(c0), a1 = _mm512_set1_pd(c1), a2 = _mm512_set1_pd(c2),
                  a3 = _mm512_set1_pd(c3);
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 m = n - i >= 8 ? 0xFF : (__mmask8)((1u << (n - i)) - 1);
        __m512d v = _mm512_maskz_loadu_pd(m, x + i);
        __m512d r = _mm512_fmadd_pd(v, _mm512_fmadd_pd(v, _mm512_fmadd_pd(v, a3, a2), a1), a0);
        _mm512_storeu_pd(out + i, r);
    }
}
