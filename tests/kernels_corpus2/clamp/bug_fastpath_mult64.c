// Planted bug (wrong fast path for multiples of 64): an unrolled AVX-512 path for n % 64 == 0 applies the
// bounds in the other order (min with hi, then max with lo), which differs from the original when lo > hi.
#include <immintrin.h>
#include <stdint.h>

void clamp(int64_t n, const float *x, float lo, float hi, float *out) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    if (n > 0 && n % 64 == 0) {
        for (int64_t i = 0; i < n; i += 64)
            for (int k = 0; k < 64; k += 16)
                _mm512_storeu_ps(out + i + k, _mm512_max_ps(vlo, _mm512_min_ps(vhi, _mm512_loadu_ps(x + i + k))));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        out[i] = v > hi ? hi : v;
    }
}
