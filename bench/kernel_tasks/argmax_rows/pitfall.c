// Pitfall: NaN is skipped (it never compares greater), where NumPy returns the first NaN's column.
#include <stdint.h>

void argmax_rows(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, int32_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        float m = x[r * x_s0];
        for (int64_t c = 1; c < cols; c++) {
            const float v = x[r * x_s0 + c * x_s1];
            if (v > m) { m = v; best = c; }
        }
        out[r] = (int32_t)best;
    }
}
