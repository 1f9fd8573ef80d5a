// Planted bug (tail): the masked tail is built from n % 8 computed as n & 3 (a mask for blocks of 4).
#include <immintrin.h>
#include <stdint.h>

void axpy_inplace(int64_t n, double alpha, const double *x, double *y) {
    const __m512d va = _mm512_set1_pd(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(va, _mm512_loadu_pd(x + i), _mm512_loadu_pd(y + i)));
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n & 3)) - 1);
        __m512d r = _mm512_fmadd_pd(va, _mm512_maskz_loadu_pd(m, x + i), _mm512_maskz_loadu_pd(m, y + i));
        _mm512_mask_storeu_pd(y + i, m, r);
    }
}
