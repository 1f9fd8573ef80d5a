// Planted bug (Inf/NaN handling): no max subtraction, so exp overflows to inf and inf/inf gives NaN for
// large inputs.
#include <math.h>
#include <stdint.h>

void softmax(int64_t rows, int64_t cols, const float *x, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *o = out + r * cols;
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            o[j] = expf(xr[j]);
            s += o[j];
        }
        const float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < cols; j++) o[j] *= inv;
    }
}
