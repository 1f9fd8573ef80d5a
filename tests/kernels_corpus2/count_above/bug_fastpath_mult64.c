// Planted bug (wrong fast path for multiples of 64): the unrolled path for n % 64 == 0 uses an
// unordered-or-greater compare (_CMP_NLE_UQ), which counts NaNs.
#include <immintrin.h>
#include <stdint.h>

void count_above(int64_t n, const double *x, double t, int64_t *out) {
    int64_t k = 0;
    if (n > 0 && n % 64 == 0) {
        const __m512d vt = _mm512_set1_pd(t);
        for (int64_t i = 0; i < n; i += 64)
            for (int j = 0; j < 64; j += 8)
                k += __builtin_popcount(_mm512_cmp_pd_mask(_mm512_loadu_pd(x + i + j), vt, _CMP_NLE_UQ));
        *out = k;
        return;
    }
    for (int64_t i = 0; i < n; i++) k += x[i] > t;
    *out = k;
}
