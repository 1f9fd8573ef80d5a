// Correct: AVX-512 Horner with fused multiply-adds, masked tail.
#include <immintrin.h>
#include <stdint.h>

void poly_eval(int64_t n, const double *x, double c0, double c1, double c2, double c3, double *out) {
    const __m512d a0 = _mm512_set1_pd(c0), a1 = _mm512_set1_pd(c1), a2 = _mm512_set1_pd(c2),
                  a3 = _mm512_set1_pd(c3);
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 m = n - i >= 8 ? 0xFF : (__mmask8)((1u << (n - i)) - 1);
        __m512d v = _mm512_maskz_loadu_pd(m, x + i);
        __m512d r = _mm512_fmadd_pd(v, a3, a2);
        r = _mm512_fmadd_pd(v, r, a1);
        r = _mm512_fmadd_pd(v, r, a0);
        _mm512_mask_storeu_pd(out + i, m, r);
    }
}
