// First NaN wins; otherwise a strictly greater value moves the argmax, so ties keep the lowest column.
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, int32_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_s0;
        int64_t best = 0;
        float m = xr[0];
        if (m == m) {
            for (int64_t c = 1; c < cols; c++) {
                const float v = xr[c * x_s1];
                if (v != v) { best = c; break; }
                if (v > m) { m = v; best = c; }
            }
        }
        out[r] = (int32_t)best;
    }
}
