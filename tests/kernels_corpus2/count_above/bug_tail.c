// Planted bug (tail): the masked tail compares the masked-out lanes too (zeros), counting them when t < 0.
#include <immintrin.h>
#include <stdint.h>

void count_above(int64_t n, const double *x, double t, int64_t *out) {
    const __m512d vt = _mm512_set1_pd(t);
    int64_t k = 0, i = 0;
    for (; i + 8 <= n; i += 8)
        k += __builtin_popcount(_mm512_cmp_pd_mask(_mm512_loadu_pd(x + i), vt, _CMP_GT_OQ));
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
        k += __builtin_popcount(_mm512_cmp_pd_mask(_mm512_maskz_loadu_pd(m, x + i), vt, _CMP_GT_OQ));
    }
    *out = k;
}
