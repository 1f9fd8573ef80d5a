// Planted bug (padded-row view): when both inner strides are 1 the arrays are treated as one flat block of
// rows*cols elements; a view with padded rows (row stride > cols) is read and written in the wrong places.
#include <stdint.h>

void relu6_2d(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, float *out,
              int64_t out_s0, int64_t out_s1) {
    if (x_s1 == 1 && out_s1 == 1) {
        for (int64_t i = 0; i < rows * cols; i++) {
            float v = x[i];
            v = v < 0.0f ? 0.0f : v;
            out[i] = v > 6.0f ? 6.0f : v;
        }
        return;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * x_s0 + c * x_s1];
            v = v < 0.0f ? 0.0f : v;
            out[r * out_s0 + c * out_s1] = v > 6.0f ? 6.0f : v;
        }
}
