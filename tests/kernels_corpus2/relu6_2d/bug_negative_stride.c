// Planted bug (negative strides): a negative inner stride of x is flipped to walk memory forwards, but the
// output index is not mirrored, so such rows come out reversed.
#include <stdint.h>

void relu6_2d(int64_t rows, int64_t cols, const float *x, int64_t x_s0, int64_t x_s1, float *out,
              int64_t out_s0, int64_t out_s1) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_s0;
        int64_t s1 = x_s1;
        if (s1 < 0) xr += (cols - 1) * s1, s1 = -s1;
        for (int64_t c = 0; c < cols; c++) {
            float v = xr[c * s1];
            v = v < 0.0f ? 0.0f : v;
            out[r * out_s0 + c * out_s1] = v > 6.0f ? 6.0f : v;
        }
    }
}
