// Correct: max, exp into out, sum, scale. Each x[j] is read before out[j] is written, so out may be x.
#include <math.h>
#include <stdint.h>

void softmax(int64_t rows, int64_t cols, const float *x, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *o = out + r * cols;
        float m = xr[0];
        for (int64_t j = 1; j < cols; j++) m = (xr[j] > m || m != m) ? xr[j] : m;
        if (m != m) {  // NumPy's max propagates NaN
            for (int64_t j = 0; j < cols; j++) o[j] = NAN;
            continue;
        }
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            o[j] = expf(xr[j] - m);
            s += o[j];
        }
        const float inv = (float)(1.0 / s);
        for (int64_t j = 0; j < cols; j++) o[j] *= inv;
    }
}
