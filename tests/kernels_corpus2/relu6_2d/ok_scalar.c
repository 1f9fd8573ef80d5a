// Correct: every element through both strides; NaN fails both comparisons and passes through.
#include <stdint.h>

void relu6_2d(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, float *out,
              int64_t out_s0, int64_t out_s1) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * x_s0 + c * x_s1];
            v = v < 0.0f ? 0.0f : v;
            out[r * out_s0 + c * out_s1] = v > 6.0f ? 6.0f : v;
        }
}
