// Planted bug (NaN handling): _mm256_max_ps(x, 0) returns 0 for a NaN x (the second operand wins).
#include <immintrin.h>
#include <stdint.h>

void relu6_2d(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, float *out,
              int64_t out_s0, int64_t out_s1) {
    const __m256 z = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_s0;
        float *orow = out + r * out_s0;
        int64_t c = 0;
        if (x_s1 == 1 && out_s1 == 1)
            for (; c + 8 <= cols; c += 8)
                _mm256_storeu_ps(orow + c, _mm256_min_ps(six, _mm256_max_ps(_mm256_loadu_ps(xr + c), z)));
        for (; c < cols; c++) {
            float v = xr[c * x_s1];
            v = v < 0.0f ? 0.0f : v;
            orow[c * out_s1] = v > 6.0f ? 6.0f : v;
        }
    }
}
